"""Who a signed-in user is in the care team: the token's subject linked to a practitioner of the tenant."""

from __future__ import annotations

from sqlmodel import Session, col, select

from service.clock import now_utc
from service.errors import RecordNotFound, invalid
from service.records.practitioner import Practitioner
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


def link_user_to_practitioner(session: Session, *, tenant_id: str, subject: str, practitioner_id: str) -> Practitioner:
    """An operator says who a signed-in user is (`tandem staff link`): an active practitioner of the tenant, or a
    refusal naming what is wrong; "my patients" and "escalated to me" follow the link."""
    if not subject.strip():
        raise invalid("subject", "the user's token subject (its `sub` claim) is empty")
    practitioner = session.exec(
        select(Practitioner).where(col(Practitioner.tenant_id) == tenant_id, col(Practitioner.id) == practitioner_id)
    ).first()
    if practitioner is None:
        raise RecordNotFound("practitioner", practitioner_id)
    if not practitioner.active:
        raise invalid("practitioner_id", f"practitioner {practitioner_id!r} is not active: link an active one")
    link_staff(session, tenant_id=tenant_id, subject=subject, practitioner_id=practitioner_id)
    return practitioner
