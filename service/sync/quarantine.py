"""The quarantine of pulled resources Tandem refused: listed for admins, retried on demand and after a change of
the target's code map (an EHR-local code mapped at last is the usual fix). A retry takes the kept raw resource
through the same intake as the pull (service/sync/taking.py), each item in a savepoint of the caller's unit of
work, so one still refused changes nothing and leaves the others taken."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from service.audit_trail import RequestContext
from service.clock import now_utc
from service.db.unit_of_work import UnitOfWork
from service.errors import RecordNotFound
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync.tables import QuarantinedResource
from service.sync.taking import ELEMENT_CHARS, REASON_CHARS, code_map_digest, take_in
from service.tenant_targets import targets_changed

STATES = ("refused", "accepted")
LISTED = 500


@dataclass
class RetryResult:
    accepted: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)


class _StillRefused(Exception):
    """Undoes one item's savepoint."""


def list_quarantined(
    session: Session, tenant_id: str, target_id: str | None = None, state: str | None = "refused"
) -> list[QuarantinedResource]:
    query = select(QuarantinedResource).where(col(QuarantinedResource.tenant_id) == tenant_id)
    if target_id is not None:
        query = query.where(col(QuarantinedResource.target_id) == target_id)
    if state is not None:
        query = query.where(col(QuarantinedResource.state) == state)
    query = query.order_by(col(QuarantinedResource.last_seen).desc(), col(QuarantinedResource.id)).limit(LISTED)
    return list(session.exec(query))


def retry_quarantined(
    session: Session,
    settings: Settings,
    target: SyncTarget,
    ids: list[int] | None = None,
    *,
    only_stale_code_map: bool = False,
) -> RetryResult:
    """Take the target's refused items in again (all, or `ids`; or only those refused under another code map)."""
    query = select(QuarantinedResource).where(
        col(QuarantinedResource.target_id) == target.id, col(QuarantinedResource.state) == "refused"
    )
    if ids is not None:
        query = query.where(col(QuarantinedResource.id).in_(ids))
    digest = code_map_digest(target.code_map)
    if only_stale_code_map:
        query = query.where(col(QuarantinedResource.code_map_digest) != digest)
    result = RetryResult()
    # The intakes read the code maps once per unit of work: this retry may follow the write that changed one.
    targets_changed(session)
    for row in list(session.exec(query.order_by(col(QuarantinedResource.id)))):
        assert row.id is not None
        reason = None
        try:
            with _savepoint(session):
                outcome = take_in(session, settings, target, row.resource)
                if outcome.taken == "refused":
                    reason = outcome.reason or "refused"
                    raise _StillRefused()
        except _StillRefused:
            pass
        row.attempts += 1
        row.last_seen = now_utc()
        row.code_map_digest = digest
        if reason is None:
            row.state, row.record_id = "accepted", outcome.record_id
            result.accepted.append(row.id)
        else:
            row.element, row.reason = reason.partition(": ")[0][:ELEMENT_CHARS], reason[:REASON_CHARS]
            result.refused.append(row.id)
        session.add(row)
    session.flush()
    return result


def retry_for_target(
    session: Session, ctx: RequestContext, target_id: str, ids: list[int] | None = None
) -> RetryResult:
    """On demand (API, page, CLI): the tenant's target's refused items, or those named."""
    target = session.get(SyncTarget, target_id)
    if target is None or target.tenant_id != ctx.tenant_id:
        raise RecordNotFound("EHR sync target", target_id)
    return retry_quarantined(session, ctx.settings, target, ids)


def defer_code_map_retry(session: Session, settings: Settings, tenant_id: str) -> None:
    """When a target of the tenant is written (sync/targets' derive): before the commit, with the new code maps,
    retry the items refused under another code map."""

    def retry(unit: UnitOfWork) -> None:
        for target in unit.exec(select(SyncTarget).where(col(SyncTarget.tenant_id) == tenant_id)).all():
            retry_quarantined(unit, settings, target, only_stale_code_map=True)

    if isinstance(session, UnitOfWork):
        session.defer_refresh(("quarantine-retry", tenant_id), retry)


@contextmanager
def _savepoint(session: Session) -> Iterator[None]:
    if isinstance(session, UnitOfWork):
        with session.savepoint():
            yield
    else:
        with session.begin_nested():
            yield
