"""The audit trail leaves as FHIR AuditEvents (IHE BALP): administrators only, one event per patient,
valid R4, and reading it is audited too."""

from __future__ import annotations

from collections.abc import Callable

import fhirkit
from fastapi.testclient import TestClient
from fhir.resources.R4B.auditevent import AuditEvent

from tests.builders import API, ApiDriver
from tests.fhir.support import fhir_headers


def test_administrators_export_the_audit_trail_as_audit_events(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system", subject="epic-interface"))
    patients = [api.patient() for _ in range(2)]
    client.get(f"{API}/patients", headers=api.headers)  # a search: one audit row per patient returned
    admin = fhir_headers(auth(tenant, "admin"))
    bundle = client.get("/fhir/AuditEvent", params={"patient": patients[0]}, headers=admin).json()
    events = [e["resource"] for e in bundle["entry"]]
    assert {e["subtype"][0]["code"] for e in events} >= {"create", "search-type"}
    for event in events:
        AuditEvent.model_validate(event)
        assert [i for i in fhirkit.validate(event) if i.severity == "error"] == []
        assert event["entity"][0]["what"]["reference"] == f"Patient/{patients[0]}"
        assert event["agent"][0]["who"]["identifier"]["value"] == "epic-interface"
    dated = client.get("/fhir/AuditEvent", params={"date": "ge2020-01-01", "_count": "5"}, headers=admin).json()
    assert 0 < dated["total"] <= 5
    assert client.get("/fhir/AuditEvent", headers=fhir_headers(auth(tenant, "clinician"))).status_code == 403
    assert client.get("/fhir/AuditEvent", params={"name": "x"}, headers=admin).status_code == 400


def test_another_tenants_audit_trail_is_invisible(
    client: TestClient, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    mine, theirs = new_tenant(), new_tenant()
    foreign_patient = ApiDriver(client, auth(theirs, "ehr-system")).patient()
    bundle = client.get(
        "/fhir/AuditEvent", params={"patient": foreign_patient}, headers=fhir_headers(auth(mine, "admin"))
    ).json()
    assert bundle["total"] == 0
