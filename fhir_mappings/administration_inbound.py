"""MedicationAdministration (+ its Observations) → a KetamineAdministrationCreate body.

Accepts what EHRs send: route 255560000 as intravenous, a contained Medication with its lot, absolute or
relative references. Infusion length always comes from effectivePeriod: dosage.rate[x] is ignored because
senders put durations there (R4 example medadmin0305 has rateQuantity "20 min").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .codes import (
    NDC,
    NDC_ESKETAMINE_KITS,
    OLD_INTRAVENOUS,
    ROUTE_CODES,
    RXNORM,
    RXNORM_ESKETAMINE,
    RXNORM_KETAMINE,
    RXNORM_SPRAVATO,
    SNOMED,
)
from .definitions import DOSE_PER_KG, LOT_NUMBER, OBSERVATION_MINUTES, REMS_SUBMITTED, extension_url
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
    number,
    resolve,
    resolve_subject,
)
from .session_observations import session_fields_from_fhir

_WHERE: Final = "MedicationAdministration"
_ROUTES: Final = {code: route for route, (code, _) in ROUTE_CODES.items()} | {OLD_INTRAVENOUS: "intravenous"}
_DRUG_CODES: Final = {
    (RXNORM, RXNORM_KETAMINE): "ketamine",
    (RXNORM, RXNORM_ESKETAMINE): "esketamine",
    (RXNORM, RXNORM_SPRAVATO): "esketamine",
} | {(NDC, kit): "esketamine" for kit in NDC_ESKETAMINE_KITS}


def administration_from_fhir(
    resource: dict[str, Any],
    observations: Sequence[dict[str, Any]] = (),
    *,
    canonical_base: str,
    resolve_patient: ReferenceResolver,
    resolve_reference: ReferenceResolver | None = None,
    source_system: str | None = None,
) -> dict[str, Any]:
    """observations: the Observations that are partOf this administration (vitals, scores, adverse events)."""
    expect_type(resource, _WHERE)
    status = resource.get("status")
    if status not in ("completed", "stopped", "not-done", "entered-in-error"):
        raise MappingError(f"{_WHERE}.status", f"{status!r} is not a finished administration", code="not-supported")
    reasons = [concept_text(r, f"{_WHERE}.statusReason") for r in as_list(resource.get("statusReason"), _WHERE)]
    status_reason = next((r for r in reasons if r), None)
    if status in ("stopped", "not-done") and status_reason is None:
        raise MappingError(f"{_WHERE}.statusReason", f"a {status} administration needs a reason", code="required")
    dosage = as_object(resource.get("dosage") or {}, f"{_WHERE}.dosage")
    contained = _contained_medication(resource)
    started, ended = _effective(resource)
    body: dict[str, Any] = {
        "source": source_from(resource, canonical_base, "ketamine-administration", source_system),
        "patient_id": resolve_subject(resource, _WHERE, resolve_patient),
        "enrollment_id": _enrollment(resource, resolve_reference),
        "drug": _drug(resource, contained),
        "route": _route(dosage),
        "started_at": started,
        "ended_at": ended,
        "lot_number": _lot(resource, contained, canonical_base),
        "performer_id": _performer(resource, resolve_reference),
        "status": status,
        "status_reason": status_reason,
        "observation_minutes": _minutes(resource, canonical_base),
        "rems_form_submitted_at": _rems(resource, canonical_base),
        **_dose(dosage, canonical_base),
        **session_fields_from_fhir(observations, canonical_base=canonical_base),
    }
    return body


def _contained_medication(resource: dict[str, Any]) -> dict[str, Any] | None:
    ref = resource.get("medicationReference")
    if ref is None:
        return None
    literal = as_object(ref, f"{_WHERE}.medicationReference").get("reference", "")
    if not isinstance(literal, str) or not literal.startswith("#"):
        raise MappingError(
            f"{_WHERE}.medicationReference", "only a contained Medication can be read", code="not-supported"
        )
    for item in as_list(resource.get("contained"), f"{_WHERE}.contained"):
        if isinstance(item, dict) and item.get("resourceType") == "Medication" and item.get("id") == literal[1:]:
            return item
    raise MappingError(f"{_WHERE}.medicationReference", f"{literal!r} is not among the contained resources")


def _drug(resource: dict[str, Any], contained: dict[str, Any] | None) -> str:
    location = f"{_WHERE}.medicationCodeableConcept"
    concept = resource.get("medicationCodeableConcept")
    if contained is not None:
        location, concept = f"{_WHERE}.contained(Medication).code", contained.get("code")
    for system, code, _ in codings(concept, location):
        drug = _DRUG_CODES.get((system or "", code or ""))
        if drug is not None:
            return drug
    shown = ", ".join(f"{s}|{c}" for s, c, _ in codings(concept, location)) or "no coding"
    raise MappingError(
        location, f"not ketamine or esketamine (RxNorm 6130/2201623/2201625): {shown}", code="not-supported"
    )


def _route(dosage: dict[str, Any]) -> str:
    location = f"{_WHERE}.dosage.route"
    for system, code, _ in codings(dosage.get("route"), location):
        if system == SNOMED and code in _ROUTES:
            return _ROUTES[code]
    raise MappingError(location, "a SNOMED CT route (IV, IM, nasal, sublingual, oral) is required", code="code-invalid")


def _dose(dosage: dict[str, Any], canonical_base: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    dose = dosage.get("dose")
    if dose is not None:
        quantity = as_object(dose, f"{_WHERE}.dosage.dose")
        unit = quantity.get("code", quantity.get("unit"))
        value = number(quantity.get("value"), f"{_WHERE}.dosage.dose.value")
        if unit == "mg":
            result["dose_mg"] = value
        elif unit == "mg/kg":
            result["dose_mg_per_kg"] = value
        else:
            raise MappingError(
                f"{_WHERE}.dosage.dose.code", f"dose unit {unit!r} is neither mg nor mg/kg", code="value"
            )
    per_kg = extension_value(dosage, extension_url(canonical_base, DOSE_PER_KG), "valueQuantity", f"{_WHERE}.dosage")
    if per_kg is not None:
        result["dose_mg_per_kg"] = number(
            as_object(per_kg, f"{_WHERE}.dosage.extension").get("value"), f"{_WHERE}.dosage.extension"
        )
    return result


def _effective(resource: dict[str, Any]) -> tuple[str, str | None]:
    if "effectiveDateTime" in resource:
        return aware_datetime(resource["effectiveDateTime"], f"{_WHERE}.effectiveDateTime"), None
    period = as_object(resource.get("effectivePeriod") or {}, f"{_WHERE}.effectivePeriod")
    if "start" not in period:
        raise MappingError(f"{_WHERE}.effective[x]", "the administration needs a start time", code="required")
    start = aware_datetime(period["start"], f"{_WHERE}.effectivePeriod.start")
    end = period.get("end")
    return start, aware_datetime(end, f"{_WHERE}.effectivePeriod.end") if end is not None else None


def _lot(resource: dict[str, Any], contained: dict[str, Any] | None, canonical_base: str) -> str | None:
    lot = extension_value(resource, extension_url(canonical_base, LOT_NUMBER), "valueString", _WHERE)
    if lot is None and contained is not None:
        batch = contained.get("batch")
        lot = batch.get("lotNumber") if isinstance(batch, dict) else None
    return str(lot) if lot is not None else None


def _performer(resource: dict[str, Any], resolver: ReferenceResolver | None) -> str | None:
    for i, performer in enumerate(as_list(resource.get("performer"), f"{_WHERE}.performer")):
        found = resolve(
            as_object(performer, f"{_WHERE}.performer[{i}]"),
            "actor",
            f"{_WHERE}.performer[{i}]",
            resolver,
            "Practitioner",
        )
        if found is not None:
            return found
    return None


def _enrollment(resource: dict[str, Any], resolver: ReferenceResolver | None) -> str | None:
    for i, info in enumerate(as_list(resource.get("supportingInformation"), f"{_WHERE}.supportingInformation")):
        found = resolve({"ref": info}, "ref", f"{_WHERE}.supportingInformation[{i}]", resolver, "CarePlan")
        if found is not None:
            return found
    return None


def _minutes(resource: dict[str, Any], canonical_base: str) -> int | None:
    value = extension_value(resource, extension_url(canonical_base, OBSERVATION_MINUTES), "valueDuration", _WHERE)
    if value is None:
        return None
    duration = as_object(value, f"{_WHERE}.extension")
    if duration.get("code") != "min":
        raise MappingError(f"{_WHERE}.extension.valueDuration", "observation time must be in minutes", code="value")
    return int(number(duration.get("value"), f"{_WHERE}.extension.valueDuration.value"))


def _rems(resource: dict[str, Any], canonical_base: str) -> str | None:
    value = extension_value(resource, extension_url(canonical_base, REMS_SUBMITTED), "valueDateTime", _WHERE)
    return aware_datetime(value, f"{_WHERE}.extension.valueDateTime") if value is not None else None
