"""The one resolver of references in incoming resources: a reference as the sender wrote it → our record id.

Literal references only (relative, absolute, with or without _history); another tenant's record and an unknown
one both resolve to None, so the caller refuses or drops the reference, never guesses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sqlmodel import Session, col, select

from fhir_mappings import ReferenceResolver, parse_reference
from service.db.memo import memo
from service.records.appointment import Appointment
from service.records.base import TenantRecord
from service.records.cbt import CbtSession
from service.records.enrollment import Enrollment
from service.records.ketamine import KetamineAdministration
from service.records.patient import Patient
from service.records.questionnaire import QuestionnaireResponse

# FHIR type -> the records its resources are made from (an enrolment is served as its CarePlan).
_RECORDS: Final[dict[str, type[TenantRecord]]] = {
    "Patient": Patient,
    "CarePlan": Enrollment,
    "MedicationAdministration": KetamineAdministration,
    "Encounter": CbtSession,
    "QuestionnaireResponse": QuestionnaireResponse,
    "ServiceRequest": Enrollment,  # and as the referral it answers
    "Appointment": Appointment,
}

# (resource type, the sender's id) -> our record id, for resources we wrote at the sender (the sync's map).
KnownRemote = Callable[[str, str], str | None]


def reference_resolver(
    session: Session, tenant_id: str, *, source_system: str | None = None, known: KnownRemote | None = None
) -> ReferenceResolver:
    """Tried in order: a resource we wrote at the sender (known), a record the sender created (its Type/id under
    source_system), one of our own ids (the facade's references; a target storing our id, update-as-create)."""

    def resolve(reference: str) -> str | None:
        # The unit's memo is read at each call, not kept here: a rollback replaces it with an empty one.
        found_before = memo(session)
        key = ("resolved reference", tenant_id, source_system, reference)
        if (ours := found_before.get(key)) is None and (ours := lookup(reference)) is not None:
            found_before[key] = ours  # a record found stays found; one not found may be written by the next entry
        return ours

    def lookup(reference: str) -> str | None:
        parsed = parse_reference(reference)
        table = _RECORDS.get(parsed[0]) if parsed is not None else None
        if parsed is None or table is None:
            return None
        resource_type, their_id = parsed
        if known is not None and (ours := known(resource_type, their_id)) is not None:
            return ours
        if source_system is not None:
            found = session.exec(
                select(table.id).where(
                    col(table.tenant_id) == tenant_id,
                    col(table.source_system) == source_system,
                    col(table.source_id) == f"{resource_type}/{their_id}",
                )
            ).first()
            if found is not None:
                return found
        return session.exec(
            select(table.id).where(col(table.tenant_id) == tenant_id, col(table.id) == their_id)
        ).first()

    return resolve
