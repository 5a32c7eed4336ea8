"""A log scan over a full EHR sync run - push and pull against a real sekmet-fhir, with MRNs and names in the
data - at DEBUG on every logger, the HTTP client's included (issue #16, finding 6): no MRN, name, birth date or
query string appears, in the records or in the service's JSON log stream."""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Iterator

import pytest

from service.observability.logging import configure_logging
from service.sync.pull import pull
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.security.test_logs import Person, _leaks
from tests.sync.sync_harness import SyncApp, drain, outbox_rows, pull_cache, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()
QUERY_STRING = re.compile(r"\?(?!\[redacted\])[^\s\"'?]*=")
EVERY_LOGGER = ("", "httpx", "httpcore", "tandem", "service", "sqlalchemy", "uvicorn")


@pytest.fixture
def service_log(caplog: pytest.LogCaptureFixture, sync_app: SyncApp) -> Iterator[io.StringIO]:
    """The service's logging as at startup (configure_logging), then every logger turned up to DEBUG."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    stream = io.StringIO()
    configure_logging(sync_app.settings, level="DEBUG", stream=stream)
    levels = {name: logging.getLogger(name).level for name in EVERY_LOGGER}
    for name in EVERY_LOGGER:
        caplog.set_level(logging.DEBUG, logger=name)
    yield stream
    root.setLevel(saved[0])
    root.handlers = saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_a_full_sync_run_logs_no_patient_data(
    sync_app: SyncApp, sekmet: SekmetServer, caplog: pytest.LogCaptureFixture, service_log: io.StringIO
) -> None:
    pushed, pulled = Person(), Person()
    tenant = sync_app.tenant()
    mrn_system = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}"
    target = sync_app.target(tenant, sekmet.base_url, pull=["patients"], mrn_system=mrn_system)
    api = sync_app.driver(tenant, "ehr-system")
    api.create("patients", pushed.body(identifiers=[{"system": mrn_system, "value": pushed.mrn}]))
    stats = drain(sync_app, tenant)
    assert {r.status for r in outbox_rows(sync_app.engine, tenant)} == {"sent"}
    with sekmet.client() as peer:
        created = peer.post(
            "Patient", json={**pulled.fhir(), "identifier": [{"system": mrn_system, "value": pulled.mrn}]}
        )
        assert created.status_code == 201, created.text
        # The peer's own search for the pushed MRN: a URL with identifier=… logged by the HTTP client.
        assert peer.get("Patient", params={"identifier": f"{mrn_system}|{pushed.mrn}"}).json()["total"] == 1
    summary = pull(sync_app.engine, sync_app.settings, target, capability_cache=pull_cache(target, sekmet))
    assert summary.kinds["patients"].created == 1, summary

    records = [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert records, "the HTTP client logged nothing: the scan would prove nothing"
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    text = "\n".join(
        [formatter.format(r) for r in caplog.records]
        + [repr({k: v for k, v in vars(r).items() if k != "exc_info"}) for r in caplog.records]
        + [service_log.getvalue()]
    )
    markers = pushed.markers() | pulled.markers()
    shown = _leaks(text, markers)
    queries = QUERY_STRING.findall(text)
    print(
        f"\n[sync logs] push {stats.requests} requests, pull {summary}; {len(caplog.records)} records "
        f"({len(records)} from httpx/httpcore); markers found: {len(shown)}; query strings found: {len(queries)}"
    )
    assert not shown, [line for line in text.splitlines() if any(m in line for m in shown)][:20]
    assert not queries, [line for line in text.splitlines() if QUERY_STRING.search(line)][:20]
    assert service_log.getvalue(), "the service's JSON log stream was empty"
