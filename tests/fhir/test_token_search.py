"""The one-token search path (search._token_search): an ordered range of the token index with the resource's
dates and patient copied onto its tokens. It must give exactly what the general path gives — same matches, same
order (ties by resource id), same paging and totals — and follow the resource when its current version changes.

The projection is written by the real writer (projection.project / retract); both paths are run on the same data.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.fhir import paging
from service.fhir.search import SearchPage, _general_search, _one_token, _token_search, run_search
from service.fhir.search_parameters import parse_search
from service.projection.tables import FhirSearchToken
from service.projection.writes import project, retract

LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def observation(resource_id: str, patient_id: str, when: datetime, *codes: tuple[str, str], category: str) -> Any:
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": system, "code": code} for system, code in codes]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when.isoformat(),
    }


class Clinic:
    """Observations of three patients in one tenant, one record each (record id = resource id)."""

    def __init__(self, engine: Engine, tenant_id: str) -> None:
        self.engine = engine
        self.tenant_id = tenant_id
        self.patients = [str(uuid.uuid4()) for _ in range(3)]
        self.written: dict[str, tuple[str, dict[str, Any]]] = {}

    def write(self, resource: dict[str, Any], patient_id: str | None, now: datetime) -> None:
        with Session(self.engine) as session:
            project(
                session,
                tenant_id=self.tenant_id,
                record_kind="test-observations",
                record_id=resource["id"],
                patient_id=patient_id,
                resources=[resource],
                now=now,
            )
            session.commit()

    def retract(self, resource_id: str, now: datetime) -> None:
        with Session(self.engine) as session:
            retract(session, tenant_id=self.tenant_id, record_kind="test-observations", record_id=resource_id, now=now)
            session.commit()

    def search(self, params: list[tuple[str, str]], hidden: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Both paths' answers; they must agree."""
        query = parse_search("Observation", params, max_count=1000, default_count=50, strict=True)
        query.hidden_patients = hidden
        with Session(self.engine) as session:
            fast = _token_search(session, self.tenant_id, query) if _one_token(query) else None
            general = _general_search(session, self.tenant_id, query)
            chosen = run_search(session, self.tenant_id, query)
        assert summary(chosen) == summary(general), params
        if fast is not None:
            assert summary(fast) == summary(general), params
        return summary(general)


def summary(page: SearchPage) -> dict[str, Any]:
    last = page.matches[-1] if page.matches else None
    return {
        "ids": [m.resource_id for m in page.matches],
        "more": page.more,
        "total": page.total,
        "last": (last.last_updated, last.resource_id) if last else None,
    }


@pytest.fixture
def clinic(engine: Engine, tenant: str) -> Clinic:
    clinic = Clinic(engine, tenant)
    p1, p2, p3 = clinic.patients
    n = 0
    for day in range(12):
        for patient in (p1, p2, p3):
            n += 1
            when = T0 + timedelta(days=day % 6, hours=day // 6)  # pairs of equal dates: ties by resource id
            phq9 = observation(f"obs-{n:03d}", patient, when, (LOINC, "44261-6"), category="survey")
            clinic.write(phq9, patient, NOW + timedelta(minutes=n % 7))
            if n % 4 == 0:
                pulse = observation(f"vit-{n:03d}", patient, when, (LOINC, "8867-4"), category="vital-signs")
                clinic.write(pulse, patient, NOW + timedelta(minutes=n % 5))
    # One code under two systems: one resource, two matching tokens for `code=44261-6` (no system given).
    twice = observation(
        "obs-twice", p1, T0 + timedelta(days=3), (LOINC, "44261-6"), ("urn:x", "44261-6"), category="survey"
    )
    clinic.write(twice, p1, NOW)
    # A resource with no patient, and one without a clinical date.
    clinic.write(observation("obs-nobody", p1, T0, (LOINC, "44261-6"), category="survey"), None, NOW)
    undated = observation("obs-undated", p2, T0, (LOINC, "44261-6"), category="survey")
    del undated["effectiveDateTime"]
    clinic.write(undated, p2, NOW)
    return clinic


SORTS = [None, "date", "-date", "_lastUpdated", "-_lastUpdated"]
FILTERS: list[list[tuple[str, str]]] = [
    [("code", f"{LOINC}|44261-6")],
    [("code", "44261-6")],  # obs-twice matches through two tokens
    [("code", f"{LOINC}|")],  # any LOINC code
    [("code", f"{LOINC}|44261-6,{LOINC}|8867-4")],  # OR alternatives
    [("code", "44261-6,urn:x|44261-6")],  # OR alternatives matching the same resource
    [("category", "vital-signs")],
    [("code", f"{LOINC}|44261-6"), ("date", "ge2026-10-03"), ("date", "lt2026-10-05")],
    [("code", f"{LOINC}|44261-6"), ("date", "2026-10-02")],
    [("code", f"{LOINC}|44261-6"), ("_lastUpdated", "gt2026-11-01T12:02:00Z")],
    [("code", "no-such-code")],
]


@pytest.mark.parametrize("sort", SORTS)
def test_one_token_gives_what_the_general_search_gives(clinic: Clinic, sort: str | None) -> None:
    hidden = frozenset({clinic.patients[1]})
    for filters in FILTERS:
        params = [*filters, *([("_sort", sort)] if sort else [])]
        for extra in ([], [("_total", "accurate")], [("_total", "none")], [("_summary", "count")]):
            clinic.search([*params, *extra])
            clinic.search([*params, *extra], hidden=hidden)
        everything = clinic.search([*params, ("_count", "1000")])["ids"]
        assert len(everything) == len(set(everything)), "a resource matching several tokens is one match"
        # Deep paging by offset walks the same order, without gaps or repeats.
        walked: list[str] = []
        for offset in range(0, len(everything) + 3, 4):
            page = clinic.search([*params, ("_count", "4"), ("_offset", str(offset))])
            assert page["more"] == (offset + 4 < len(everything))
            walked += page["ids"]
        assert walked == everything
        if sort not in paging.KEYSET_SORTS:
            continue
        # Paging by cursor (the next links of _lastUpdated sorts) walks the same order; many resources share a
        # last_updated here, so the resource id tie break decides where each page starts.
        walked, cursor = [], ""
        while True:
            page = clinic.search([*params, ("_count", "4"), *([("_cursor", cursor)] if cursor else [])])
            walked += page["ids"]
            if not page["more"]:
                assert page["total"] == len(everything)  # the last page counts on from the cursor's position
                break
            last_updated, resource_id = page["last"]
            cursor = paging.Cursor(sort, len(walked), last_updated, resource_id).encode()
        assert walked == everything


def test_sorted_by_date_both_ways_with_ties_by_resource_id(clinic: Clinic) -> None:
    with Session(clinic.engine) as session:
        tokens = session.exec(
            select(FhirSearchToken).where(
                col(FhirSearchToken.tenant_id) == clinic.tenant_id,
                col(FhirSearchToken.value) == "44261-6",
                col(FhirSearchToken.system) == LOINC,
            )
        ).all()
    dated = {t.resource_id: t.clinical_date for t in tokens if t.clinical_date is not None}
    ascending = sorted(dated, key=lambda i: (dated[i], i))
    descending = sorted(dated, key=lambda i: (-dated[i].timestamp(), i))
    window = [("date", "ge2026-10-01"), ("_count", "1000")]  # a date condition leaves the undated one out
    assert clinic.search([("code", f"{LOINC}|44261-6"), ("_sort", "date"), *window])["ids"] == ascending
    assert clinic.search([("code", f"{LOINC}|44261-6"), ("_sort", "-date"), *window])["ids"] == descending
    assert len(ascending) > len({*dated.values()}), "the data has ties"
    first = clinic.search([("code", f"{LOINC}|44261-6"), ("_sort", "-date"), window[0], ("_count", "5")])
    assert first["ids"] == descending[:5] and first["more"] and first["total"] is None


def test_with_a_patient_and_with_hidden_patients(clinic: Clinic) -> None:
    p1, p2, _ = clinic.patients
    mine = clinic.search([("code", f"{LOINC}|44261-6"), ("patient", p1), ("_sort", "-date"), ("_count", "1000")])
    every = clinic.search([("code", f"{LOINC}|44261-6"), ("_sort", "-date"), ("_count", "1000")])
    with Session(clinic.engine) as session:
        owner = {
            t.resource_id: t.patient_id
            for t in session.exec(select(FhirSearchToken).where(col(FhirSearchToken.tenant_id) == clinic.tenant_id))
        }
    assert mine["ids"] == [i for i in every["ids"] if owner[i] == p1]
    seen = clinic.search([("code", f"{LOINC}|44261-6"), ("_sort", "-date"), ("_count", "1000")], hidden=frozenset({p2}))
    assert seen["ids"] == [i for i in every["ids"] if owner[i] != p2]
    assert "obs-nobody" in seen["ids"], "a resource without a patient is never hidden"
    assert seen["total"] == len(seen["ids"])


def test_a_new_current_version_moves_the_resource_and_a_retracted_one_disappears(clinic: Clinic) -> None:
    p1 = clinic.patients[0]
    # (dated ones only: PostgreSQL puts NULL first in a descending order, SQLite last; both paths agree)
    newest_first = [("code", f"{LOINC}|44261-6"), ("_sort", "-date"), ("date", "ge2026-01-01"), ("_count", "3")]
    before = clinic.search(newest_first)["ids"]
    assert "obs-001" not in before
    later = NOW + timedelta(hours=1)
    clinic.write(observation("obs-001", p1, T0 + timedelta(days=30), (LOINC, "44261-6"), category="survey"), p1, later)
    assert clinic.search(newest_first)["ids"] == ["obs-001", *before[:2]]
    assert clinic.search([("code", f"{LOINC}|44261-6"), ("_sort", "-_lastUpdated"), ("_count", "1")])["ids"] == [
        "obs-001"
    ]
    assert clinic.search([("code", f"{LOINC}|44261-6"), ("date", "ge2026-10-31")])["ids"] == ["obs-001"]
    # Its code changes: it leaves the old code's results and joins the new one's.
    clinic.write(observation("obs-001", p1, T0, (LOINC, "8867-4"), category="vital-signs"), p1, later)
    assert "obs-001" not in clinic.search([("code", f"{LOINC}|44261-6"), ("_count", "1000")])["ids"]
    assert "obs-001" in clinic.search([("code", f"{LOINC}|8867-4"), ("_count", "1000")])["ids"]
    # Retracted: a deleted version, no tokens, gone from every search.
    clinic.retract("obs-001", later + timedelta(minutes=1))
    clinic.retract(before[0], later + timedelta(minutes=1))
    assert "obs-001" not in clinic.search([("code", f"{LOINC}|8867-4"), ("_count", "1000")])["ids"]
    assert clinic.search(newest_first)["ids"][:2] == before[1:3]
    assert before[0] not in clinic.search([("code", f"{LOINC}|44261-6"), ("_count", "1000")])["ids"]
    with Session(clinic.engine) as session:
        left = session.exec(
            select(FhirSearchToken).where(
                col(FhirSearchToken.tenant_id) == clinic.tenant_id,
                col(FhirSearchToken.resource_id).in_(["obs-001", before[0]]),
            )
        ).all()
    assert left == []


@pytest.mark.parametrize("filters", [[("code", f"{LOINC}|44261-6")], []], ids=["token path", "general path"])
def test_a_cursor_neither_skips_nor_repeats_when_resources_change_between_pages(
    clinic: Clinic, filters: list[tuple[str, str]]
) -> None:
    """Newest first, as a poller reads. Between its pages a new resource arrives (by `_offset` the next page
    repeats the first page's last match), then two it has seen are retracted (by `_offset` one match is never
    shown). The cursor goes on from the last match it returned, whatever changed before it."""
    newest_first = [*filters, ("_sort", "-_lastUpdated")]
    everything = clinic.search([*newest_first, ("_count", "1000")])["ids"]
    first = clinic.search([*newest_first, ("_count", "4")])
    last_updated, resource_id = first["last"]
    cursor = paging.Cursor("-_lastUpdated", 4, last_updated, resource_id).encode()
    second = [*newest_first, ("_count", "4"), ("_cursor", cursor)]
    by_offset = [*newest_first, ("_count", "4"), ("_offset", "4")]
    p1 = clinic.patients[0]
    clinic.write(observation("obs-new", p1, T0, (LOINC, "44261-6"), category="survey"), p1, NOW + timedelta(hours=2))
    assert clinic.search(second)["ids"] == everything[4:8]
    assert clinic.search(by_offset)["ids"] == everything[3:7]  # everything[3] again
    for seen in first["ids"][:2]:
        clinic.retract(seen, NOW + timedelta(hours=3))
    assert clinic.search(second)["ids"] == everything[4:8]
    assert clinic.search(by_offset)["ids"] == everything[5:9]  # everything[4] never shown
