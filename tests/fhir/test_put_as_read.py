"""A resource PUT back exactly as it was read changes nothing that matters: no field of the record is lost and
no derived resource (vital signs, sedation, the score, the session's Procedure) is retracted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.builders import API, PATIENT_RECORD_BODIES, ApiDriver
from tests.fhir.support import fhir_headers

TYPES = {
    "ketamine-administrations": "MedicationAdministration",
    "cbt-sessions": "Encounter",
    "questionnaire-responses": "QuestionnaireResponse",
}


@pytest.mark.parametrize("path", sorted(TYPES))
def test_put_as_read_keeps_the_record_and_its_derived_resources(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]], path: str
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    patient_id = api.patient()
    record = api.create(path, PATIENT_RECORD_BODIES[path](patient_id))
    headers = fhir_headers(api.headers)
    resource_type = TYPES[path]
    derived_before = _derived(client, headers, patient_id)
    read = client.get(f"/fhir/{resource_type}/{record['id']}", headers=headers)
    put = client.put(
        f"/fhir/{resource_type}/{record['id']}", json=read.json(), headers={**headers, "If-Match": read.headers["etag"]}
    )
    assert put.status_code == 200, put.text
    after = client.get(f"{API}/{path}/{record['id']}", headers=api.headers).json()
    ignore = {"version", "updated_at", "created_at", "score"}
    assert {k: v for k, v in after.items() if k not in ignore} == {k: v for k, v in record.items() if k not in ignore}
    assert _derived(client, headers, patient_id) == derived_before


def _derived(client: TestClient, headers: dict[str, str], patient_id: str) -> set[str]:
    found = set()
    for resource_type in ("Observation", "Procedure"):
        bundle = client.get(
            f"/fhir/{resource_type}", params={"patient": patient_id, "_count": 100}, headers=headers
        ).json()
        found |= {f"{resource_type}/{e['resource']['id']}" for e in bundle.get("entry", [])}
    return found
