"""US Core Patient search on /fhir: name, family, given (R4 string search), birthdate (R4 date search on a day),
gender (token), identifier, and their combinations — exactly the matches, within the tenant, restricted patients
hidden (issue #21, item 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import API, ApiDriver, patient_body


@pytest.fixture
def ehr(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> ApiDriver:
    return ApiDriver(client, auth(tenant, "ehr-system"))


def _found(client: TestClient, headers: dict[str, str], params: dict[str, str] | list[tuple[str, str]]) -> set[str]:
    response = client.get("/fhir/Patient", params=params, headers=headers)
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    assert "next" not in {link["relation"] for link in bundle.get("link", [])}, "the test's matches fit one page"
    return {entry["resource"]["id"] for entry in bundle.get("entry", [])}


@pytest.fixture
def petrovs(ehr: ApiDriver) -> dict[str, str]:
    """Two Dana Petrovs (one with the accent), a Petrova, a Peterson, and a patient whose family name is Dana."""
    return {
        "pétrov 1984": ehr.patient(family_name="Pétrov", given_name="Dana", birth_date="1984-03-09", sex="female"),
        "petrov 1990": ehr.patient(family_name="Petrov", given_name="Dana Maria", birth_date="1990-01-01", sex="male"),
        "petrova 1984": ehr.patient(family_name="PETROVA", given_name="Zoë", birth_date="1984-03-09", sex="female"),
        "peterson": ehr.patient(family_name="Peterson", given_name="Ola", birth_date="1984-03-10", sex="other"),
        "dana": ehr.patient(family_name="Dana", given_name="Petr", birth_date="1985-01-01", sex="unknown"),
    }


def test_family_and_birthdate_return_exactly_the_matches(
    client: TestClient, ehr: ApiDriver, petrovs: dict[str, str]
) -> None:
    """The issue's done-when: family (starts with, accents and case ignored) AND birthdate."""
    found = _found(client, ehr.headers, {"family": "petrov", "birthdate": "1984-03-09"})
    assert found == {petrovs["pétrov 1984"], petrovs["petrova 1984"]}
    assert _found(client, ehr.headers, {"family": "Pétrov"}) == {
        petrovs["pétrov 1984"],
        petrovs["petrov 1990"],
        petrovs["petrova 1984"],
    }
    # The family name only: Dana is a given name of the Petrovs, and the family of one patient.
    assert _found(client, ehr.headers, {"family": "dana"}) == {petrovs["dana"]}
    # Comma is OR within a parameter; repeating a parameter is AND.
    assert _found(client, ehr.headers, {"family": "petrova,peters"}) == {petrovs["petrova 1984"], petrovs["peterson"]}
    assert _found(client, ehr.headers, [("family", "pet"), ("family", "petrov")]) == {
        petrovs["pétrov 1984"],
        petrovs["petrov 1990"],
        petrovs["petrova 1984"],
    }
    assert _found(client, ehr.headers, {"family": "etrov"}) == set()  # starts with, not contains


def test_given_and_name(client: TestClient, ehr: ApiDriver, petrovs: dict[str, str]) -> None:
    assert _found(client, ehr.headers, {"given": "dan"}) == {petrovs["pétrov 1984"], petrovs["petrov 1990"]}
    assert _found(client, ehr.headers, {"given": "maria"}) == {petrovs["petrov 1990"]}  # a second given name
    assert _found(client, ehr.headers, {"given": "zoe"}) == {petrovs["petrova 1984"]}
    assert _found(client, ehr.headers, {"given": "petrov"}) == set()  # a family name is not a given one
    # name: every word starts a word of the name, family or given.
    assert _found(client, ehr.headers, {"name": "dana"}) == {
        petrovs["pétrov 1984"],
        petrovs["petrov 1990"],
        petrovs["dana"],
    }
    assert _found(client, ehr.headers, {"name": "dana pétr"}) == {
        petrovs["pétrov 1984"],
        petrovs["petrov 1990"],
        petrovs["dana"],
    }
    assert _found(client, ehr.headers, {"name": "ola peter"}) == {petrovs["peterson"]}
    assert _found(client, ehr.headers, {"name": "maria", "gender": "male"}) == {petrovs["petrov 1990"]}


def test_a_name_sent_only_as_text_is_found_by_name_not_family(client: TestClient, ehr: ApiDriver) -> None:
    body = patient_body(name_text="Ngozi Textonly-Adeyemi")
    del body["family_name"], body["given_name"]
    textual = ehr.create("patients", body)["id"]
    assert _found(client, ehr.headers, {"name": "adeyemi"}) == set()  # words start at spaces, not hyphens
    assert _found(client, ehr.headers, {"name": "textonly"}) == {textual}
    assert _found(client, ehr.headers, {"name": "ngozi"}) == {textual}
    assert _found(client, ehr.headers, {"family": "ngozi"}) == set()
    assert _found(client, ehr.headers, {"name:exact": "Ngozi Textonly-Adeyemi"}) == {textual}


def test_the_exact_and_contains_modifiers(client: TestClient, ehr: ApiDriver, petrovs: dict[str, str]) -> None:
    assert _found(client, ehr.headers, {"family:exact": "Pétrov"}) == {petrovs["pétrov 1984"]}
    assert _found(client, ehr.headers, {"family:exact": "Petrov"}) == {petrovs["petrov 1990"]}
    assert _found(client, ehr.headers, {"family:exact": "petrov"}) == set()  # case counts
    assert _found(client, ehr.headers, {"family:exact": "Petrov,PETROVA"}) == {
        petrovs["petrov 1990"],
        petrovs["petrova 1984"],
    }
    assert _found(client, ehr.headers, {"given:exact": "Dana Maria"}) == {petrovs["petrov 1990"]}
    assert _found(client, ehr.headers, {"name:exact": "Dana"}) == {petrovs["pétrov 1984"], petrovs["dana"]}
    assert _found(client, ehr.headers, {"family:contains": "etrov"}) == {
        petrovs["pétrov 1984"],
        petrovs["petrov 1990"],
        petrovs["petrova 1984"],
    }
    assert _found(client, ehr.headers, {"given:contains": "ari"}) == {petrovs["petrov 1990"]}
    assert _found(client, ehr.headers, {"name:contains": "ters"}) == {petrovs["peterson"]}
    # LIKE's wildcards are searched as text.
    assert _found(client, ehr.headers, {"family:contains": "%"}) == set()
    assert _found(client, ehr.headers, {"family": "_etrov"}) == set()


@pytest.mark.parametrize(
    ("birthdate", "expected"),
    [
        ("1984-03-09", {"pétrov 1984", "petrova 1984"}),
        ("eq1984-03", {"pétrov 1984", "petrova 1984", "peterson"}),
        ("1984", {"pétrov 1984", "petrova 1984", "peterson"}),
        ("lt1984-03-10", {"pétrov 1984", "petrova 1984"}),
        ("eb1984-03-10", {"pétrov 1984", "petrova 1984"}),
        ("le1984-03-10", {"pétrov 1984", "petrova 1984", "peterson"}),
        ("gt1984-03-09", {"peterson", "dana", "petrov 1990"}),
        ("sa1984", {"dana", "petrov 1990"}),
        ("ge1984-03-10", {"peterson", "dana", "petrov 1990"}),
        ("le1984", {"pétrov 1984", "petrova 1984", "peterson"}),
        ("1985-01-01,1990", {"dana", "petrov 1990"}),
        ("2001", set()),
    ],
)
def test_birthdate_prefixes(
    client: TestClient, ehr: ApiDriver, petrovs: dict[str, str], birthdate: str, expected: set[str]
) -> None:
    assert _found(client, ehr.headers, {"birthdate": birthdate}) == {petrovs[p] for p in expected}


def test_gender_is_a_token(client: TestClient, ehr: ApiDriver, petrovs: dict[str, str]) -> None:
    women = {petrovs["pétrov 1984"], petrovs["petrova 1984"]}
    assert _found(client, ehr.headers, {"gender": "female"}) == women
    assert _found(client, ehr.headers, {"gender": "http://hl7.org/fhir/administrative-gender|female"}) == women
    assert _found(client, ehr.headers, {"gender": "female,other"}) == women | {petrovs["peterson"]}
    assert _found(client, ehr.headers, {"gender": "http://hl7.org/fhir/administrative-gender|"}) == set(
        petrovs.values()
    )
    assert _found(client, ehr.headers, {"gender": "urn:other:system|female"}) == set()
    assert _found(client, ehr.headers, {"gender": "|female"}) == set()  # a gender always has its system
    assert _found(client, ehr.headers, {"gender": "f"}) == set()  # a code, not a prefix


def test_identifier_with_the_demographics(client: TestClient, ehr: ApiDriver, petrovs: dict[str, str]) -> None:
    mrn = ehr.client.get(f"{API}/patients/{petrovs['petrov 1990']}", headers=ehr.headers).json()["identifiers"][0]
    identifier = f"{mrn['system']}|{mrn['value']}"
    assert _found(client, ehr.headers, {"identifier": identifier, "family": "petrov"}) == {petrovs["petrov 1990"]}
    assert _found(client, ehr.headers, {"identifier": identifier, "birthdate": "1984"}) == set()
    assert _found(client, ehr.headers, {"_id": petrovs["dana"], "given": "petr"}) == {petrovs["dana"]}


def test_a_renamed_patient_is_found_by_the_new_name(client: TestClient, ehr: ApiDriver) -> None:
    created = ehr.create("patients", patient_body(family_name="Oldname", given_name="Kim"))
    renamed = client.patch(
        f"{API}/patients/{created['id']}",
        json={"family_name": "Newname", "given_name": "Kimberly"},
        headers={**ehr.headers, "If-Match": f'W/"{created["version"]}"'},
    )
    assert renamed.status_code == 200, renamed.text
    assert _found(client, ehr.headers, {"family": "oldname"}) == set()
    assert _found(client, ehr.headers, {"family": "newname", "given": "kimberly"}) == {created["id"]}


def test_another_tenants_patients_are_never_found(
    client: TestClient, ehr: ApiDriver, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    mine = ehr.patient(family_name="Samename", birth_date="1970-07-07")
    other = ApiDriver(client, auth(new_tenant(), "ehr-system"))
    theirs = other.patient(family_name="Samename", birth_date="1970-07-07")
    criteria = {"family": "samename", "birthdate": "1970-07-07", "gender": "female"}
    assert _found(client, ehr.headers, criteria) == {mine}
    assert _found(client, other.headers, criteria) == {theirs}


def test_restricted_patients_stay_hidden(
    client: TestClient, ehr: ApiDriver, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    open_patient = ehr.patient(family_name="Hiddenname", given_name="Open")
    restricted = ehr.patient(family_name="Hiddenname", given_name="Closed", restricted=True)
    clinician = auth(tenant, "clinician")
    for criteria in ({"family": "hiddenname"}, {"given": "closed"}, {"name": "hiddenname"}, {"gender": "female"}):
        assert restricted not in _found(client, clinician, criteria), criteria
    assert _found(client, clinician, {"family": "hiddenname"}) == {open_patient}
    counted = client.get("/fhir/Patient", params={"family": "hiddenname", "_summary": "count"}, headers=clinician)
    assert counted.json()["total"] == 1
    assert _found(client, ehr.headers, {"family": "hiddenname"}) == {open_patient, restricted}  # the EHR sees all


@pytest.mark.parametrize(
    ("parameter", "value", "words"),
    [
        ("birthdate", "1984-13-01", "out of range"),
        ("birthdate", "9 March 1984", "is not a date"),
        ("birthdate", "1984-03-09T10:00:00Z", "birthdate takes YYYY, YYYY-MM or YYYY-MM-DD"),
        ("birthdate", "ne1984", "ne prefix"),
        ("birthdate", "ap1984", "is not a date"),
        ("gender", "|", "a token is"),
    ],
)
def test_a_bad_value_is_a_400_naming_the_parameter(
    client: TestClient, ehr: ApiDriver, parameter: str, value: str, words: str
) -> None:
    response = client.get("/fhir/Patient", params={parameter: value}, headers=ehr.headers)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert issue["expression"] == [parameter], issue
    assert words in issue["diagnostics"], issue


@pytest.mark.parametrize("parameter", ["family:text", "given:missing", "name:below", "gender:not", "birthdate:exact"])
def test_an_unknown_modifier_is_refused_naming_it(client: TestClient, ehr: ApiDriver, parameter: str) -> None:
    for prefer in ("handling=lenient", "handling=strict"):
        response = client.get("/fhir/Patient", params={parameter: "x"}, headers={**ehr.headers, "Prefer": prefer})
        assert response.status_code == 400, response.text
        [issue] = response.json()["issue"]
        assert issue["code"] == "not-supported"
        assert issue["expression"] == [parameter], issue
        assert "modifier" in issue["diagnostics"]


def test_the_capability_statement_declares_us_core_patient_search(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    [patient] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Patient"]
    declared = {p["name"]: p["type"] for p in patient["searchParam"]}
    assert {k: declared.get(k) for k in ("name", "family", "given", "birthdate", "gender", "identifier")} == {
        "name": "string",
        "family": "string",
        "given": "string",
        "birthdate": "date",
        "gender": "token",
        "identifier": "token",
    }
