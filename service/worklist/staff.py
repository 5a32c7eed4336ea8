"""Who a signed-in user is in the care team: the token's subject linked to a practitioner of the tenant."""

from __future__ import annotations

from sqlmodel import Session

from service.clock import now_utc
from service.worklist.tables import StaffLink


def link_staff(session: Session, *, tenant_id: str, subject: str, practitioner_id: str) -> None:
    """Link (or re-link) a subject; idempotent, so loading the demo twice changes nothing."""
    link = session.get(StaffLink, (tenant_id, subject))
    if link is None:
        session.add(StaffLink(tenant_id=tenant_id, subject=subject, practitioner_id=practitioner_id))
    elif link.practitioner_id != practitioner_id:
        link.practitioner_id, link.linked_at = practitioner_id, now_utc()
        session.add(link)
    session.flush()
