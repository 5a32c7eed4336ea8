"""Real published resources map inbound as expected, or are refused on purpose with the reason asserted."""

from __future__ import annotations

import pytest

from fhir_mappings import (
    MappingError,
    administration_from_fhir,
    operation_outcome,
    read_score_observation,
    response_from_fhir,
    writable_types,
)
from service.instruments import INSTRUMENTS, TOTAL_CODES, score_answers
from service.records.questionnaire import QuestionnaireResponseCreate
from tests.fhir_mappings.strategies import BASE
from tests.fhir_mappings.support import own_id
from tests.shared_fixtures import load_fixture

EHR = "https://ehr.example.org/fhir"
pytestmark = pytest.mark.fixtures


def known_patient(reference: str) -> str | None:
    return "0b9f3a52-5d7c-4f55-9a0e-2f7a1c0d4e11" if reference.endswith("Patient/example") else own_id(reference)


def test_us_core_phq9_response_maps_to_raw_answers_the_service_scores_to_12() -> None:
    resource = load_fixture("fhir/uscore7-QuestionnaireResponse-phq-9-example.json")
    body = response_from_fhir(
        resource, canonical_base=BASE, resolve_patient=known_patient, source_system=EHR, instrument="phq-9"
    )
    create = QuestionnaireResponseCreate.model_validate(body)
    assert create.questionnaire == "http://hl7.org/fhir/us/core/Questionnaire/phq-9-example"
    assert create.source is not None and create.source.value == "QuestionnaireResponse/phq-9-example"
    assert create.author_kind == "clinician"  # author is Practitioner/practitioner-1, no source
    assert [a.link_id for a in create.answers][-2:] == ["/44261-6", "/69722-7"]
    assert create.answers[-2].value_decimal == 12
    scored = [a for a in create.answers if a.link_id != "/44261-6"]
    score = score_answers(INSTRUMENTS["phq-9"], scored)
    assert score.total == 12 and score.complete


def test_foreign_questionnaire_without_instrument_is_refused() -> None:
    resource = load_fixture("fhir/uscore7-QuestionnaireResponse-phq-9-example.json")
    with pytest.raises(MappingError) as caught:
        response_from_fhir(resource, canonical_base=BASE, resolve_patient=known_patient)
    assert caught.value.location == "QuestionnaireResponse.questionnaire"
    assert "not one of our Questionnaires" in caught.value.message
    outcome = operation_outcome(caught.value)
    assert outcome["issue"][0]["code"] == "not-supported"
    assert outcome["issue"][0]["expression"] == ["QuestionnaireResponse.questionnaire"]


def test_unknown_patient_is_refused() -> None:
    resource = load_fixture("fhir/uscore7-QuestionnaireResponse-phq-9-example.json")
    with pytest.raises(MappingError) as caught:
        response_from_fhir(resource, canonical_base=BASE, resolve_patient=lambda _: None, instrument="phq-9")
    assert caught.value.location == "QuestionnaireResponse.subject"
    assert caught.value.code == "not-found"


def test_cssrs_response_keeps_yes_no_codes() -> None:
    resource = load_fixture("fhir/onc-bhp-QuestionnaireResponse-C-SSRS-example-1.json")
    body = response_from_fhir(
        resource,
        canonical_base=BASE,
        resolve_patient=lambda _: "p1",
        source_system=EHR,
        instrument="c-ssrs-screener",
    )
    create = QuestionnaireResponseCreate.model_validate(body)
    answers = {a.link_id: a.value_coding.code for a in create.answers if a.value_coding}
    screener = ["/93246-7", "/93247-5", "/93248-3", "/93249-1", "/93250-9", "/93267-3", "/93269-9"]
    assert [answers[i] for i in screener] == ["LA32-8"] * 7  # all "No"
    assert answers["/93374-7"] == "LA9194-7"  # the sender's risk level travels as a raw answer
    assert create.source is not None and create.source.system == EHR


def test_us_core_total_as_value_string_is_read_as_the_number_12() -> None:
    observation = load_fixture("fhir/uscore7-Observation-PHQ9-item-example-44261-6.json")
    sent = read_score_observation(observation, canonical_base=BASE, resolve_patient=known_patient, totals=TOTAL_CODES)
    assert (sent.instrument, sent.total, sent.total_location) == ("phq-9", 12.0, "Observation.valueString")
    assert sent.components == ()
    assert sent.header["author_kind"] == "clinician"
    assert sent.header["authored_at"].startswith("2022-11-29T20:50:32")


def test_us_core_phq9_panel_is_refused_with_a_hint() -> None:
    observation = load_fixture("fhir/uscore7-Observation-PHQ9-panel-example-44249-1.json")
    with pytest.raises(MappingError) as caught:
        read_score_observation(observation, canonical_base=BASE, resolve_patient=known_patient, totals=TOTAL_CODES)
    assert caught.value.location == "Observation.code"
    assert "panel" in caught.value.message


def test_r4_medadmin0305_is_refused_because_it_is_not_ketamine() -> None:
    resource = load_fixture("fhir/r4-MedicationAdministration-medadmin0305.json")
    with pytest.raises(MappingError) as caught:
        administration_from_fhir(resource, canonical_base=BASE, resolve_patient=lambda _: "p1")
    assert caught.value.location == "MedicationAdministration.contained(Medication).code"
    assert "51144-050-01" in caught.value.message


def test_r4_medadmin0305_quirks_are_read_when_the_drug_is_ketamine() -> None:
    """Same resource with the contained Medication recoded: IV 255560000, mg/kg dose, lot, duration not rate."""
    resource = load_fixture("fhir/r4-MedicationAdministration-medadmin0305.json")
    resource["contained"][0]["code"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6130"}]
    }
    body = administration_from_fhir(resource, canonical_base=BASE, resolve_patient=lambda _: "p1", source_system=EHR)
    assert body["route"] == "intravenous"
    assert body["dose_mg_per_kg"] == 1.8 and "dose_mg" not in body
    assert body["lot_number"] == "12345"
    assert body["started_at"] == "2015-01-15T04:30:00+01:00"
    assert body["ended_at"] == "2015-01-15T14:30:00+01:00"  # 10 h from effectivePeriod, not "20 min"
    assert body["source"] == {"system": EHR, "value": "MedicationAdministration/medadmin0305"}
    assert body["performer_id"] is None  # Practitioner/f007 is the EHR's, not one of ours


def test_references_absolute_and_relative_resolve_alike() -> None:
    resource = load_fixture("fhir/uscore7-QuestionnaireResponse-phq-9-example.json")
    seen: list[str] = []

    def resolver(reference: str) -> str | None:
        seen.append(reference)
        return "p1"

    resource["subject"] = {"reference": "https://ehr.example.org/fhir/Patient/example/_history/3"}
    body = response_from_fhir(resource, canonical_base=BASE, resolve_patient=resolver, instrument="phq-9")
    assert body["patient_id"] == "p1"
    assert seen == ["https://ehr.example.org/fhir/Patient/example/_history/3"]


def test_epic_capabilities() -> None:
    writes = writable_types(load_fixture("ehr-capabilities/epic-r4-sandbox-capabilitystatement.json"))
    assert "MedicationAdministration" not in writes
    assert "Encounter" not in writes
    assert {"create", "update"} <= writes["Procedure"]
    assert {"create", "update"} <= writes["Observation"]
    assert "conditional-create" not in writes["Observation"]
    assert writes["system"] == set()


def test_oracle_health_capabilities() -> None:
    writes = writable_types(load_fixture("ehr-capabilities/oracle-health-r4-capabilitystatement.json"))
    assert "MedicationAdministration" not in writes
    assert writes["Procedure"] == {"create"}
    assert writes["Encounter"] == {"create", "patch"}
    assert writes["QuestionnaireResponse"] == {"update"}
    assert writes["system"] == {"batch"}
