"""Enrollment ⇄ referral ServiceRequest: how an EHR enrols, holds, resumes and discharges a patient.

Why ServiceRequest: of the resources that could carry an enrolment, it is the one the EHRs let a client write
and the one they hold referrals in. Epic's R4 CapabilityStatement (../shared/fixtures/ehr-capabilities/
epic-r4-sandbox-capabilitystatement.json, 2026-07) offers ServiceRequest create/read/search/update, but
EpisodeOfCare and CarePlan read/search only; Oracle Health's (2026-08) offers ServiceRequest read/search (by
patient or subject) and no EpisodeOfCare at all. So an enrolment arrives as a referral ServiceRequest (POST,
Bundle, import, pull) and its status changes arrive as updates of it; the CarePlan stays derived.

The referral's status drives the enrolment's (R4 request-status): active → active, on-hold → on-hold,
completed → completed, revoked → discontinued; entered-in-error ends the enrolment as discontinued with that
reason (its sessions and scores are kept; the facade never hides an urgent finding behind it). draft and unknown
are not orders to enrol, and are refused. R4 ServiceRequest has no statusReason (R5 added it): the reason for a
hold or a discharge is read from `note`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .codes import CBT, RXNORM, RXNORM_ESKETAMINE, RXNORM_KETAMINE, RXNORM_SPRAVATO, SNOMED
from .definitions import PROGRAMME, code_system_url, coding
from .errors import MappingError
from .identity import base_resource, day, reference, source_from
from .reading import as_list, as_object, codings, expect_type, resolve_subject, text_value
from .records import EnrollmentRecord
from .release import ServiceRequest, build

# SNOMED CT 3457005 "Patient referral (procedure)": the ServiceRequest category of a referral, as in the
# Philippine eReferral and Taiwan LTC IGs' ServiceRequest examples. unverified against the SNOMED CT browser.
PATIENT_REFERRAL: Final = ("3457005", "Patient referral")
# SNOMED CT 306343005 "Referral to psychotherapist (procedure)", a member of the eCQM "Referral" value set
# (VSAC, CMS50 Closing the Referral Loop). unverified against the SNOMED CT browser. No SNOMED CT concept for a
# referral to ketamine therapy was found: the drug is named by RxNorm or by the protocol.
REFERRAL_TO_PSYCHOTHERAPIST: Final = ("306343005", "Referral to psychotherapist")
ICD10CM: Final = "http://hl7.org/fhir/sid/icd-10-cm"

_STATUS: Final = {
    "active": "active",
    "on-hold": "on-hold",
    "completed": "completed",
    "revoked": "discontinued",
    "entered-in-error": "discontinued",
}
_SERVED_STATUS: Final = {"active": "active", "on-hold": "on-hold", "completed": "completed", "discontinued": "revoked"}
# R4 request-intent: an order (or a plan the clinic adopted) enrols; a proposal is only a suggestion.
_INTENTS: Final = frozenset({"order", "original-order", "filler-order", "plan"})
# Built-in protocols named by the drug a referral's code carries (RxNorm, CLINICAL.md §1).
_BY_DRUG: Final = {
    RXNORM_ESKETAMINE: "esketamine-cbt",
    RXNORM_SPRAVATO: "esketamine-cbt",
    RXNORM_KETAMINE: "iv-ketamine-cbt",
}
_DEFAULT_REASON: Final = {
    "on-hold": "Put on hold at the EHR; no reason was sent with the referral.",
    "discontinued": "The referral was revoked at the EHR; no reason was sent with it.",
}


@dataclass(frozen=True)
class ReferralRule:
    """How a referral's protocol is chosen where the referral does not name it: the site's own order codes
    ("system|code" -> protocol id) and the protocol for a referral that names only the programme."""

    protocol_by_code: Mapping[str, str] = field(default_factory=dict)
    default_protocol: str | None = None


NO_RULE: Final = ReferralRule()


def protocol_uri(canonical_base: str, protocol_id: str) -> str:
    """How a CarePlan and a ServiceRequest name a protocol (not yet a published PlanDefinition)."""
    return f"{canonical_base}/protocol/{protocol_id}"


def referral_resource(record: EnrollmentRecord, *, canonical_base: str) -> ServiceRequest:
    """The referral an enrolment answers, as the facade serves it: what an EHR reads back and PUTs to change."""
    referral = base_resource(
        "ServiceRequest",
        canonical_base,
        "enrollment",
        record,
        f"Referral to the ketamine + CBT programme ({record.protocol_id})",
    )
    period = {"start": day(record.start_date)}
    if record.end_date is not None:
        period["end"] = day(record.end_date)
    target = record.target_condition
    condition: dict[str, Any] = {"system": target.system, "code": target.code}
    if target.display is not None:
        condition["display"] = target.display
    referral |= {
        "instantiatesUri": [protocol_uri(canonical_base, record.protocol_id)],
        "status": _SERVED_STATUS[record.status],
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": PATIENT_REFERRAL[0], "display": PATIENT_REFERRAL[1]}]}],
        "code": {
            "coding": [
                {"system": SNOMED, "code": REFERRAL_TO_PSYCHOTHERAPIST[0], "display": REFERRAL_TO_PSYCHOTHERAPIST[1]},
                coding(canonical_base, PROGRAMME, "ketamine-cbt"),
            ],
            "text": "Ketamine/esketamine and CBT programme",
        },
        "subject": reference("Patient", record.patient_id),
        "occurrencePeriod": period,
        "reasonCode": [{"coding": [condition]}],
    }
    if record.status_reason is not None:
        referral["note"] = [{"text": record.status_reason}]
    return build(ServiceRequest, referral)


def referral_from_fhir(
    resource: dict[str, Any],
    *,
    canonical_base: str,
    resolve_patient: Any,
    source_system: str | None = None,
    rule: ReferralRule = NO_RULE,
    known_protocols: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """An EnrollmentCreate body from a referral ServiceRequest; refuses what cannot be an enrolment.

    known_protocols: the tenant's protocol ids; a protocol named by the referral or the rule must be one."""
    expect_type(resource, "ServiceRequest")
    status = _status(resource)
    _intent(resource)
    if resource.get("doNotPerform") is True:
        raise MappingError(
            "ServiceRequest.doNotPerform", "a referral saying not to perform cannot enrol a patient", code="value"
        )
    body: dict[str, Any] = {
        "source": source_from(resource, canonical_base, "enrollment", source_system),
        "patient_id": resolve_subject(resource, "ServiceRequest", resolve_patient),
        "protocol_id": _protocol(resource, canonical_base, rule, known_protocols),
        "status": status,
    }
    body |= _dates(resource)
    reason = _note(resource)
    if status in _DEFAULT_REASON or status == "completed":
        if resource.get("status") == "entered-in-error":
            reason = "The referral was marked entered-in-error at the EHR" + (f": {reason}" if reason else ".")
        body["status_reason"] = reason or _DEFAULT_REASON.get(status)
    condition = _condition(resource)
    if condition is not None:
        body["target_condition"] = condition
    return body


def is_programme_referral(resource: dict[str, Any], canonical_base: str, rule: ReferralRule = NO_RULE) -> bool:
    """Whether a ServiceRequest is a referral to this programme at all (an EHR holds every order of a patient:
    labs, imaging, other referrals), judged by its protocol URI and codes alone."""
    try:
        return bool(_named_protocols(resource, canonical_base, rule)) or _names_programme(resource, canonical_base)
    except MappingError:
        return False


def _status(resource: dict[str, Any]) -> str:
    raw = resource.get("status")
    if raw is None:
        raise MappingError("ServiceRequest.status", "is required (active to enrol)", code="required")
    if raw not in _STATUS:
        raise MappingError(
            "ServiceRequest.status",
            f"{raw!r} is not an order to enrol: send active (or on-hold, completed, revoked to change an enrolment)",
            code="code-invalid",
        )
    return _STATUS[str(raw)]


def _intent(resource: dict[str, Any]) -> None:
    intent = resource.get("intent")
    if intent is None:
        raise MappingError("ServiceRequest.intent", "is required (order)", code="required")
    if intent not in _INTENTS:
        raise MappingError(
            "ServiceRequest.intent",
            f"{intent!r} is not a decision to refer: send intent order once the referral is decided",
            code="code-invalid",
        )


def _named_protocols(resource: dict[str, Any], canonical_base: str, rule: ReferralRule) -> list[tuple[str, str]]:
    """(protocol id, the element naming it) in order of precedence: our protocol URI, the site's codes, a drug."""
    found: list[tuple[str, str]] = []
    prefix = protocol_uri(canonical_base, "")
    for key in ("instantiatesUri", "instantiatesCanonical"):
        for i, value in enumerate(as_list(resource.get(key), f"ServiceRequest.{key}")):
            text = text_value(value, f"ServiceRequest.{key}[{i}]")
            if text is not None and text.startswith(prefix) and len(text) > len(prefix):
                found.append((text.removeprefix(prefix).split("|", 1)[0], f"ServiceRequest.{key}[{i}]"))
    concept = resource.get("code")
    for system, code, _ in codings(concept, "ServiceRequest.code"):
        if system and code and f"{system}|{code}" in rule.protocol_by_code:
            found.append((rule.protocol_by_code[f"{system}|{code}"], "ServiceRequest.code"))
    for system, code, _ in codings(concept, "ServiceRequest.code"):
        if system == RXNORM and code in _BY_DRUG:
            found.append((_BY_DRUG[code], "ServiceRequest.code"))
    return found


def _names_programme(resource: dict[str, Any], canonical_base: str) -> bool:
    programme = code_system_url(canonical_base, PROGRAMME)
    for system, code, _ in codings(resource.get("code"), "ServiceRequest.code"):
        if system == SNOMED and code in (REFERRAL_TO_PSYCHOTHERAPIST[0], CBT[0]):
            return True
        if system == programme and code == "ketamine-cbt":
            return True
    return False


def _protocol(resource: dict[str, Any], canonical_base: str, rule: ReferralRule, known: frozenset[str]) -> str:
    named = _named_protocols(resource, canonical_base, rule)
    if named:
        protocol_id, where = named[0]
        if known and protocol_id not in known:
            raise MappingError(
                where,
                f"names protocol {protocol_id!r}, which this tenant does not have; GET /api/v1/protocols lists them",
                code="code-invalid",
            )
        return protocol_id
    if resource.get("code") is None:
        raise MappingError(
            "ServiceRequest.code",
            f"is required: code the referral SNOMED CT {REFERRAL_TO_PSYCHOTHERAPIST[0]} and name the protocol in "
            f"instantiatesUri ({protocol_uri(canonical_base, '<protocol id>')})",
            code="required",
        )
    if _names_programme(resource, canonical_base):
        if rule.default_protocol is not None:
            return rule.default_protocol
        raise MappingError(
            "ServiceRequest.instantiatesUri",
            "the referral names the programme but not its protocol: name it in instantiatesUri "
            f"({protocol_uri(canonical_base, '<protocol id>')}), code the drug (RxNorm {RXNORM_KETAMINE} ketamine, "
            f"{RXNORM_ESKETAMINE} esketamine), or give the EHR target a referrals.default_protocol",
            code="required",
        )
    raise MappingError(
        "ServiceRequest.code",
        "is not a referral to the ketamine/esketamine + CBT programme: code it SNOMED CT "
        f"{REFERRAL_TO_PSYCHOTHERAPIST[0]} (Referral to psychotherapist) with the protocol in instantiatesUri, or map "
        "the site's order code to a protocol in the EHR target's referrals.protocol_by_code",
        code="code-invalid",
    )


def _day(value: Any, location: str) -> str:
    text = text_value(value, location)
    assert text is not None
    if len(text) < 10:
        raise MappingError(location, f"{text!r} is not a full date; the enrolment needs its day", code="value")
    return text[:10]  # the day as the sender wrote it, in its own offset: the day the clinic means


def _dates(resource: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    period = resource.get("occurrencePeriod")
    if period is not None:
        period = as_object(period, "ServiceRequest.occurrencePeriod")
        if period.get("start") is not None:
            result["start_date"] = _day(period["start"], "ServiceRequest.occurrencePeriod.start")
        if period.get("end") is not None:
            result["end_date"] = _day(period["end"], "ServiceRequest.occurrencePeriod.end")
    if "start_date" not in result and resource.get("occurrenceDateTime") is not None:
        result["start_date"] = _day(resource["occurrenceDateTime"], "ServiceRequest.occurrenceDateTime")
    if "start_date" not in result and resource.get("authoredOn") is not None:
        result["start_date"] = _day(resource["authoredOn"], "ServiceRequest.authoredOn")
    if "start_date" not in result:
        raise MappingError(
            "ServiceRequest.authoredOn",
            "the enrolment needs a start day: send occurrencePeriod.start, occurrenceDateTime or authoredOn",
            code="required",
        )
    return result


def _note(resource: dict[str, Any]) -> str | None:
    texts = []
    for i, note in enumerate(as_list(resource.get("note"), "ServiceRequest.note")):
        text = text_value(as_object(note, f"ServiceRequest.note[{i}]").get("text"), f"ServiceRequest.note[{i}].text")
        if text is not None:
            texts.append(text)
    return " ".join(texts) if texts else None


def _condition(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The condition referred for (reasonCode), when it is coded in SNOMED CT or ICD-10-CM; else the default."""
    for i, concept in enumerate(as_list(resource.get("reasonCode"), "ServiceRequest.reasonCode")):
        for system, code, display in codings(concept, f"ServiceRequest.reasonCode[{i}]"):
            if system in (SNOMED, ICD10CM) and isinstance(code, str) and code:
                return {"system": system, "code": code, "display": display if isinstance(display, str) else None}
    return None
