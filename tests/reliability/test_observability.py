"""service/observability: /metrics (token, route templates, database gauges), JSON access logs without paths or
patient data, and 503 + Retry-After when the database is unreachable."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

from fastapi.testclient import TestClient

from service.db.unit_of_work import unit_of_work
from service.observability import JsonFormatter, configure_logging
from service.settings import Settings
from service.tenants import register_tenant
from tests.builders import API, ApiDriver
from tests.reliability.pg_faults import METRICS_TOKEN, observed_app


def test_metrics_logs_and_request_ids(settings: Settings, auth: Callable[..., dict[str, str]]) -> None:
    app = observed_app(settings)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("tandem.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            with unit_of_work(app.state.engine) as session:
                register_tenant(session, tenant_id="t-observed", name="Observed")
            api = ApiDriver(client, auth("t-observed", "ehr-system"))
            patient_id = api.patient(family_name="Secretname")
            response = client.get(f"{API}/patients/{patient_id}?identifier=urn:x|MRN-SECRET", headers=api.headers)
            assert response.headers["x-request-id"]
            assert client.get("/metrics").status_code == 401
            scraped = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    finally:
        access.removeHandler(handler)
    assert scraped.status_code == 200
    text = scraped.text
    assert 'route="/api/v1/patients/{record_id}"' in text
    assert (
        'tandem_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/patients/{record_id}"}'
        in text
    )
    assert patient_id not in text and "MRN-SECRET" not in text
    assert "tandem_plan_statuses" in text or "tandem_outbox_messages" in text
    assert "tandem_metrics_scrape_error 0.0" in text
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "no access log lines"
    line = next(entry for entry in lines if entry.get("route") == "/api/v1/patients/{record_id}")
    assert {"time", "level", "logger", "message", "request_id", "route", "status", "duration_ms"} <= set(line)
    logged = stream.getvalue()
    assert patient_id not in logged and "MRN-SECRET" not in logged and "Secretname" not in logged
    print(f"\nobservability: {len(text.splitlines())} metric lines, {len(lines)} JSON access lines, no ids or MRNs")


def test_metrics_are_off_without_a_token(settings: Settings) -> None:
    from service.app import create_app
    from service.observability import install_observability

    app = create_app(settings)
    if not hasattr(app.state, "metrics_registry"):
        install_observability(app, metrics_token="")
    app.state.metrics_token = None
    with TestClient(app) as client:
        assert client.get("/metrics").status_code in (401, 404)


def test_configure_logging_writes_json(settings: Settings) -> None:
    stream = io.StringIO()
    configure_logging(settings, level="INFO", stream=stream)
    try:
        logging.getLogger("tandem.test").info("hello", extra={"request_id": "r1", "body": "patient data"})
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if handler.get_name() == "tandem-json":
                root.removeHandler(handler)
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["message"] == "hello" and entry["request_id"] == "r1" and "body" not in entry
