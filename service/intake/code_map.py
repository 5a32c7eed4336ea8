"""The site codes an incoming resource carries, translated to the standard codes the intakes recognise.

`with_standard_codings` is the one lookup: the code maps of the target a resource came from (a pull), or of every
one of the tenant's targets when the sender is not a known target (the facade, Bundles, `tandem import`; a
site's own codes are namespaced by their system URI, so one tenant's targets do not collide). The translation
itself is pure (fhir_mappings.add_standard_codings) and works on any resource type.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

import fhir_mappings as fm
from service.db.memo import remembered
from service.tenant_targets import TARGETS_KEY, tenant_targets


def site_code_map(session: Session, tenant_id: str, target_id: str | None = None) -> fm.InboundCodeMap:
    """The inbound code map of one target, or of all the tenant's targets (target_id None).

    Built once per unit of work from the targets it read once (a Bundle's hundred entries ask a hundred times)."""

    def look_up() -> fm.InboundCodeMap:
        targets = tenant_targets(session, tenant_id)
        return fm.inbound_code_map(t.code_map for t in targets if target_id in (None, t.id) and t.code_map)

    return remembered(session, (TARGETS_KEY, tenant_id, "inbound code map", target_id), look_up)


def with_standard_codings(
    session: Session, tenant_id: str, resource: dict[str, Any], target_id: str | None = None
) -> dict[str, Any]:
    """The resource with the standard coding added beside every site coding a code map names."""
    return fm.add_standard_codings(resource, site_code_map(session, tenant_id, target_id))
