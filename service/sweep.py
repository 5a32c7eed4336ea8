"""The in-process sweep: a daemon thread, for single-process deployments without cron.

It runs several packages' sweeps (plan statuses, break-the-glass expiry, the self-report schedule: invitations
for the measurements due and the expiry of old ones, then the patient messages that are due: service/messaging;
the FHIR Subscription heartbeats due), so it sits above them rather than in any.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from service.break_glass.expiry import sweep_expired_grants
from service.clock import now_utc
from service.messaging.sending import send_due_messages
from service.patient_refresh import sweep
from service.self_report.schedule import send_due_invitations
from service.settings import Settings
from service.subscriptions.events import sweep_heartbeats

logger = logging.getLogger("tandem.sweep")


class SweepThread:
    def __init__(
        self, engine: Engine, every_seconds: int, canonical_base: str, settings: Settings | None = None
    ) -> None:
        self._engine = engine
        self._settings = settings  # None: no questionnaires are sent (a test of the statuses alone)
        self._canonical_base = canonical_base
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="plan-status-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                count = sweep(self._engine, canonical_base=self._canonical_base)
                closed = sweep_expired_grants(self._engine, now_utc())
                # After the statuses: the measurements due are read from what the sweep just stored.
                invited = send_due_invitations(self._engine, self._settings, now_utc()) if self._settings else 0
                heartbeats = sweep_heartbeats(self._engine)
                logger.info(
                    "plan status sweep: %d patients, %d break-the-glass grants closed, %d questionnaires sent, "
                    "%d subscription heartbeats",
                    count,
                    closed,
                    invited,
                    heartbeats,
                )
                # After the schedule: an invitation it just created goes out in this same sweep.
                if self._settings is not None:
                    sent = send_due_messages(self._engine, self._settings)
                    logger.info("patient messages: %s", sent)
            except Exception:  # a failed sweep must not end the thread; the next one retries
                logger.exception("plan status sweep failed")
