"""Finding a patient in the caseload by name (accents and case ignored), MRN or date of birth; rows tell two
patients of one name apart (issue #21, item 2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.records.patient import name_key
from tests.builders import API, ApiDriver, enrollment_body


def _enrolled(api: ApiDriver, family: str, given: str, born: str, mrn: str) -> str:
    patient_id = api.patient(
        family_name=family,
        given_name=given,
        birth_date=born,
        identifiers=[{"system": "urn:test:mrn", "value": mrn}],
    )
    start = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    api.create("enrollments", enrollment_body(patient_id, start_date=start))
    return patient_id


@pytest.fixture
def caseload(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> tuple[Callable[..., Any], dict[str, str]]:
    api = ApiDriver(client, auth(tenant, "clinician"))
    ids = {
        "dana": _enrolled(api, "Petrov", "Dana", "1984-03-09", "MRN-4471"),
        "dana2": _enrolled(api, "Petrov", "Dana", "1991-11-30", "MRN-9902"),
        "zoe": _enrolled(api, "Pétrová", "Zoë", "1975-06-01", "mrn-0007"),
        "other": _enrolled(api, "Okafor", "Chidi", "1984-03-09", "MRN-1234"),
        "jose": _enrolled(api, "Núñez", "José", "1968-02-29", "MRN-5150"),
    }
    headers = auth(tenant, "coordinator")

    def read(**params: Any) -> Any:
        return client.get(f"{API}/caseload", params=params, headers=headers)

    return read, ids


def _found(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {row["patient_id"] for row in response.json()["rows"]}


def test_rows_tell_two_patients_of_one_name_apart(caseload: tuple[Callable[..., Any], dict[str, str]]) -> None:
    read, ids = caseload
    rows = {r["patient_id"]: r for r in read().json()["rows"]}
    same_name = [rows[ids["dana"]], rows[ids["dana2"]]]
    assert {(r["family_name"], r["given_name"]) for r in same_name} == {("Petrov", "Dana")}
    assert {(r["mrn"], r["birth_date"]) for r in same_name} == {("MRN-4471", "1984-03-09"), ("MRN-9902", "1991-11-30")}


def test_search_by_name_ignores_accents_case_and_word_order(
    caseload: tuple[Callable[..., Any], dict[str, str]],
) -> None:
    read, ids = caseload
    assert _found(read(q="petrov")) == {ids["dana"], ids["dana2"], ids["zoe"]}  # "Pétrová" too
    assert _found(read(q="PÉTROV dana")) == {ids["dana"], ids["dana2"]}
    assert _found(read(q="dana petrov")) == {ids["dana"], ids["dana2"]}
    assert _found(read(q="zoe petrova")) == {ids["zoe"]}  # no accents typed
    assert _found(read(q="okafor")) == {ids["other"]}
    assert _found(read(q="jose")) == {ids["jose"]}  # "José", typed without the accent
    assert _found(read(q="NUNEZ jose")) == {ids["jose"]}
    assert _found(read(q="nobody")) == set()
    # Wildcards are text, not patterns: "%" and "_" match no name.
    assert _found(read(q="%")) == set() and _found(read(q="P_trov")) == set()


def test_search_by_mrn_and_by_date_of_birth(caseload: tuple[Callable[..., Any], dict[str, str]]) -> None:
    read, ids = caseload
    assert _found(read(q="MRN-4471")) == {ids["dana"]}
    assert _found(read(q="mrn-4471")) == {ids["dana"]}  # case-insensitive
    assert _found(read(q="MRN-44")) == set()  # an MRN matches whole, never a prefix of another's
    assert _found(read(q="1984-03-09")) == {ids["dana"], ids["other"]}
    counts = read(q="petrov").json()["counts_by_status"]
    assert sum(counts.values()) == 3  # the counts are of the search's matches


@pytest.mark.parametrize(
    ("q", "says"),
    [
        ("   ", "is empty"),
        ("x" * 101, "at most 100 characters"),
        ("1984-02-30", "is not a date"),
    ],
)
def test_a_search_that_cannot_be_made_is_refused_and_says_why(
    caseload: tuple[Callable[..., Any], dict[str, str]], q: str, says: str
) -> None:
    read, _ = caseload
    refused = read(q=q)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert says in refused.text


def test_the_search_key_folds_accents_and_case() -> None:
    assert name_key("Pétrová", "Zoë") == "petrova zoe"
    assert name_key("STRAẞE", None) == "strasse"
    assert name_key("  Ó  Briain ", "Seán") == "o briain sean"
