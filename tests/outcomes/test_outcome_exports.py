"""The outcomes CSV (documented schema, pseudonymous ids) and the FHIR Measures and MeasureReports: validated with
fhir.resources and fhirkit-rs, suppressed like the page, audited. Both databases."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fhirkit
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.measure import Measure
from fhir.resources.R4B.measurereport import MeasureReport
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.outcome_reports.csv_export import CSV_COLUMNS
from service.records.audit import AuditEvent
from service.records.patient import Patient
from tests.builders import API
from tests.outcomes.programme import Loaded

DOCS = Path(__file__).resolve().parents[2] / "docs" / "outcomes.md"
MEASURE_IDS = ("phq9-response-12-weeks", "phq9-remission-12-weeks", "phq9-remission-12-months")


def _csv(client: TestClient, headers: dict[str, str], **params: str) -> list[dict[str, str]]:
    response = client.get(f"{API}/outcomes.csv", params={"period_start": "2020-01-01", **params}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"
    reader = csv.DictReader(io.StringIO(response.text))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def test_the_csv_has_one_pseudonymous_row_per_patient_period(
    client: TestClient, engine: Engine, auth: Callable[..., dict[str, str]], planted_effect: Loaded
) -> None:
    rows = _csv(client, auth(planted_effect.tenant_id, "admin"))
    assert len(rows) == 40
    with Session(engine) as session:
        patients = session.exec(select(Patient).where(col(Patient.tenant_id) == planted_effect.tenant_id)).all()
    known = {p.id for p in patients} | {p.family_name or "" for p in patients} | {str(p.birth_date) for p in patients}
    known.discard("")
    text = " ".join(v for r in rows for v in r.values())
    assert not any(value in text for value in known), "an id, name or birth date leaked into the CSV"
    assert len({r["patient_pseudonym"] for r in rows}) == 40
    assert all(re.fullmatch(r"[0-9a-f]{20}", r["patient_pseudonym"]) for r in rows)
    # Stable between exports (the quality office links periods), and the counts agree with the planted programme.
    again = _csv(client, auth(planted_effect.tenant_id, "clinician"))
    assert sorted(r["patient_pseudonym"] for r in again) == sorted(r["patient_pseudonym"] for r in rows)
    planted = planted_effect.planted
    assert sum(r["relapsed"] == "1" for r in rows) == sum(p.responder and p.relapse_in_records for p in planted)
    assert sum(r["adherence_group"] == "adherent" for r in rows) == sum(p.adherent for p in planted)
    assert sum(r["week_8_state"] == "missing" for r in rows) == 3  # row-level: not suppressed, but pseudonymous


def test_every_csv_column_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    assert set(CSV_COLUMNS) <= documented, sorted(set(CSV_COLUMNS) - documented)


def test_the_measures_are_published_and_valid(
    client: TestClient, auth: Callable[..., dict[str, str]], tenant: str
) -> None:
    headers = auth(tenant)
    bundle = client.get("/fhir/Measure", headers=headers).json()
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == sorted(MEASURE_IDS)
    for entry in bundle["entry"]:
        measure = entry["resource"]
        Measure.model_validate(measure)
        assert [str(i) for i in fhirkit.validate(measure) if i.severity == "error"] == []
        assert measure["scoring"]["coding"][0]["code"] == "proportion"
        read = client.get(f"/fhir/Measure/{measure['id']}", headers=headers)
        assert read.status_code == 200 and read.json() == measure
        by_url = client.get("/fhir/Measure", params={"url": measure["url"]}, headers=headers).json()
        assert [e["resource"]["id"] for e in by_url["entry"]] == [measure["id"]]
    assert client.get("/fhir/Measure/no-such-measure", headers=headers).status_code == 404
    capability = client.get("/fhir/metadata").json()
    declared = next(r for r in capability["rest"][0]["resource"] if r["type"] == "Measure")
    assert [o["name"] for o in declared["operation"]] == ["evaluate-measure"]


def _evaluate(client: TestClient, headers: dict[str, str], measure: str, **params: str) -> dict[str, Any]:
    response = client.get(
        f"/fhir/Measure/{measure}/$evaluate-measure",
        params={"periodStart": "2020-01-01", **params},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    MeasureReport.model_validate(report)
    assert [str(i) for i in fhirkit.validate(report) if i.severity == "error"] == []
    return report


def _population(report: dict[str, Any], code: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in report["group"][0]["population"] if p["code"]["coding"][0]["code"] == code)
    return found


def test_evaluate_measure_reports_the_api_counts(
    client: TestClient, raw: TestClient, auth: Callable[..., dict[str, str]], planted_effect: Loaded
) -> None:
    headers = auth(planted_effect.tenant_id)
    report = _evaluate(raw, headers, "phq9-response-12-weeks")
    assert (report["type"], report["status"]) == ("summary", "complete")
    assert report["measure"].endswith("/Measure/phq9-response-12-weeks|1")
    api = raw.get(f"{API}/outcomes", params={"period_start": "2020-01-01"}, headers=headers).json()
    week_12 = next(m for m in api["milestones"] if m["key"] == "week_12")
    assert _population(report, "initial-population")["count"] == 40
    assert _population(report, "denominator")["count"] == week_12["due"]["value"] == 40
    assert _population(report, "numerator")["count"] == week_12["response"]["numerator"]["value"]
    assert report["group"][0]["measureScore"]["value"] == pytest.approx(week_12["response"]["rate"], abs=1e-4)
    # At the type, naming the measure by its canonical url: the same report.
    url = client.get("/fhir/Measure/phq9-response-12-weeks", headers=headers).json()["url"]
    by_url = raw.get(
        "/fhir/Measure/$evaluate-measure", params={"measure": url, "periodStart": "2020-01-01"}, headers=headers
    )
    assert by_url.status_code == 200 and by_url.json()["group"] == report["group"]
    # Nobody is twelve months in yet: the 12-month denominator is empty, and says so with a zero.
    year = _evaluate(client, headers, "phq9-remission-12-months")
    assert _population(year, "denominator")["count"] == 0 and "measureScore" not in year["group"][0]


def test_small_counts_are_masked_in_the_measure_report(
    client: TestClient, auth: Callable[..., dict[str, str]], planted_effect: Loaded
) -> None:
    report = _evaluate(client, auth(planted_effect.tenant_id), "phq9-remission-12-weeks")
    numerator = _population(report, "numerator")
    week_12 = client.get(
        f"{API}/outcomes", params={"period_start": "2020-01-01"}, headers=auth(planted_effect.tenant_id)
    ).json()["milestones"][3]
    if week_12["remission"]["numerator"]["suppressed"]:
        assert "count" not in numerator and numerator["extension"][0]["valueCode"] == "masked"
        assert "measureScore" not in report["group"][0]
    else:
        assert numerator["count"] == week_12["remission"]["numerator"]["value"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/fhir/Measure/phq9-response-12-weeks/$evaluate-measure", {"periodStart": "soon"}, 400),
        ("/fhir/Measure/phq9-response-12-weeks/$evaluate-measure", {"reportType": "subject-list"}, 400),
        ("/fhir/Measure/phq9-response-12-weeks/$evaluate-measure", {"subject": "Patient/1"}, 400),
        ("/fhir/Measure/no-such-measure/$evaluate-measure", {}, 404),
        ("/fhir/Measure/$evaluate-measure", {}, 400),
    ],
)
def test_bad_evaluate_requests_are_refused_with_an_operation_outcome(
    client: TestClient, auth: Callable[..., dict[str, str]], tenant: str, path: str, params: dict[str, str], status: int
) -> None:
    response = client.get(path, params=params, headers=auth(tenant))
    assert response.status_code in (status, 422), response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_evaluate_is_for_admins_and_clinicians_and_audited(
    client: TestClient, engine: Engine, auth: Callable[..., dict[str, str]], planted_effect: Loaded
) -> None:
    path = "/fhir/Measure/phq9-response-12-weeks/$evaluate-measure"
    for role in ("coordinator", "ehr-system"):
        assert client.get(path, headers=auth(planted_effect.tenant_id, role)).status_code == 403, role
    headers = auth(planted_effect.tenant_id, "clinician", subject="quality-office")
    assert client.get(path, params={"periodStart": "2020-01-01"}, headers=headers).status_code == 200
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEvent).where(
                col(AuditEvent.tenant_id) == planted_effect.tenant_id,
                col(AuditEvent.record_kind) == "fhir/MeasureReport",
                col(AuditEvent.actor) == "quality-office",
            )
        ).all()
    assert len({r.patient_id for r in rows if r.outcome == "success"}) == 40
