"""Appointment ⇄ a planned CBT or ketamine/esketamine session (the booking).

Out: one R4 Appointment. serviceCategory carries our programme category (cbt-course / ketamine-course), which is
what tells the service apart when it comes back; serviceType the standard code (SNOMED CT CBT, or "administration
of drug") after the codings the sender typed it with. R4 app-2 wants start and end together; participant.status is
required, and the patient has accepted a booking they are on.

In: the service is told by the codings of serviceType, appointmentType, serviceCategory and reasonCode: SNOMED CT
CBT (228557008, 304891004) or CPT psychotherapy (90832/90834/90837/90853) → CBT; RxNorm ketamine/esketamine or
HCPCS G2082/G2083 (the esketamine treatment visit) → a drug session; our programme categories either way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from .codes import (
    ADMINISTRATION_OF_DRUG,
    CBT,
    CBT_OLD,
    CPT,
    CPT_PSYCHOTHERAPY,
    HCPCS,
    HCPCS_ESKETAMINE_VISIT,
    RXNORM,
    RXNORM_ESKETAMINE,
    RXNORM_KETAMINE,
    RXNORM_SPRAVATO,
    SNOMED,
)
from .definitions import PROGRAMME, code_system_url, coding
from .errors import MappingError
from .identity import base_resource, instant, reference, source_from
from .reading import (
    ReferenceResolver,
    as_list,
    as_object,
    aware_datetime,
    codings,
    concept_text,
    expect_type,
    optional_str,
    parse_reference,
    resolve,
)
from .records import AppointmentRecord
from .release import Appointment, build

# Our programme-category code per service (fhir_mappings.definitions.PROGRAMME).
_CATEGORY: Final = {"cbt": "cbt-course", "ketamine": "ketamine-course"}
_STANDARD: Final = {"cbt": CBT, "ketamine": ADMINISTRATION_OF_DRUG}
_TITLE: Final = {"cbt": "CBT session", "ketamine": "Ketamine/esketamine session"}
# CPT 90853 group psychotherapy (CLINICAL.md §1) besides the individual time codes.
_CBT_CODES: Final = {
    SNOMED: frozenset({CBT[0], CBT_OLD}),
    CPT: frozenset({code for _, code, _ in CPT_PSYCHOTHERAPY} | {"90853"}),
}
_DRUG_CODES: Final = {
    RXNORM: frozenset({RXNORM_KETAMINE, RXNORM_ESKETAMINE, RXNORM_SPRAVATO}),
    HCPCS: HCPCS_ESKETAMINE_VISIT,
}
# R4 valueset-appointmentstatus.
STATUSES: Final = frozenset(
    {
        "proposed",
        "pending",
        "booked",
        "arrived",
        "fulfilled",
        "cancelled",
        "noshow",
        "entered-in-error",
        "checked-in",
        "waitlist",
    }
)
_TYPED_BY: Final = ("serviceType", "appointmentType", "serviceCategory", "reasonCode")


def appointment_resource(record: AppointmentRecord, *, canonical_base: str) -> Appointment:
    title = _TITLE[record.service]
    summary = f"{title} {record.status}, {record.start:%Y-%m-%d %H:%M} UTC"
    resource = base_resource("Appointment", canonical_base, "appointment", record, summary)
    standard = _STANDARD[record.service]
    sent = [_coding(c.system, c.code, c.display) for c in record.service_codes]
    ours = {"system": SNOMED, "code": standard[0], "display": standard[1]}
    service_type = [{"coding": [*sent, ours] if ours not in sent else sent, "text": title}]
    participants: list[dict[str, Any]] = [{"actor": reference("Patient", record.patient_id), "status": "accepted"}]
    if record.practitioner_id is not None:
        participants.append({"actor": reference("Practitioner", record.practitioner_id), "status": "accepted"})
    minutes = round((record.end - record.start).total_seconds() / 60)
    resource |= {
        "status": record.status,
        "serviceCategory": [{"coding": [coding(canonical_base, PROGRAMME, _CATEGORY[record.service])]}],
        "serviceType": service_type,
        "start": instant(record.start),
        "end": instant(record.end),
        "participant": participants,
    }
    if minutes > 0:
        resource["minutesDuration"] = minutes
    if record.description is not None:
        resource["description"] = record.description
    if record.cancellation_reason is not None:
        resource["cancelationReason"] = {"text": record.cancellation_reason}
    if record.enrollment_id is not None:
        resource["supportingInformation"] = [reference("CarePlan", record.enrollment_id)]
    return build(Appointment, resource)


def _coding(system: str | None, code: str, display: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"code": code}
    if system is not None:
        found["system"] = system
    if display is not None:
        found["display"] = display
    return found


def appointment_from_fhir(
    appointment: dict[str, Any],
    *,
    canonical_base: str,
    resolve_patient: ReferenceResolver,
    resolve_reference: ReferenceResolver | None = None,
    source_system: str | None = None,
) -> dict[str, Any]:
    """An AppointmentCreate body; refuses what is not a CBT or drug session of a patient, naming the element."""
    expect_type(appointment, "Appointment")
    status = appointment.get("status")
    if status not in STATUSES:
        raise MappingError(
            "Appointment.status",
            f"{status!r} is not an R4 Appointment status ({', '.join(sorted(STATUSES))})",
            code="code-invalid" if isinstance(status, str) else "required" if status is None else "structure",
        )
    service, sent = _service(appointment, canonical_base)
    start, end = _times(appointment)
    body: dict[str, Any] = {
        "source": source_from(appointment, canonical_base, "appointment", source_system),
        "patient_id": _patient(appointment, resolve_patient),
        "practitioner_id": _practitioner(appointment, resolve_reference),
        "enrollment_id": _enrollment(appointment, resolve_reference),
        "service": service,
        "status": status,
        "start": start,
        "end": end,
        "service_codes": sent,
        "description": optional_str(appointment, "description", "Appointment"),
        "cancellation_reason": concept_text(appointment.get("cancelationReason"), "Appointment.cancelationReason"),
    }
    return body


def _service(appointment: dict[str, Any], canonical_base: str) -> tuple[str, list[dict[str, Any]]]:
    """Which session the appointment is for, and the codings the sender typed it with (ours left out)."""
    programme = code_system_url(canonical_base, PROGRAMME)
    found: set[str] = set()
    sent: list[dict[str, Any]] = []
    for element in _TYPED_BY:
        for i, concept in enumerate(as_list(appointment.get(element), f"Appointment.{element}")):
            for system, code, display in codings(concept, f"Appointment.{element}[{i}]"):
                if not isinstance(code, str):
                    continue
                if system == programme:
                    found |= {s for s, c in _CATEGORY.items() if c == code}
                    continue
                if code in _CBT_CODES.get(str(system), ()):
                    found.add("cbt")
                elif code in _DRUG_CODES.get(str(system), ()):
                    found.add("ketamine")
                ours = system == SNOMED and code in (CBT[0], ADMINISTRATION_OF_DRUG[0])
                if element == "serviceType" and not ours:
                    text = display if isinstance(display, str) else None
                    sent.append(_coding(system if isinstance(system, str) else None, code, text))
    if len(found) != 1:
        why = "is typed both as CBT and as a drug session" if found else "is neither a CBT nor a ketamine session"
        raise MappingError(
            "Appointment.serviceType",
            f"the appointment {why}: type it with SNOMED CT 228557008 (CBT), a CPT psychotherapy code "
            "(90832/90834/90837/90853), RxNorm 6130/2201623 or HCPCS G2082/G2083 (ketamine/esketamine), or map "
            "the site's visit type to one of them in the sync target's code_map",
            code="not-supported" if not found else "invariant",
        )
    return found.pop(), sent


def _times(appointment: dict[str, Any]) -> tuple[str, str]:
    raw_start = appointment.get("start")
    if raw_start is None:
        raise MappingError("Appointment.start", "a planned session needs its start", code="required")
    start = aware_datetime(raw_start, "Appointment.start")
    raw_end = appointment.get("end")
    if raw_end is not None:
        end = aware_datetime(raw_end, "Appointment.end")
    else:
        minutes = appointment.get("minutesDuration")
        if minutes is None:
            raise MappingError(
                "Appointment.end", "is required with start (R4 app-2), or send minutesDuration", code="required"
            )
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
            raise MappingError("Appointment.minutesDuration", f"{minutes!r} is not a positive integer", code="value")
        end = (datetime.fromisoformat(start) + timedelta(minutes=minutes)).isoformat()
    if datetime.fromisoformat(end) <= datetime.fromisoformat(start):
        raise MappingError("Appointment.end", f"{raw_end!r} is not after the start {raw_start!r}", code="invariant")
    return start, end


def _patient(appointment: dict[str, Any], resolve_patient: ReferenceResolver) -> str:
    for i, raw in enumerate(as_list(appointment.get("participant"), "Appointment.participant")):
        participant = as_object(raw, f"Appointment.participant[{i}]")
        actor = participant.get("actor")
        literal = as_object(actor, f"Appointment.participant[{i}].actor").get("reference") if actor else None
        parsed = parse_reference(literal) if isinstance(literal, str) else None
        if parsed is None or parsed[0] != "Patient" or not isinstance(literal, str):
            continue
        patient_id = resolve_patient(literal)
        if patient_id is None:
            raise MappingError(
                f"Appointment.participant[{i}].actor", f"patient {literal!r} is not known here", code="not-found"
            )
        return patient_id
    raise MappingError(
        "Appointment.participant",
        "needs a participant whose actor is the Patient (a literal Patient reference)",
        code="required",
    )


def _practitioner(appointment: dict[str, Any], resolver: ReferenceResolver | None) -> str | None:
    for i, raw in enumerate(as_list(appointment.get("participant"), "Appointment.participant")):
        found = resolve(
            as_object(raw, f"Appointment.participant[{i}]"), "actor", f"Appointment.participant[{i}]", resolver,
            "Practitioner",
        )  # fmt: skip
        if found is not None:
            return found
    return None


def _enrollment(appointment: dict[str, Any], resolver: ReferenceResolver | None) -> str | None:
    for i, ref in enumerate(as_list(appointment.get("supportingInformation"), "Appointment.supportingInformation")):
        found = resolve({"ref": ref}, "ref", f"Appointment.supportingInformation[{i}]", resolver, "CarePlan")
        if found is not None:
            return found
    return None
