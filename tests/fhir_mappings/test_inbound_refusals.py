"""Inbound refusals name the element and the reason; outbound decisions that matter clinically are pinned."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from fhir_mappings import (
    MappingError,
    administration_from_fhir,
    patient_from_fhir,
    psychotherapy_cpt,
    session_from_fhir,
    session_resources,
    to_json,
)
from service.records.cbt import CbtSessionPublic
from tests.examples_budget import examples
from tests.fhir_mappings import strategies as s
from tests.fhir_mappings.support import own_id

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def administration(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "6130"}]},
        "subject": {"reference": "Patient/p1"},
        "effectivePeriod": {"start": "2026-10-07T09:00:00+01:00"},
        "dosage": {
            "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]},
            "dose": {"value": 35, "system": "http://unitsofmeasure.org", "code": "mg"},
        },
    }
    return base | changes


@pytest.mark.parametrize(
    ("changes", "location", "fragment"),
    [
        ({"status": "in-progress"}, "MedicationAdministration.status", "not a finished administration"),
        ({"status": "not-done"}, "MedicationAdministration.statusReason", "needs a reason"),
        ({"dosage": {"dose": {"value": 1, "code": "mg"}}}, "MedicationAdministration.dosage.route", "route"),
        (
            {
                "dosage": {
                    "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]},
                    "dose": {"value": 1, "code": "mL"},
                }
            },
            "MedicationAdministration.dosage.dose.code",
            "neither mg nor mg/kg",
        ),
        ({"effectivePeriod": {"start": "2026-10-07"}}, "MedicationAdministration.effectivePeriod.start", "no time"),
        (
            {"effectivePeriod": {"start": "2026-10-07T09:00:00"}},
            "MedicationAdministration.effectivePeriod.start",
            "zone",
        ),
        ({"subject": {"reference": "Group/1"}}, "MedicationAdministration.subject", "not a Patient"),
        (
            {"resourceType": "MedicationRequest"},
            "MedicationAdministration.resourceType",
            "expected a MedicationAdministration",
        ),
    ],
)
def test_administration_refusals(changes: dict[str, Any], location: str, fragment: str) -> None:
    with pytest.raises(MappingError) as caught:
        administration_from_fhir(administration(**changes), canonical_base=s.BASE, resolve_patient=own_id)
    assert caught.value.location == location
    assert fragment in caught.value.message


def test_old_iv_route_code_and_effective_date_time_are_accepted() -> None:
    resource = administration(effectiveDateTime="2026-10-07T09:00:00Z")
    del resource["effectivePeriod"]
    resource["dosage"]["route"]["coding"][0]["code"] = "255560000"
    body = administration_from_fhir(resource, canonical_base=s.BASE, resolve_patient=own_id)
    assert body["route"] == "intravenous" and body["ended_at"] is None and body["dose_mg"] == 35


def test_unknown_session_observation_is_refused() -> None:
    heart = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "9279-1"}]},
    }
    with pytest.raises(MappingError) as caught:
        administration_from_fhir(administration(), [heart], canonical_base=s.BASE, resolve_patient=own_id)
    assert caught.value.location == "Observation[0].code"


_MRN = {"system": "urn:oid:1.2.3", "value": "MRN-1"}


@pytest.mark.parametrize(
    ("patient", "location", "code"),
    [
        ({"name": [{"family": "Rivera"}], "birthDate": "1984"}, "Patient.birthDate", "value"),
        (
            {"name": [{"family": "Rivera"}], "identifier": [{"type": {"text": "MRN"}, "value": "7"}]},
            "Patient.identifier[0]",
            "invalid",  # an MRN without the system it is issued under
        ),
        ({"name": [{"use": "official", "period": {"start": "2001"}}]}, "Patient.name", "required"),
        ({}, "Patient.name", "required"),
        ({"name": [{"family": "Rivera"}], "gender": "F"}, "Patient.gender", "code-invalid"),
        ({"name": [{"family": "Rivera"}], "deceasedDateTime": "14/02/2015"}, "Patient.deceasedDateTime", "value"),
        ({"name": [{"family": "Rivera"}], "deceasedBoolean": "yes"}, "Patient.deceasedBoolean", "structure"),
        (
            {"name": [{"family": "Rivera"}], "telecom": [{"system": "phone", "value": 5}]},
            "Patient.telecom[0].value",
            "structure",
        ),
        ({"name": [{"family": "Rivera"}], "address": {"city": "Leeds"}}, "Patient.address", "structure"),
        ({"name": "Rivera"}, "Patient.name", "structure"),
        (
            {
                "name": [{"given": ["Kenzi"]}],
                "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-animal"}],
            },
            "Patient.extension[0]",
            "not-supported",
        ),
    ],
)
def test_a_patient_that_does_not_identify_a_person_is_refused_naming_the_element(
    patient: dict[str, Any], location: str, code: str
) -> None:
    with pytest.raises(MappingError) as caught:
        patient_from_fhir({"resourceType": "Patient", "identifier": [_MRN], **patient}, canonical_base=s.BASE)
    assert (caught.value.location, caught.value.code) == (location, code)


@pytest.mark.parametrize("identifiers", [[], [{"system": "urn:x"}]], ids=["none", "without value"])
def test_a_patient_without_an_identifier_is_a_person_with_no_mrn(identifiers: list[dict[str, str]]) -> None:
    body = patient_from_fhir(
        {"resourceType": "Patient", "identifier": identifiers, "name": [{"family": "Rivera"}]}, canonical_base=s.BASE
    )
    assert (body["identifiers"], body["source"], body["family_name"]) == ([], None, "Rivera")


def test_a_given_only_or_text_only_name_without_birth_date_is_a_person() -> None:
    given = patient_from_fhir(
        {"resourceType": "Patient", "identifier": [_MRN], "name": [{"given": ["Sam"]}], "gender": "male"},
        canonical_base=s.BASE,
    )
    assert (given["family_name"], given["given_name"], given["name_text"], given["birth_date"]) == (
        None,
        "Sam",
        None,
        None,
    )
    text = patient_from_fhir(
        {"resourceType": "Patient", "identifier": [_MRN], "name": [{"text": "张无忌"}], "gender": "male"},
        canonical_base=s.BASE,
    )
    assert (text["family_name"], text["given_name"], text["name_text"]) == (None, None, "张无忌")


def test_epic_mrn_typed_only_by_text_or_by_the_target_system_is_an_mrn() -> None:
    epic = {"type": {"text": "MRN"}, "system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14", "value": "203713"}
    internal = {"type": {"text": "EPI"}, "system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.0", "value": "E1"}
    body = patient_from_fhir(
        {"resourceType": "Patient", "identifier": [internal, epic], "name": [{"family": "Lin"}]},
        canonical_base=s.BASE,
    )
    assert body["identifiers"] == [{"system": epic["system"], "value": "203713"}]
    untyped = {"system": "urn:oid:9.9", "value": "77"}
    by_system = patient_from_fhir(
        {"resourceType": "Patient", "identifier": [internal, untyped], "name": [{"family": "Lin"}]},
        canonical_base=s.BASE,
        mrn_systems=frozenset({"urn:oid:9.9"}),
    )
    assert by_system["identifiers"] == [untyped]
    assert by_system["source"] == {"system": internal["system"], "value": "E1"}


def test_ehr_born_patient_takes_mrns_by_type_and_source_from_its_id() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "e123",
        "identifier": [
            {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                "system": "urn:oid:1.2.3",
                "value": "MRN-1",
            },
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "000-00-0000"},
        ],
        "name": [{"use": "usual", "family": "Nick"}, {"use": "official", "family": "Rivera", "given": ["Sam", "J"]}],
        "birthDate": "1984-03-09",
    }
    body = patient_from_fhir(patient, canonical_base=s.BASE, source_system="https://ehr.example.org/fhir")
    assert body["identifiers"] == [{"system": "urn:oid:1.2.3", "value": "MRN-1"}]
    assert body["source"] == {"system": "https://ehr.example.org/fhir", "value": "Patient/e123"}
    assert (body["family_name"], body["given_name"], body["sex"]) == ("Rivera", "Sam J", "unknown")


@settings(max_examples=examples(25), deadline=None)
@given(s.cbt_sessions())
def test_no_show_is_cancelled_encounter_with_reason_and_not_done_procedure(session: CbtSessionPublic) -> None:
    record = session.model_copy(update={"status": "no-show", "actual_start": None, "actual_end": None})
    encounter, procedure = (to_json(r) for r in session_resources(record, canonical_base=s.BASE).all())
    assert encounter["status"] == "cancelled"
    reason = next(e for e in encounter["extension"] if e["url"].endswith("/encounter-status-reason"))
    assert reason["valueCodeableConcept"]["coding"][0]["code"] == "no-show"
    assert procedure["status"] == "not-done"
    assert procedure["statusReason"]["coding"][0]["code"] == "no-show"


def test_ehr_encounter_without_cbt_code_or_session_number_is_refused() -> None:
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-10-20T14:00:00Z", "end": "2026-10-20T14:50:00Z"},
    }
    with pytest.raises(MappingError, match=r"not a therapy visit: Encounter\.type holds nothing"):
        session_from_fhir(encounter, canonical_base=s.BASE, resolve_patient=own_id)
    encounter["type"] = [{"coding": [{"system": "http://snomed.info/sct", "code": "304891004"}]}]
    with pytest.raises(MappingError) as caught:
        session_from_fhir(encounter, canonical_base=s.BASE, resolve_patient=own_id)
    assert caught.value.location == "Encounter.extension(cbt-session-number)"
    body = session_from_fhir(encounter, canonical_base=s.BASE, resolve_patient=own_id, session_number=4)
    assert (body["status"], body["planned_minutes"], body["session_number"]) == ("attended", 50, 4)


@pytest.mark.parametrize(
    ("minutes", "code"), [(5, "90832"), (37, "90832"), (38, "90834"), (52, "90834"), (53, "90837")]
)
def test_cpt_by_planned_minutes(minutes: int, code: str) -> None:
    assert psychotherapy_cpt(minutes)[0] == code
