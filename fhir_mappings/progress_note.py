"""The plan's progress note for the EHR's chart: an R4 DocumentReference (LOINC 11506-3 "Progress note", US Core
category clinical-note) carrying the plan status, phase and reasons as plain text and as HTML, base64-encoded.

One note per enrollment, under one identifier: the EHR's copy is updated (a new version) when the status changes,
never duplicated. It carries no date of its own: the EHR's version says when it last changed.
"""

from __future__ import annotations

import base64
import html

from .identity import narrative, reference, sub_resource_id
from .release import DocumentReference, build

LOINC = "http://loinc.org"
NOTE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
TITLE = "Ketamine/esketamine + CBT programme: plan status"


def progress_note_resource(
    *, canonical_base: str, enrollment_id: str, patient_id: str, lines: list[str]
) -> DocumentReference:
    """lines: the note's paragraphs in clinical words, the first its headline (status and phase)."""
    plain = "\n".join([TITLE, "", *lines]) + "\n"
    page = f"<h1>{html.escape(TITLE)}</h1>" + "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    resource = {
        "resourceType": "DocumentReference",
        "id": sub_resource_id(enrollment_id, "progress-note"),
        "text": narrative(lines[0] if lines else TITLE),
        "identifier": [
            {"system": f"{canonical_base}/identifier/progress-note", "value": f"{enrollment_id}/progress-note"}
        ],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}], "text": "Progress note"},
        "category": [{"coding": [{"system": NOTE_CATEGORY, "code": "clinical-note", "display": "Clinical Note"}]}],
        "subject": reference("Patient", patient_id),
        "description": TITLE,
        "content": [
            {"attachment": _attachment("text/plain; charset=utf-8", plain)},
            {"attachment": _attachment("text/html; charset=utf-8", f"<html><body>{page}</body></html>")},
        ],
    }
    return build(DocumentReference, resource)


def _attachment(content_type: str, text: str) -> dict[str, str]:
    return {
        "contentType": content_type,
        "language": "en",
        "data": base64.b64encode(text.encode()).decode("ascii"),
        "title": TITLE,
    }
