"""Encounter (+ its CBT Procedure) → a CbtSessionCreate body.

A therapy visit is recognised by its codings alone (Encounter.type, or the Procedure's code): SNOMED CT CBT codes
make it CBT; a psychotherapy CPT or SNOMED code without a CBT code makes it psychotherapy whose modality is not
stated ("psychotherapy-unspecified"), kept, never refused. An EHR's own visit type becomes recognisable when the
target's code map has added the mapped standard coding to the CodeableConcept before this reads it, so the
recogniser needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from .cbt_session import PLANNED_END_URL, PLANNED_START_URL
from .codes import (
    AMBULATORY,
    CBT,
    CBT_OLD,
    CPT,
    CPT_FAMILY_PSYCHOTHERAPY,
    CPT_GROUP_PSYCHOTHERAPY,
    CPT_PSYCHOTHERAPY,
    INDIVIDUAL_PSYCHOTHERAPY,
    PSYCHOTHERAPY,
    SNOMED,
    UCUM,
    VIRTUAL,
)
from .definitions import (
    CBT_DETAIL,
    CBT_MODULE,
    HOMEWORK_COMPLETED,
    SESSION_NUMBER,
    SESSION_STATUS_REASON,
    SESSION_STATUS_REASON_EXTENSION,
    code_system_url,
    extension_url,
)
from .errors import MappingError
from .identity import source_from
from .reading import (
    ReferenceResolver,
    as_list,
    as_object,
    aware_datetime,
    codings,
    concept_text,
    expect_type,
    extension_value,
    extensions,
    has_code,
    number,
    optional_str,
    resolve,
    resolve_subject,
)

_CBT_CODES: Final = frozenset({CBT[0], CBT_OLD})
_SNOMED_PSYCHOTHERAPY: Final = frozenset({PSYCHOTHERAPY[0], INDIVIDUAL_PSYCHOTHERAPY[0]})
_CPT_THERAPY: Final = frozenset({code for _, code, _ in CPT_PSYCHOTHERAPY} | {CPT_GROUP_PSYCHOTHERAPY[0]})
# Encounter.length is an R4 Duration: UCUM time units (drt-1). Minutes per unit we take; anything else is refused.
_LENGTH_MINUTES: Final = {"min": 1.0, "h": 60.0}
# The modality a recognised therapy visit is stored with (service/records/cbt.py CbtModality).
MODALITY_CBT: Final = "cbt"
MODALITY_UNSPECIFIED: Final = "psychotherapy-unspecified"
_WHAT_COUNTS: Final = (
    "SNOMED CT 228557008 or 304891004 (CBT), 75516001 or 18512000 (psychotherapy), or CPT 90832, 90834, 90837 or "
    "90853 (psychotherapy)"
)
_SETTINGS: Final = {AMBULATORY[0]: "in-person", VIRTUAL[0]: "video"}
# Nominal length of each CPT psychotherapy code (30/45/60 min, CLINICAL.md §1), when no times are sent.
_CPT_MINUTES: Final = dict(zip((code for _, code, _ in CPT_PSYCHOTHERAPY), (30, 45, 60), strict=True))
_STATUS: Final = {
    "planned": "planned",
    "arrived": "planned",
    "triaged": "planned",
    "in-progress": "attended",
    "finished": "attended",
    "cancelled": "cancelled",
    "entered-in-error": "entered-in-error",
}


def session_from_fhir(
    encounter: dict[str, Any],
    procedure: dict[str, Any] | None = None,
    *,
    canonical_base: str,
    resolve_patient: ReferenceResolver,
    resolve_reference: ReferenceResolver | None = None,
    source_system: str | None = None,
    session_number: int | Callable[[datetime], int] | None = None,
) -> dict[str, Any]:
    """session_number is used when the Encounter lacks our cbt-session-number extension (EHR-born visits): a
    number, or a function of the visit's start (the intake numbers a patient's visits by date)."""
    expect_type(encounter, "Encounter")
    proc = procedure or {}
    if procedure is not None:
        expect_type(procedure, "Procedure")
    modality = therapy_modality(encounter, proc)
    reason = _reason(encounter, proc, canonical_base)
    status = _status(encounter, reason, canonical_base)
    period = as_object(encounter.get("period") or {}, "Encounter.period")
    times = _times(encounter, period, status)
    visit_start = times.get("actual_start") or times["planned_start"]
    fallback = session_number(datetime.fromisoformat(visit_start)) if callable(session_number) else session_number
    body: dict[str, Any] = {
        "source": source_from(encounter, canonical_base, "cbt-session", source_system),
        "patient_id": resolve_subject(encounter, "Encounter", resolve_patient),
        "enrollment_id": _first(proc, "basedOn", "Procedure", resolve_reference, "CarePlan"),
        "session_number": _session_number(encounter, canonical_base, fallback),
        "modality": modality,
        "visit_types": _visit_types(encounter),
        "therapist_id": _therapist(encounter, proc, resolve_reference),
        "status": status,
        "status_reason": optional_str(reason, "text", "Encounter.extension") if reason else None,
        "setting": _setting(encounter),
        "modules_covered": [
            str(e.get("valueString")) for e in extensions(proc, extension_url(canonical_base, CBT_MODULE), "Procedure")
        ],
        "homework_completed": extension_value(
            proc, extension_url(canonical_base, HOMEWORK_COMPLETED), "valueBoolean", "Procedure"
        ),
        "homework_set": _homework(proc, canonical_base),
    }
    body |= times
    return body


def therapy_modality(encounter: dict[str, Any], procedure: dict[str, Any] | None = None) -> str:
    """ "cbt" when a CBT code is present, "psychotherapy-unspecified" for psychotherapy without one; anything else
    is not a therapy visit and is refused naming Encounter.type, what it holds, and the fix."""
    concepts = [(f"Encounter.type[{i}]", t) for i, t in enumerate(as_list(encounter.get("type"), "Encounter.type"))]
    if procedure and procedure.get("code") is not None:
        concepts.append(("Procedure.code", procedure["code"]))
    if any(has_code(c, where, SNOMED, _CBT_CODES) for where, c in concepts):
        return MODALITY_CBT
    if any(
        has_code(c, where, SNOMED, _SNOMED_PSYCHOTHERAPY) or has_code(c, where, CPT, _CPT_THERAPY)
        for where, c in concepts
    ):
        return MODALITY_UNSPECIFIED
    sent = "; ".join(_described(c, where) for where, c in concepts) or "nothing"
    if any(has_code(c, where, CPT, CPT_FAMILY_PSYCHOTHERAPY) for where, c in concepts):
        why = "family psychotherapy (CPT 90846/90847) is not counted as the patient's therapy visit"
    else:
        why = "not a therapy visit"
    raise MappingError(
        "Encounter.type",
        f"{why}: Encounter.type holds {sent}. A therapy visit needs {_WHAT_COUNTS}; for an EHR's own visit type, "
        "add it to the sync target's code map with one of these codes",
        code="not-supported",
    )


def _described(concept: Any, where: str) -> str:
    coded = [f"{s or '(no system)'}|{c}" for s, c, _ in codings(concept, where) if c]
    text = concept_text(concept, where)
    label = ", ".join(coded) or "no coding"
    return f"{label} ({text})" if text and text not in coded else label


def _visit_types(encounter: dict[str, Any]) -> list[dict[str, Any]]:
    """Encounter.type as sent (system, code, display and text of each), so it is served back unchanged."""
    kept = []
    for i, concept in enumerate(as_list(encounter.get("type"), "Encounter.type")):
        where = f"Encounter.type[{i}]"
        data = as_object(concept, where)
        entry: dict[str, Any] = {
            "coding": [
                {k: v for k, v in (("system", s), ("code", c), ("display", d)) if v is not None}
                for s, c, d in codings(data, where)
                if c is not None
            ]
        }
        if isinstance(data.get("text"), str) and data["text"].strip():
            entry["text"] = data["text"]
        kept.append(entry)
    return kept


def _reason(encounter: dict[str, Any], procedure: dict[str, Any], canonical_base: str) -> dict[str, Any] | None:
    url = extension_url(canonical_base, SESSION_STATUS_REASON_EXTENSION)
    found = extension_value(encounter, url, "valueCodeableConcept", "Encounter") or procedure.get("statusReason")
    return as_object(found, "Encounter.extension") if found is not None else None


def _status(encounter: dict[str, Any], reason: dict[str, Any] | None, canonical_base: str) -> str:
    raw = encounter.get("status")
    if raw not in _STATUS:
        raise MappingError("Encounter.status", f"{raw!r} cannot be a CBT session status", code="not-supported")
    status = _STATUS[str(raw)]
    ours = code_system_url(canonical_base, SESSION_STATUS_REASON)
    if status == "cancelled" and any(
        s == ours and c == "no-show" for s, c, _ in codings(reason, "Encounter.extension")
    ):
        return "no-show"
    return status


def _times(encounter: dict[str, Any], period: dict[str, Any], status: str) -> dict[str, Any]:
    """Start and length of the visit. The length is the period (start to end), else Encounter.length, else the
    nominal length of its timed CPT code, else the record's default. An attended visit (finished, in-progress)
    with neither period.end nor length keeps its end unknown; a planned one keeps only its planned length."""
    result: dict[str, Any] = {}
    planned_start = extension_value(encounter, PLANNED_START_URL, "valueDateTime", "Encounter")
    planned_end = extension_value(encounter, PLANNED_END_URL, "valueDateTime", "Encounter")
    start = period.get("start")
    end = period.get("end")
    length = _length_minutes(encounter)
    if status == "attended":
        if start is None:
            raise MappingError("Encounter.period.start", "an attended session needs its start", code="required")
        result["actual_start"] = aware_datetime(start, "Encounter.period.start")
        if end is not None:
            result["actual_end"] = aware_datetime(end, "Encounter.period.end")
        elif length is not None:
            begun = datetime.fromisoformat(result["actual_start"])
            result["actual_end"] = (begun + timedelta(minutes=length)).isoformat()
        else:
            result["actual_end"] = None
    if planned_start is None:
        planned_start, planned_end = start, end
    if planned_start is None:
        raise MappingError("Encounter.period.start", "the session needs a (planned) start", code="required")
    result["planned_start"] = aware_datetime(planned_start, "Encounter.extension(plannedStartDate)")
    minutes = _minutes(result["planned_start"], planned_end) or length or _cpt_minutes(encounter)
    if minutes is not None:
        result["planned_minutes"] = minutes
    return result


def _length_minutes(encounter: dict[str, Any]) -> int | None:
    """Encounter.length (an R4 Duration) in whole minutes; a unit that is not UCUM min or h is refused."""
    if encounter.get("length") is None:
        return None
    length = as_object(encounter["length"], "Encounter.length")
    if length.get("system") not in (None, UCUM):
        raise MappingError(
            "Encounter.length.system", f"{length.get('system')!r} is not UCUM ({UCUM})", code="code-invalid"
        )
    unit = length.get("code")
    if unit not in _LENGTH_MINUTES:
        raise MappingError(
            "Encounter.length.code",
            f"{unit!r} is not a length unit we take: send the UCUM code 'min' or 'h'",
            code="code-invalid",
        )
    if length.get("value") is None:
        raise MappingError("Encounter.length.value", "the length has no value", code="required")
    minutes = round(number(length["value"], "Encounter.length.value") * _LENGTH_MINUTES[str(unit)])
    if minutes <= 0:
        raise MappingError("Encounter.length.value", "the length must be more than zero minutes", code="value")
    return minutes


def _minutes(start: str, end: Any) -> int | None:
    if end is None:
        return None
    delta = datetime.fromisoformat(aware_datetime(end, "Encounter.period.end")) - datetime.fromisoformat(start)
    minutes = round(delta.total_seconds() / 60)
    return minutes if minutes > 0 else None


def _cpt_minutes(encounter: dict[str, Any]) -> int | None:
    for t in as_list(encounter.get("type"), "Encounter.type"):
        code = has_code(t, "Encounter.type", CPT, frozenset(_CPT_MINUTES))
        if code is not None:
            return _CPT_MINUTES[code]
    return None


def _session_number(encounter: dict[str, Any], canonical_base: str, fallback: int | None) -> int:
    value = extension_value(encounter, extension_url(canonical_base, SESSION_NUMBER), "valuePositiveInt", "Encounter")
    if value is None:
        value = fallback
    if not isinstance(value, int) or isinstance(value, bool):
        raise MappingError(
            "Encounter.extension(cbt-session-number)",
            "the session number is not sent and none was given",
            code="required",
        )
    return value


def _setting(encounter: dict[str, Any]) -> str:
    klass = as_object(encounter.get("class") or {}, "Encounter.class")
    setting = _SETTINGS.get(str(klass.get("code")))
    if setting is None:
        raise MappingError("Encounter.class", f"{klass.get('code')!r} is neither AMB nor VR", code="not-supported")
    return setting


def _therapist(encounter: dict[str, Any], procedure: dict[str, Any], resolver: ReferenceResolver | None) -> str | None:
    for i, participant in enumerate(as_list(encounter.get("participant"), "Encounter.participant")):
        found = resolve(
            as_object(participant, "Encounter.participant"),
            "individual",
            f"Encounter.participant[{i}]",
            resolver,
            "Practitioner",
        )
        if found is not None:
            return found
    for i, performer in enumerate(as_list(procedure.get("performer"), "Procedure.performer")):
        found = resolve(
            as_object(performer, "Procedure.performer"), "actor", f"Procedure.performer[{i}]", resolver, "Practitioner"
        )
        if found is not None:
            return found
    return None


def _first(data: dict[str, Any], key: str, where: str, resolver: ReferenceResolver | None, expected: str) -> str | None:
    for i, ref in enumerate(as_list(data.get(key), f"{where}.{key}")):
        found = resolve({"ref": ref}, "ref", f"{where}.{key}[{i}]", resolver, expected)
        if found is not None:
            return found
    return None


def _homework(procedure: dict[str, Any], canonical_base: str) -> str | None:
    ours = code_system_url(canonical_base, CBT_DETAIL)
    for i, follow_up in enumerate(as_list(procedure.get("followUp"), "Procedure.followUp")):
        if any(s == ours and c == "homework" for s, c, _ in codings(follow_up, f"Procedure.followUp[{i}]")):
            return optional_str(as_object(follow_up, "Procedure.followUp"), "text", f"Procedure.followUp[{i}]")
    return None
