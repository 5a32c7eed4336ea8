"""One intake per resource type: the US Core PHQ-9 and ONC BHP C-SSRS QuestionnaireResponses read back with the
author, source and item text they were sent with, the same whether POSTed, sent in a transaction, imported with
`tandem import` or pulled from an EHR (sekmet-fhir); bad input is refused naming the element, with its issue code.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from service.settings import get_settings
from service.sync.pull import pull
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.fhir.support import FHIR_JSON, patient_resource
from tests.shared_fixtures import load_fixture
from tests.sync.sync_harness import SyncApp, pull_cache, sync_app_fixture

pytestmark = pytest.mark.fixtures

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()

FIXTURES = {
    "us-core-phq-9": "fhir/uscore7-QuestionnaireResponse-phq-9-example.json",
    "onc-bhp-c-ssrs": "fhir/onc-bhp-QuestionnaireResponse-C-SSRS-example-1.json",
}
PATHS = ["post", "transaction", "import", "pull"]


def as_sent(resource: dict[str, Any]) -> dict[str, Any]:
    """What must read back unchanged: who recorded it, who answered, and every item with its text and answer."""
    return {
        "author": resource.get("author"),
        "source": resource.get("source"),
        "item": [(i["linkId"], i.get("text"), _number_or_value(i["answer"])) for i in resource["item"]],
    }


def _number_or_value(answers: list[dict[str, Any]]) -> Any:
    # 12 and 12.0 are the same decimal; JSON writers differ in which they print.
    [answer] = answers
    if "valueDecimal" in answer:
        return ("decimal", float(answer["valueDecimal"]))
    coding = answer.get("valueCoding")
    return ("coding", coding["system"], coding["code"]) if coding else answer


class Paths:
    def __init__(self, sync_app: SyncApp, sekmet: SekmetServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.app = sync_app
        self.sekmet = sekmet
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.tenant = sync_app.tenant()
        self.headers = {
            **sync_app.driver(self.tenant, "ehr-system").headers,
            "Content-Type": FHIR_JSON,
            "Accept": FHIR_JSON,
        }

    def our_patient(self) -> str:
        created = self.app.client.post("/fhir/Patient", json=patient_resource(), headers=self.headers)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def post(self, resource: dict[str, Any]) -> str:
        resource["subject"] = {"reference": f"Patient/{self.our_patient()}"}
        created = self.app.client.post("/fhir/QuestionnaireResponse", json=resource, headers=self.headers)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def transaction(self, resource: dict[str, Any]) -> str:
        patient_url = f"urn:uuid:{uuid.uuid4()}"
        resource["subject"] = {"reference": patient_url}
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": patient_url,
                    "resource": patient_resource(),
                    "request": {"method": "POST", "url": "Patient"},
                },
                {
                    "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                    "resource": resource,
                    "request": {"method": "POST", "url": "QuestionnaireResponse"},
                },
            ],
        }
        answered = self.app.client.post("/fhir", json=bundle, headers=self.headers)
        assert answered.status_code == 200, answered.text
        response = answered.json()["entry"][1]["response"]
        assert response["status"].startswith("201"), response
        return str(response["location"].split("/")[1])

    def import_(self, resource: dict[str, Any]) -> str:
        resource["subject"] = {"reference": f"Patient/{self.our_patient()}"}
        file = self.tmp_path / "export.ndjson"
        file.write_text(json.dumps(resource) + "\n", encoding="utf-8")
        self.monkeypatch.setenv("TANDEM_DATABASE_URL", self.app.settings.database_url)
        self.monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
        get_settings.cache_clear()
        try:
            ran = CliRunner().invoke(cli, ["import", str(file), "--tenant", self.tenant])
        finally:
            get_settings.cache_clear()
        assert ran.exit_code == 0 and "1 created" in ran.output, ran.output
        return self._only_response()

    def pull(self, resource: dict[str, Any]) -> str:
        mrn_system = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}"
        target = self.app.target(
            self.tenant, self.sekmet.base_url, pull=["patients", "questionnaire-responses"], mrn_system=mrn_system
        )
        mrn = {
            "system": mrn_system,
            "value": f"MRN-{uuid.uuid4().hex[:8]}",
            "type": patient_resource()["identifier"][0]["type"],
        }
        with self.sekmet.client() as peer:
            patient = peer.post("Patient", json=patient_resource(identifier=[mrn]))
            assert patient.status_code == 201, patient.text
            resource["subject"] = {"reference": f"Patient/{patient.json()['id']}"}
            resource.pop("id", None)
            stored = peer.post("QuestionnaireResponse", json=resource)
            assert stored.status_code == 201, stored.text
        summary = pull(self.app.engine, self.app.settings, target, capability_cache=pull_cache(target, self.sekmet))
        assert summary.kinds["questionnaire-responses"].created == 1, summary
        return self._only_response()

    def _only_response(self) -> str:
        found = self.app.client.get("/fhir/QuestionnaireResponse", headers=self.headers).json()
        [entry] = found["entry"]
        return str(entry["resource"]["id"])

    def read(self, response_id: str) -> dict[str, Any]:
        read = self.app.client.get(f"/fhir/QuestionnaireResponse/{response_id}", headers=self.headers)
        assert read.status_code == 200, read.text
        body: dict[str, Any] = read.json()
        return body

    def author_kind(self, response_id: str) -> str:
        record = self.app.driver(self.tenant).client.get(
            f"/api/v1/questionnaire-responses/{response_id}", headers=self.app.driver(self.tenant).headers
        )
        assert record.status_code == 200, record.text
        return str(record.json()["author_kind"])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fixture", list(FIXTURES))
def test_a_response_reads_back_as_sent_whichever_way_it_came(
    sync_app: SyncApp,
    sekmet: SekmetServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fixture: str,
    path: str,
) -> None:
    sent = load_fixture(FIXTURES[fixture])
    paths = Paths(sync_app, sekmet, tmp_path, monkeypatch)
    send: Callable[[dict[str, Any]], str] = getattr(paths, "import_" if path == "import" else path)
    response_id = send(copy.deepcopy(sent))
    read = paths.read(response_id)
    assert as_sent(read) == as_sent(sent)
    assert read["author"] == sent["author"]  # Practitioner/…: not the patient
    assert "source" not in read  # none was sent: the patient is not invented as the one who answered
    assert paths.author_kind(response_id) == "clinician"  # a clinician-rated record, not self-report


BAD_INPUT: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("no authored", lambda qr: qr.pop("authored"), "required", "QuestionnaireResponse.authored"),
    (
        "partial authored",
        lambda qr: qr.update(authored="2022-11"),
        "value",
        "QuestionnaireResponse.authored",
    ),
    ("stopped", lambda qr: qr.update(status="stopped"), "not-supported", "QuestionnaireResponse.status"),
    ("item not an array", lambda qr: qr.update(item={"linkId": "x"}), "structure", "QuestionnaireResponse.item"),
    (
        "two values in one answer",
        lambda qr: qr["item"][0]["answer"][0].update(valueInteger=1),
        "invariant",
        "QuestionnaireResponse.item[0].answer[0]",
    ),
    (
        "an answer code not in the list",
        lambda qr: qr["item"][3]["answer"][0]["valueCoding"].update(code="LA0000-0"),
        "code-invalid",
        "QuestionnaireResponse.item[3].answer[0]",
    ),
    (
        "an item answered twice",
        lambda qr: qr["item"].append(copy.deepcopy(qr["item"][0])),
        "invariant",
        "QuestionnaireResponse.item[11].linkId",
    ),
    (
        "a total that is not a number",
        lambda qr: qr["item"][9].update(answer=[{"valueString": "twelve"}]),
        "value",
        "QuestionnaireResponse.item[9].answer[0]",
    ),
    (
        "an unknown patient",
        lambda qr: qr.update(subject={"reference": "Patient/nobody-here"}),
        "not-found",
        "QuestionnaireResponse.subject",
    ),
]


@pytest.mark.parametrize(("change", "code", "expression"), [b[1:] for b in BAD_INPUT], ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_refused_naming_the_element_with_its_issue_code(
    sync_app: SyncApp,
    sekmet: SekmetServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[dict[str, Any]], None],
    code: str,
    expression: str,
) -> None:
    paths = Paths(sync_app, sekmet, tmp_path, monkeypatch)
    resource = copy.deepcopy(load_fixture(FIXTURES["us-core-phq-9"]))
    resource["subject"] = {"reference": f"Patient/{paths.our_patient()}"}
    change(resource)
    refused = sync_app.client.post("/fhir/QuestionnaireResponse", json=resource, headers=paths.headers)
    assert refused.status_code in (400, 422), refused.text
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert (issue["code"], issue["expression"]) == (code, [expression]), issue
    stored = sync_app.client.get("/fhir/QuestionnaireResponse", headers=paths.headers).json()
    assert stored.get("total", len(stored.get("entry", []))) == 0  # nothing was stored
