"""The urgent-finding message (Communication) and the progress note (DocumentReference), for hundreds of generated
findings and notes, are valid for fhir.resources R4B (the check mode builds them validated) and for fhirkit R4, and
carry what the EHR needs: our identifier per occurrence, the status, the evidence, the text as sent."""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappings import progress_note_resource, urgent_finding_message
from fhir_mappings.definitions import PLAN_STATUS_REASON
from fhir_mappings.release import build, model_for
from tests.examples_budget import examples
from tests.fhir_mappings import strategies as s
from tests.fhir_mappings.support import r4_json

MANY = settings(
    max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
IDS = st.uuids().map(str)
# Clinical words: any printable text, markup and accents included (escaped in the narrative and the HTML).
WORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=300).filter(
    str.strip
)
INSTANTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0)
)
EVIDENCE = st.lists(
    st.tuples(st.sampled_from(["QuestionnaireResponse", "MedicationAdministration", "Encounter"]), IDS).map("/".join),
    max_size=3,
)


def valid(resource: Any) -> dict[str, Any]:
    data = r4_json(resource)
    assert build(model_for(data["resourceType"]), data) is not None
    return data


@MANY
@given(
    enrollment=IDS,
    patient=IDS,
    code=st.sampled_from([code for code, _ in PLAN_STATUS_REASON.concepts]),
    occurrence=IDS,
    message=WORDS,
    since=INSTANTS,
    closed=st.booleans(),
    evidence=EVIDENCE,
    care_team=st.lists(IDS, max_size=2),
)
def test_urgent_finding_message(
    enrollment: str,
    patient: str,
    code: str,
    occurrence: str,
    message: str,
    since: datetime,
    closed: bool,
    evidence: list[str],
    care_team: list[str],
) -> None:
    sent = valid(
        urgent_finding_message(
            canonical_base=s.BASE,
            enrollment_id=enrollment,
            patient_id=patient,
            code=code,
            occurrence_id=occurrence,
            message=message,
            since=since,
            closed=closed,
            evidence=evidence,
            care_team=care_team,
        )
    )
    assert sent["identifier"] == [
        {"system": f"{s.BASE}/identifier/urgent-finding", "value": f"{enrollment}/message/{code}/{occurrence}"}
    ]
    assert sent["status"] == ("completed" if closed else "in-progress") and sent["priority"] == "urgent"
    assert sent["subject"] == {"reference": f"Patient/{patient}"}
    assert sent.get("about", []) == [{"reference": f"{s.BASE}/{e}"} for e in evidence]  # absolute: Tandem's facade
    assert [r["reference"] for r in sent.get("recipient", [])] == [f"Practitioner/{p}" for p in care_team]
    assert sent["payload"] == [{"contentString": message}]
    assert html.escape(message) in sent["text"]["div"]


@MANY
@given(enrollment=IDS, patient=IDS, lines=st.lists(WORDS, min_size=1, max_size=8))
def test_progress_note(enrollment: str, patient: str, lines: list[str]) -> None:
    note = valid(
        progress_note_resource(canonical_base=s.BASE, enrollment_id=enrollment, patient_id=patient, lines=lines)
    )
    assert note["identifier"] == [
        {"system": f"{s.BASE}/identifier/progress-note", "value": f"{enrollment}/progress-note"}
    ]
    assert note["type"]["coding"][0] == {"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}
    assert note["category"][0]["coding"][0]["code"] == "clinical-note"
    plain, page = (base64.b64decode(c["attachment"]["data"]).decode() for c in note["content"])
    assert [c["attachment"]["contentType"] for c in note["content"]] == [
        "text/plain; charset=utf-8",
        "text/html; charset=utf-8",
    ]
    assert plain.splitlines()[2:] == "\n".join(lines).splitlines()
    assert all(f"<p>{html.escape(line)}</p>" in page for line in lines)


def test_one_note_per_enrollment_one_message_per_occurrence() -> None:
    """Same enrollment: the same note id and identifier whatever it says; two occurrences: two messages."""
    at = datetime(2026, 12, 4, 9, tzinfo=UTC)
    notes = [
        valid(progress_note_resource(canonical_base=s.BASE, enrollment_id="e-1", patient_id="p-1", lines=[text]))
        for text in ("At risk", "On track")
    ]
    assert len({(n["id"], n["identifier"][0]["value"]) for n in notes}) == 1 and notes[0] != notes[1]
    messages = [
        urgent_finding_message(
            canonical_base=s.BASE,
            enrollment_id="e-1",
            patient_id="p-1",
            code="phq9_item9_positive",
            occurrence_id=occurrence,
            message="PHQ-9 item 9 …",
            since=at,
            closed=False,
            evidence=[],
            care_team=[],
        )
        for occurrence in ("qr-1", "qr-2")
    ]
    assert len({m.id for m in messages}) == 2
