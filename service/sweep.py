"""The sweep: what time alone changes, run by `tandem status sweep` (cron) or by a thread of the API process
(TANDEM_STATUS_SWEEP_SECONDS) for single-process deployments without cron: the same steps, in one place.

It runs several packages' sweeps (plan statuses, break-the-glass expiry, the self-report schedule: invitations
for the measurements due and the expiry of old ones, then the patient messages that are due: service/messaging;
the FHIR Subscription heartbeats due), so it sits above them rather than in any.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from service.background import BackgroundThread
from service.break_glass.expiry import sweep_expired_grants
from service.clock import now_utc
from service.messaging.sending import MessageStats, send_due_messages
from service.patient_refresh import sweep
from service.self_report.schedule import send_due_invitations
from service.settings import Settings
from service.subscriptions.events import sweep_heartbeats

logger = logging.getLogger("tandem.sweep")


@dataclass(frozen=True)
class SweepSummary:
    patients: int
    grants_closed: int
    invitations: int
    messages: MessageStats | None  # None: no settings, nothing sent to patients
    heartbeats: int

    def words(self) -> str:
        sent = self.messages or MessageStats()
        return (
            f"plan statuses recomputed: {self.patients} patients; break-the-glass grants expired and closed: "
            f"{self.grants_closed}; questionnaires sent: {self.invitations}; patient messages sent: {sent.sent}, "
            f"deferred for quiet hours: {sent.deferred}, failed: {sent.failed}, dead: {sent.dead}, cannot be sent: "
            f"{sent.cannot_send}; subscription heartbeats queued: {self.heartbeats}"
        )


def run_sweep(
    engine: Engine,
    settings: Settings | None,
    *,
    canonical_base: str,
    progress: Callable[[int, int], None] | None = None,
) -> SweepSummary:
    """One sweep. settings None: the statuses, grants and heartbeats only (a test of the statuses alone)."""
    patients = sweep(engine, canonical_base=canonical_base, progress=progress)
    closed = sweep_expired_grants(engine, now_utc())
    # After the statuses: the measurements due are read from what the sweep just stored.
    invited = send_due_invitations(engine, settings, now_utc()) if settings is not None else 0
    # After the schedule: an invitation it just created goes out in this same sweep.
    messages = send_due_messages(engine, settings) if settings is not None else None
    heartbeats = sweep_heartbeats(engine)
    return SweepSummary(patients, closed, invited, messages, heartbeats)


def sweep_thread(
    engine: Engine, every_seconds: int, canonical_base: str, settings: Settings | None = None
) -> BackgroundThread:
    """The sweep every `every_seconds` in a thread of the API process."""

    def run(stop: threading.Event) -> None:
        while not stop.wait(every_seconds):
            try:
                logger.info("sweep: %s", run_sweep(engine, settings, canonical_base=canonical_base).words())
            except Exception:  # a failed sweep must not end the thread; the next one retries
                logger.exception("plan status sweep failed")

    return BackgroundThread("plan-status-sweep", run)
