"""Encounter (+ its CBT Procedure) → a CbtSessionCreate body."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from .cbt_session import PLANNED_END_URL, PLANNED_START_URL
from .codes import AMBULATORY, CBT, CBT_OLD, CPT, CPT_PSYCHOTHERAPY, SNOMED, VIRTUAL
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
    expect_type,
    extension_value,
    extensions,
    has_code,
    optional_str,
    resolve,
    resolve_subject,
)

_CBT_CODES: Final = frozenset({CBT[0], CBT_OLD})
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
    session_number: int | None = None,
) -> dict[str, Any]:
    """session_number is used when the Encounter lacks our cbt-session-number extension (EHR-born visits)."""
    expect_type(encounter, "Encounter")
    proc = procedure or {}
    if procedure is not None:
        expect_type(procedure, "Procedure")
    _require_cbt(encounter, proc)
    reason = _reason(encounter, proc, canonical_base)
    status = _status(encounter, reason, canonical_base)
    period = as_object(encounter.get("period") or {}, "Encounter.period")
    body: dict[str, Any] = {
        "source": source_from(encounter, canonical_base, "cbt-session", source_system),
        "patient_id": resolve_subject(encounter, "Encounter", resolve_patient),
        "enrollment_id": _first(proc, "basedOn", "Procedure", resolve_reference, "CarePlan"),
        "session_number": _session_number(encounter, canonical_base, session_number),
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
    body |= _times(encounter, period, status)
    return body


def _require_cbt(encounter: dict[str, Any], procedure: dict[str, Any]) -> None:
    types = as_list(encounter.get("type"), "Encounter.type")
    if any(has_code(t, "Encounter.type", SNOMED, _CBT_CODES) for t in types):
        return
    if has_code(procedure.get("code"), "Procedure.code", SNOMED, _CBT_CODES):
        return
    raise MappingError("Encounter.type", "not a CBT session (SNOMED CT 228557008 or 304891004)", code="not-supported")


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
    result: dict[str, Any] = {}
    planned_start = extension_value(encounter, PLANNED_START_URL, "valueDateTime", "Encounter")
    planned_end = extension_value(encounter, PLANNED_END_URL, "valueDateTime", "Encounter")
    start = period.get("start")
    end = period.get("end")
    if status == "attended":
        if start is None:
            raise MappingError("Encounter.period.start", "an attended session needs its start", code="required")
        result["actual_start"] = aware_datetime(start, "Encounter.period.start")
        result["actual_end"] = aware_datetime(end, "Encounter.period.end") if end is not None else None
    if planned_start is None:
        planned_start, planned_end = start, end
    if planned_start is None:
        raise MappingError("Encounter.period.start", "the session needs a (planned) start", code="required")
    result["planned_start"] = aware_datetime(planned_start, "Encounter.extension(plannedStartDate)")
    minutes = _minutes(result["planned_start"], planned_end) or _cpt_minutes(encounter)
    if minutes is not None:
        result["planned_minutes"] = minutes
    return result


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
