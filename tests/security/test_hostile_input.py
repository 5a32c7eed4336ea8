"""Issue #16, finding 7: hostile input is a 4xx naming the problem, never a 500 (or a dropped connection).

Bodies nested past MAX_BODY_DEPTH are refused as they stream in, before any parser or model sees them, on
/fhir (JSON and XML) and /api alike; numeric parameters are whole numbers of at most 9 ASCII digits; dates out
of range are a 400."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from service.projection.tables import FhirResourceVersion
from tests.builders import API
from tests.fhir.support import FHIR_JSON, fhir_headers, patient_resource

DEEP = 400
MAX_BODY_DEPTH = 64  # service.api.body_depth.MAX_BODY_DEPTH (imported in the test that needs the module)


def nested_extension(depth: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        extension = {"url": "http://example.org/nest", "extension": [extension]}
    return extension


def _resources(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(FhirResourceVersion)).one())


def _assert_outcome(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert words in json.dumps(outcome), outcome


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_patient_with_extensions_nested_400_deep_is_refused(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]], method: str
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    body = patient_resource(id="p1", extension=[nested_extension(DEEP)])
    before = _resources(engine)
    url = "/fhir/Patient" if method == "POST" else "/fhir/Patient/p1"
    response = client.request(method, url, content=json.dumps(body), headers=headers)
    _assert_outcome(response, 400, f"deeper than {MAX_BODY_DEPTH} levels")
    assert _resources(engine) == before  # nothing stored


def test_a_deep_bundle_and_a_deep_xml_body_are_refused(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"x": nested_extension(DEEP)}}]}
    _assert_outcome(client.post("/fhir", content=json.dumps(bundle), headers=headers), 400, "deeper than")
    xml = b'<Patient xmlns="http://hl7.org/fhir">' + b'<extension url="http://x/n">' * DEEP
    xml += b'<valueString value="x"/>' + b"</extension>" * DEEP + b"</Patient>"
    response = client.post("/fhir/Patient", content=xml, headers={**headers, "Content-Type": "application/fhir+xml"})
    _assert_outcome(response, 400, "deeper than")


def test_a_deep_json_api_body_is_a_problem(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    body = {"name": "x", "base_url": "https://93.184.216.34/fhir", "code_map": nested_extension(DEEP)}
    response = client.post(f"{API}/sync/targets", content=json.dumps(body), headers=auth(tenant, "admin"))
    assert response.status_code == 400, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert f"deeper than {MAX_BODY_DEPTH} levels" in response.json()["detail"]


def test_a_resource_within_the_limit_is_still_taken(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    """The limit is far above any real resource: a Patient with extensions nested 10 deep is stored."""
    headers = fhir_headers(auth(tenant, "ehr-system"))
    response = client.post("/fhir/Patient", json=patient_resource(extension=[nested_extension(10)]), headers=headers)
    assert response.status_code == 201, response.text[:300]


def test_the_scanner_counts_structure_not_text() -> None:
    from service.api import body_depth

    assert body_depth.MAX_BODY_DEPTH == MAX_BODY_DEPTH
    DepthScanner = body_depth.DepthScanner  # noqa: N806 (the class, under its own name)
    quoted = DepthScanner("json", limit=3)
    quoted.feed(json.dumps({"a": '[[[[[[{{{{{ \\" [[[['}).encode())  # brackets inside strings are text
    assert quoted.deepest == 1
    xml = DepthScanner("xml", limit=3)
    xml.feed(b'<?xml version="1.0"?><a x="/>"><b/><b><c/></b></a>')
    assert (xml.deepest, xml.depth) == (3, 0)


@pytest.mark.parametrize(
    ("path", "parameter", "value"),
    [
        ("/fhir/AuditEvent", "_count", "9" * 5000),
        ("/fhir/AuditEvent", "_count", "\u00b2"),  # superscript two: isdigit() says yes, int() says no
        ("/fhir/Observation", "_count", "9" * 5000),
        ("/fhir/Observation", "_offset", "9" * 5000),
        ("/fhir/Observation", "_count", "\u0663"),  # Arabic-Indic three
        ("/fhir/Observation", "date", "2026-13-45"),
        ("/fhir/Observation", "date", "9999"),
        ("/fhir/Observation", "_lastUpdated", "gt2026-01-01T25:61:00Z"),
        ("/fhir/Observation", "date", "2026-01-01T10:00:00+99:99"),
        ("/fhir/AuditEvent", "date", "0000-01-01"),
    ],
)
def test_numeric_and_date_parameters_out_of_range_are_a_400(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]], path: str, parameter: str, value: str
) -> None:
    role = "admin" if path.endswith("AuditEvent") else "ehr-system"
    response = client.get(path, params={parameter: value}, headers={**auth(tenant, role), "Accept": FHIR_JSON})
    _assert_outcome(response, 400, parameter)


def test_a_version_id_in_other_digits_is_not_found(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    created = client.post("/fhir/Patient", json=patient_resource(), headers=headers).json()
    response = client.get(f"/fhir/Patient/{created['id']}/_history/\u00b9", headers=headers)
    _assert_outcome(response, 404, "_history")
