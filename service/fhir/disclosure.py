"""Every FHIR answer that hands back a stored resource goes through `disclose`: the read permission, then the audit.

Whatever interaction carries a resource out — read, vread, history, search and its _include, a conditional
create that matched, a create or update answered with its representation, the same inside a batch or
transaction — it is a read of patient data. So the role must be one of the type's readers and a SMART scope must
grant reading it, and each resource handed back is on the audit trail for its patient (issue #16, finding 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlmodel import Session

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.auth.principal import Principal
from service.auth.scopes import scope_allows
from service.errors import NotPermitted
from service.fhir.types import FHIR_TYPES
from service.projection.tables import FhirResourceVersion

# read: one resource (read, vread, history, a batch GET) — refused when not permitted, one read row per resource.
# search: the matches of a search — refused when not permitted, one list row per patient (IHE BALP).
# include: resources a search adds (_include) — left out when not permitted, covered by the search's rows.
# match: the existing resource a conditional create found — withheld when not permitted, else one read row.
# written: what a create or update stored, answered back — withheld when not permitted; the write's own
#   audit row names the resource and its patient, so no second row.
Disclosure = Literal["read", "search", "include", "match", "written"]
WITHHELD = "the resource exists (see Location and ETag); this caller may not read it, so its content is withheld"


def may_read(principal: Principal, resource_type: str, interaction: Literal["read", "search"] = "read") -> bool:
    fhir_type = FHIR_TYPES.get(resource_type)
    return (
        fhir_type is not None
        and principal.role in fhir_type.readers
        and scope_allows(principal.scopes, resource_type, interaction)
    )


def disclose(
    session: Session,
    ctx: RequestContext,
    resource_type: str,
    rows: Sequence[FhirResourceVersion],
    *,
    how: Disclosure,
) -> bool:
    """True: the rows may go out (and are audited now, in the caller's unit of work); False: withhold them."""
    # an included patient is read (Patient.r), as the search's own authorization asks (auth/scopes.includes_patient)
    interaction: Literal["read", "search"] = "search" if how == "search" else "read"
    if not may_read(ctx.principal, resource_type, interaction):
        if how in ("read", "search"):
            raise NotPermitted(f"role {ctx.principal.role} with these scopes may not {interaction} {resource_type}")
        return False
    if how == "search":
        record_success(session, ctx, status_code=200, patient_ids=[r.patient_id for r in rows if r.patient_id])
    elif how in ("read", "match"):
        purpose = ctx.intent.purpose if ctx.intent is not None else None
        for resource_id, patient_id in dict.fromkeys((r.resource_id, r.patient_id) for r in rows):
            _audit(session, ctx, AuditIntent("read", f"fhir/{resource_type}", resource_id, patient_id, purpose))
    return True


def _audit(session: Session, ctx: RequestContext, intent: AuditIntent) -> None:
    declared, ctx.intent = ctx.intent, intent
    try:
        record_success(session, ctx, status_code=200)
    finally:
        ctx.intent = declared
