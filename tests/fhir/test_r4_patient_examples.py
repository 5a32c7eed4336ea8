"""Every official R4 Patient example (hl7.fhir.r4.examples 4.0.1) that identifies a person is accepted and reads
back with its names, telecom, address, contacts, languages and deceased[x]; the others are refused naming the
element (the list is in docs/fhir.md). On SQLite and PostgreSQL, each example in a tenant of its own (two of
them share an MRN)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fhir.support import fhir_headers
from tests.r4_examples import r4_examples

# file -> (element, issue code): what does not identify a person, and why (docs/fhir.md, "Official examples").
REFUSED = {
    "Patient-animal.json": ("Patient.extension[0]", "not-supported"),  # a dog (patient-animal extension)
    "Patient-infant-fetal.json": ("Patient.name", "required"),  # a fetus: no name yet
    "Patient-newborn.json": ("Patient.name", "required"),  # a newborn not yet named (and no identifier)
    "Patient-proband.json": ("Patient.name", "required"),  # a pedigree member: no name
}
# The 22 files of the package; a new version with other examples should be looked at, not silently passed.
EXPECTED_FILES = 22


def _examples() -> dict[str, dict[str, Any]]:
    return r4_examples("Patient")


def test_the_package_holds_the_examples_this_test_judges() -> None:
    found = _examples()
    assert len(found) == EXPECTED_FILES, sorted(found)
    assert set(REFUSED) <= set(found)


@pytest.mark.parametrize(
    "name",
    [
        f"Patient-{n}.json"
        for n in (
            "animal",
            "ch-example",
            "dicom",
            "example",
            "f001",
            "f201",
            "genetics-example1",
            "glossy",
            "ihe-pcd",
            "infant-fetal",
            "infant-mom",
            "infant-twin-1",
            "infant-twin-2",
            "mom",
            "newborn",
            "pat1",
            "pat2",
            "pat3",
            "pat4",
            "proband",
            "xcda",
            "xds",
        )
    ],
)
def test_an_official_patient_example(
    client: TestClient, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]], name: str
) -> None:
    sent = _examples()[name]
    headers = fhir_headers(auth(new_tenant(), "ehr-system"))
    response = client.post("/fhir/Patient", json=sent, headers=headers)
    if name in REFUSED:
        assert response.status_code == 422, response.text
        [issue] = response.json()["issue"]
        assert (issue["expression"], issue["code"]) == ([REFUSED[name][0]], REFUSED[name][1])
        assert client.get("/fhir/Patient", headers=headers).json().get("total") == 0
        return
    assert response.status_code == 201, response.text
    back = client.get(f"/fhir/Patient/{response.json()['id']}", headers=headers).json()
    for element in ("name", "telecom", "address", "contact", "communication", "deceasedDateTime"):
        assert back.get(element) == sent.get(element), element
    assert back.get("deceasedBoolean", False) == sent.get("deceasedBoolean", False)
    assert back["gender"] == sent.get("gender", "unknown")
    assert back.get("birthDate") == sent.get("birthDate")
