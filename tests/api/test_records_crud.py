"""Create, read, list and update for every record kind through the JSON API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from tests.builders import API, PATIENT_RECORD_BODIES, ApiDriver, patient_body, practitioner_body


@pytest.fixture
def api(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> ApiDriver:
    return ApiDriver(client, auth(tenant, "ehr-system"))


def test_create_then_read_returns_what_was_sent(api: ApiDriver) -> None:
    body = patient_body()
    created = api.create("patients", body)
    response = api.client.get(f"{API}/patients/{created['id']}", headers=api.headers)
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["cache-control"] == "no-store"
    read = response.json()
    for field in ("family_name", "given_name", "birth_date", "sex", "identifiers", "source"):
        assert read[field] == body[field], field
    assert read["version"] == 1


@pytest.mark.parametrize("path", sorted(PATIENT_RECORD_BODIES))
def test_each_patient_record_kind_round_trips(api: ApiDriver, path: str) -> None:
    patient_id = api.patient()
    body = PATIENT_RECORD_BODIES[path](patient_id)
    response = api.client.post(f"{API}/{path}", json=body, headers=api.headers)
    assert response.status_code == 201, response.text
    assert response.headers["location"].endswith(f"/api/v1/{path}/{response.json()['id']}")
    read = api.client.get(response.headers["location"], headers=api.headers).json()
    for field, value in body.items():
        if field.endswith("_at") or field in ("planned_start", "actual_start", "actual_end", "start", "end"):
            # instants come back normalised to UTC, so the same instant may be written differently
            assert (read[field] is None) == (value is None), field
            if value is not None:
                assert datetime.fromisoformat(read[field]) == datetime.fromisoformat(value), field
            continue
        if field == "vital_signs":
            assert [v["systolic_mmhg"] for v in read[field]] == [v["systolic_mmhg"] for v in value]
            continue
        if field == "answers":
            assert [{k: v for k, v in a.items() if v is not None} for a in read[field]] == value
            continue
        assert read[field] == value, field


def test_weight_based_dose_is_completed_and_checked(api: ApiDriver) -> None:
    patient_id = api.patient()
    body = PATIENT_RECORD_BODIES["ketamine-administrations"](patient_id)
    created = api.create("ketamine-administrations", body)
    assert created["dose_mg"] == 35.0  # 0.5 mg/kg x 70 kg
    mismatched = {**body, "source": None, "dose_mg": 50}
    response = api.client.post(f"{API}/ketamine-administrations", json=mismatched, headers=api.headers)
    assert response.status_code == 422
    assert "does not match" in response.json()["detail"]


def test_instants_are_returned_in_utc(api: ApiDriver) -> None:
    patient_id = api.patient()
    body = PATIENT_RECORD_BODIES["ketamine-administrations"](
        patient_id, started_at="2026-10-07T10:00:00+01:00", ended_at="2026-10-07T10:40:00+01:00"
    )
    created = api.create("ketamine-administrations", body)
    assert created["started_at"] == "2026-10-07T09:00:00Z"


def test_resend_with_same_source_returns_the_stored_record(api: ApiDriver) -> None:
    body = patient_body()
    first = api.client.post(f"{API}/patients", json=body, headers=api.headers)
    again = api.client.post(f"{API}/patients", json=body, headers=api.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    listed = api.client.get(
        f"{API}/patients",
        params={"identifier": f"{body['source']['system']}|{body['source']['value']}"},
        headers=api.headers,
    )
    assert [p["id"] for p in listed.json()["items"]] == [first.json()["id"]]


def test_patient_found_by_mrn(api: ApiDriver) -> None:
    body = patient_body()
    created = api.create("patients", body)
    mrn = body["identifiers"][0]
    listed = api.client.get(
        f"{API}/patients", params={"identifier": f"{mrn['system']}|{mrn['value']}"}, headers=api.headers
    )
    assert [p["id"] for p in listed.json()["items"]] == [created["id"]]


def test_an_mrn_belongs_to_one_patient(api: ApiDriver) -> None:
    body = patient_body()
    api.create("patients", body)
    other = patient_body(identifiers=body["identifiers"])
    response = api.client.post(f"{API}/patients", json=other, headers=api.headers)
    assert response.status_code == 409
    assert "identifier" in response.json()["detail"]


def test_update_with_if_match_bumps_the_version(api: ApiDriver) -> None:
    patient_id = api.patient()
    enrollment = api.create("enrollments", PATIENT_RECORD_BODIES["enrollments"](patient_id))
    response = api.client.patch(
        f"{API}/enrollments/{enrollment['id']}",
        json={"status": "on-hold", "status_reason": "surgery next week"},
        headers={**api.headers, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.json()["status"] == "on-hold"
    assert response.json()["protocol_id"] == "iv-ketamine-cbt"  # untouched fields keep their values
    assert response.headers["etag"] == 'W/"2"'


def test_stale_if_match_gets_412_and_changes_nothing(api: ApiDriver) -> None:
    patient_id = api.patient()
    url = f"{API}/patients/{patient_id}"
    first = api.client.patch(url, json={"given_name": "Robin"}, headers={**api.headers, "If-Match": 'W/"1"'})
    assert first.status_code == 200
    stale = api.client.patch(url, json={"given_name": "Kim"}, headers={**api.headers, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    current = api.client.get(url, headers=api.headers).json()
    assert (current["given_name"], current["version"]) == ("Robin", 2)


def test_update_without_if_match_is_refused(api: ApiDriver) -> None:
    patient_id = api.patient()
    response = api.client.patch(f"{API}/patients/{patient_id}", json={"given_name": "X"}, headers=api.headers)
    assert response.status_code == 428
    malformed = api.client.patch(
        f"{API}/patients/{patient_id}",
        json={"given_name": "X"},
        headers={**api.headers, "If-Match": "version one"},
    )
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "If-Match"


def test_update_cannot_move_a_record_to_another_patient(api: ApiDriver) -> None:
    patient_id, other_id = api.patient(), api.patient()
    record = api.create("cbt-sessions", PATIENT_RECORD_BODIES["cbt-sessions"](patient_id))
    response = api.client.patch(
        f"{API}/cbt-sessions/{record['id']}",
        json={"patient_id": other_id},
        headers={**api.headers, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "patient_id"


def test_update_is_validated_as_a_whole(api: ApiDriver) -> None:
    patient_id = api.patient()
    record = api.create("cbt-sessions", PATIENT_RECORD_BODIES["cbt-sessions"](patient_id))
    response = api.client.patch(
        f"{API}/cbt-sessions/{record['id']}",
        json={"actual_end": "2026-10-08T13:00:00+00:00"},
        headers={**api.headers, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 422
    assert "before actual_start" in response.json()["detail"]


def test_list_pages_through_everything_with_a_bounded_page_size(api: ApiDriver) -> None:
    patient_id = api.patient()
    created = {
        api.create(
            "questionnaire-responses",
            PATIENT_RECORD_BODIES["questionnaire-responses"](
                patient_id, authored_at=f"2026-10-{day:02d}T08:00:00+00:00"
            ),
        )["id"]
        for day in range(1, 8)
    }
    seen: list[str] = []
    cursor = None
    while True:
        params = {"patient_id": patient_id, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.client.get(f"{API}/questionnaire-responses", params=params, headers=api.headers).json()
        assert len(page["items"]) <= 3
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == created
    times = [
        api.client.get(f"{API}/questionnaire-responses/{i}", headers=api.headers).json()["authored_at"] for i in seen
    ]
    assert times == sorted(times)


def test_list_filters_by_date_range_and_status(api: ApiDriver) -> None:
    patient_id = api.patient()
    build = PATIENT_RECORD_BODIES["cbt-sessions"]
    api.create(
        "cbt-sessions",
        build(
            patient_id,
            planned_start="2026-10-01T14:00:00+00:00",
            actual_start=None,
            actual_end=None,
            status="no-show",
        ),
    )
    api.create(
        "cbt-sessions",
        build(
            patient_id,
            session_number=2,
            planned_start="2026-10-08T14:00:00+00:00",
            actual_start="2026-10-08T14:00:00+00:00",
            actual_end=None,
        ),
    )
    in_range = api.client.get(
        f"{API}/cbt-sessions",
        params={"patient_id": patient_id, "from": "2026-10-05", "to": "2026-10-09"},
        headers=api.headers,
    ).json()
    assert [s["session_number"] for s in in_range["items"]] == [2]
    no_shows = api.client.get(
        f"{API}/cbt-sessions", params={"patient_id": patient_id, "status": "no-show"}, headers=api.headers
    ).json()
    assert [s["status"] for s in no_shows["items"]] == ["no-show"]


def test_page_size_is_capped_by_the_server(api: ApiDriver, settings_factory: Callable[..., TestClient]) -> None:
    for _ in range(4):
        api.patient()
    capped = settings_factory(max_page_size=3, default_page_size=2)
    response = capped.get(f"{API}/patients", params={"limit": 100_000}, headers=api.headers)
    assert response.status_code == 200  # capped, not refused: max_page_size applies
    assert len(response.json()["items"]) == 3
    assert response.json()["next_cursor"] is not None
    assert len(capped.get(f"{API}/patients", headers=api.headers).json()["items"]) == 2  # the default


def test_bad_cursor_is_refused_by_name(api: ApiDriver) -> None:
    response = api.client.get(f"{API}/patients", params={"cursor": "not-a-cursor!"}, headers=api.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"


def test_practitioners_are_managed_by_admins_and_ehr_systems(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    as_admin = client.post(f"{API}/practitioners", json=practitioner_body(), headers=auth(tenant, "admin"))
    assert as_admin.status_code == 201
    as_coordinator = client.post(f"{API}/practitioners", json=practitioner_body(), headers=auth(tenant, "coordinator"))
    assert as_coordinator.status_code == 403
