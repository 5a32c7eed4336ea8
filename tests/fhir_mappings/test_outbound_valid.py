"""Every outbound resource, for hundreds of varied records, is valid for fhir.resources R4B and for fhirkit R4."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappings import (
    administration_fallback,
    administration_resources,
    care_plan_resources,
    patient_resource,
    published_definitions,
    response_resources,
    session_resources,
)
from fhir_mappings.release import FHIR_VERSION, build, model_for
from service.instruments import INSTRUMENTS, score_answers
from service.instruments.answers import ItemAnswer
from tests.examples_budget import examples
from tests.fhir_mappings import strategies as s
from tests.fhir_mappings.support import r4_json

MANY = settings(
    max_examples=examples(220), deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def check_all(resources: list[Any]) -> list[dict[str, Any]]:
    found = [r4_json(r) for r in resources]
    for data in found:
        # Round trip through the R4B model once more: what we write is what R4B reads.
        assert build(model_for(data["resourceType"]), data) is not None
        assert data["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    return found


@MANY
@given(s.patients())
def test_patient(record: Any) -> None:
    (patient,) = check_all([patient_resource(record, canonical_base=s.BASE)])
    assert patient["meta"]["versionId"] == str(record.version)
    ours = {"use": "official", "system": f"{s.BASE}/identifier/patient", "value": record.id}
    sender = {"use": "secondary", "system": record.source.system, "value": record.source.value}
    if record.source.system == "urn:tandem:record" and not record.identifiers:
        assert patient["identifier"] == [ours]
    else:
        assert ours not in patient["identifier"]
        assert (sender in patient["identifier"]) == (record.source.system != "urn:tandem:record")
        assert {i["value"] for i in patient["identifier"] if i.get("type")} == {i.value for i in record.identifiers}


@MANY
@given(s.enrollments(), st.sampled_from([None, "on_track", "at_risk"]))
def test_care_plan(record: Any, status: str | None) -> None:
    reasons = ("phq9_item9_positive",) if status == "at_risk" else ()
    plan, condition, goal = check_all(
        care_plan_resources(record, canonical_base=s.BASE, plan_status=status, plan_status_reasons=reasons).all()
    )
    assert plan["category"][0]["coding"][0]["code"] == "assess-plan"
    assert plan["addresses"] == [{"reference": f"Condition/{condition['id']}"}]
    assert plan["goal"] == [{"reference": f"Goal/{goal['id']}"}]
    assert condition["code"]["coding"][0]["code"] == record.target_condition.code


@MANY
@given(s.administrations())
def test_administration_and_fallback(record: Any) -> None:
    natural = check_all(administration_resources(record, canonical_base=s.BASE).all())
    fallback = check_all(administration_fallback(record, canonical_base=s.BASE).all())
    assert natural[0]["resourceType"] == "MedicationAdministration"
    assert fallback[0]["resourceType"] == "Procedure"
    for resources in (natural, fallback):
        head = f"{resources[0]['resourceType']}/{resources[0]['id']}"
        assert all(o["partOf"] == [{"reference": head}] for o in resources[1:])
    assert len({r["id"] for r in natural}) == len(natural)


@MANY
@given(s.cbt_sessions())
def test_cbt_session(record: Any) -> None:
    encounter, procedure = check_all(session_resources(record, canonical_base=s.BASE).all())
    assert procedure["encounter"] == {"reference": f"Encounter/{encounter['id']}"}


@MANY
@given(s.responses())
def test_questionnaire_response(record: Any) -> None:
    resources = check_all(response_resources(record, canonical_base=s.BASE, score=record.score).all())
    findings = [f for f in record.score.safety_findings if f.link_id]
    assert len(resources) == 1 + (record.score.total is not None) + len(findings)


@settings(max_examples=examples(200), deadline=None, derandomize=True)
@given(
    st.lists(st.sampled_from(["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]), min_size=9, max_size=9), s.responses()
)
def test_scored_phq9_with_findings(codes: list[str], shell: Any) -> None:
    phq9 = INSTRUMENTS["phq-9"]
    answers = [
        ItemAnswer(link_id=item.link_id, value_coding={"system": "http://loinc.org", "code": code})
        for item, code in zip(phq9.scored_items, codes, strict=True)
    ]
    record = shell.model_copy(update={"instrument": "phq-9", "answers": answers})
    score = score_answers(phq9, answers)
    response, *observations = check_all(
        response_resources(record, canonical_base=s.BASE, score=score, total_loinc=phq9.total_loinc).all()
    )
    total = observations[0]
    assert total["code"]["coding"][0] == {"system": "http://loinc.org", "code": "44261-6"}
    assert total["valueInteger"] == score.total
    assert total["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response['id']}"}]
    assert total["effectiveDateTime"].startswith(record.authored_at.strftime("%Y-%m-%dT%H:%M"))
    item_findings = [f for f in score.safety_findings if f.link_id]
    assert len(observations) == 1 + len(item_findings)
    if item_findings:
        assert observations[1]["code"]["coding"][0]["code"] == "44260-8"


def test_published_definitions_are_valid() -> None:
    published = [r4_json(build(model_for(d["resourceType"]), d)) for d in published_definitions(s.BASE)]
    urls = [d["url"] for d in published]
    assert len(urls) == len(set(urls))
    assert all(d.get("fhirVersion", FHIR_VERSION) == FHIR_VERSION for d in published)
