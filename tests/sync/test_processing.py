"""Processing a claim (service/sync/processing.py): a failure nobody planned for lands on the rows, not on the
worker loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from service.sync.capabilities import Capabilities, CapabilityCache
from service.sync.leases import claim
from service.sync.outcomes import INTERNAL_ERROR
from service.sync.processing import Processor
from tests.sync.sync_harness import SyncApp, outbox_rows, sync_app_fixture

sync_app = sync_app_fixture()


class BrokenCache(CapabilityCache):
    """A capability lookup that fails with our own bug (say, a CapabilityStatement the parser trips on)."""

    def get(self, target_id: str, base_url: str, fetch: Callable[[], dict[str, Any]]) -> Capabilities:
        raise RuntimeError("the parser tripped")


def test_an_unexpected_capability_failure_in_the_batch_path_fails_each_row(
    sync_app: SyncApp, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: the batch path let it out of process_many, ending the worker loop (and its claim stayed taken).
    tenant = sync_app.tenant()
    sync_app.target(tenant, "http://127.0.0.1:9/fhir")  # never contacted
    api = sync_app.driver(tenant)
    for _ in range(3):
        api.patient()
    rows = claim(sync_app.engine, "w1", limit=10, lease_seconds=60, tenant_id=tenant)
    assert len(rows) == 3
    processor = Processor(sync_app.engine, sync_app.settings, "w1", capability_cache=BrokenCache())
    assert processor.process_many(rows) == ["failed"] * 3
    for row in outbox_rows(sync_app.engine, tenant):
        assert (row.status, row.attempts, row.claimed_by) == ("failed", 1, None)
        assert row.last_error is not None and row.last_error["message"] == INTERNAL_ERROR
    assert "failed unexpectedly" in caplog.text  # the traceback is in the service log, not in the row
    assert (processor.stats.failed, processor.stats.requests) == (3, 0)
