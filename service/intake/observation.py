"""The one Observation intake: which kind of Observation it is (by category, then by code), then its branch.

Score Observations (category survey, or any Observation coded with an instrument's total LOINC code: a flowsheet
row often has no category) become a QuestionnaireResponse record: the total, and the items when the sender has them
as components. Vital signs (category vital-signs, or any Observation coded with a vital-sign LOINC code) become a
vital-sign record (service/intake/vital_signs.py).
A US Core panel arrives as one Observation folded from the panel and its members (service/fhir/bundles.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import fhir_mappings as fm
from fhir_mappings.codes import OBSERVATION_CATEGORY
from fhir_mappings.reading import as_list, codings, expect_type
from service.instruments import INSTRUMENTS, TOTAL_CODES, Instrument, item_answer
from service.records.base import ApiModel
from service.records.questionnaire import QuestionnaireResponseCreate
from service.records.vital_sign import VitalSignCreate

from .context import Intake, mapped, refused, validated
from .vital_signs import take_vital_sign

ObservationBranch = Callable[[Intake, dict[str, Any]], ApiModel]
_WHERE: Final = "Observation"


def take_score_observation(intake: Intake, resource: dict[str, Any]) -> QuestionnaireResponseCreate:
    """A total score (a flowsheet row, US Core's screening-assessment Observation), with its items as components
    when sent: a QuestionnaireResponse record, scored like any response (a total alone is "items not reported")."""
    sent = mapped(
        lambda: fm.read_score_observation(
            resource,
            canonical_base=intake.canonical_base,
            resolve_patient=intake.resolve,
            totals=TOTAL_CODES,
            resolve_reference=intake.resolve,
            source_system=intake.source_system,
        )
    )
    instrument = INSTRUMENTS[sent.instrument]
    answers = mapped(lambda: _item_answers(instrument, sent))
    total = sent.total
    if total is not None and not answers:
        mapped(lambda: _check_total(instrument, total, sent.total_location))
    body: dict[str, Any] = {**sent.header, "instrument": instrument.key, "answers": answers}
    if instrument.externally_scored and total is not None:
        # A licensed instrument's one item is its externally scored total (BDI-II 89209-1).
        body["answers"] = [{"link_id": instrument.total_link_id, **_number(total)}]
    elif total is not None:
        body["sent_total"] = total
    return validated(QuestionnaireResponseCreate, body, _WHERE)


def _item_answers(instrument: Instrument, sent: fm.SentScoreObservation) -> list[dict[str, Any]]:
    """One answer per item component; a partial set is refused (its total could not be judged either way)."""
    answers: list[dict[str, Any]] = []
    for component in sent.components:
        if sent.total_code in component.codes:
            continue  # the total repeated as a component: the value[x] is the total
        item = next((i for c in component.codes if (i := instrument.item_for_loinc(c)) is not None), None)
        if item is None:
            known = ", ".join(i.loinc for i in instrument.items if i.loinc)
            raise fm.MappingError(
                f"{component.location}.code",
                f"no {instrument.title} item code (LOINC {known}); map your site's code in the target's code_map",
                code="not-supported",
            )
        answer = fm.SentAnswer(component.location, item.link_id, None, component.value_key, component.value, 0)
        answers.append(item_answer(instrument, item, answer).model_dump(mode="json", exclude_none=True))
    sent_items = {a["link_id"] for a in answers}
    missing = [i.loinc or i.link_id for i in instrument.scored_items if i.required and i.link_id not in sent_items]
    if answers and missing and not instrument.externally_scored:
        raise fm.MappingError(
            f"{_WHERE}.component",
            f"{instrument.title} items {', '.join(missing)} not sent: send one component per item (all of them), "
            "or the total alone (then stored as 'items not reported')",
            code="required",
        )
    return answers


def _check_total(instrument: Instrument, total: float, location: str) -> None:
    if not float(total).is_integer() and instrument.proration is None:
        raise fm.MappingError(location, f"{instrument.title} total {total:g} is not a whole number", code="value")
    if not instrument.min_total <= total <= instrument.max_total:
        raise fm.MappingError(
            location,
            f"{instrument.title} total {total:g} is outside its range {instrument.min_total}-{instrument.max_total}",
            code="value",
        )


def _number(value: float) -> dict[str, Any]:
    return {"value_integer": int(value)} if float(value).is_integer() else {"value_decimal": value}


# Observation category (observation-category CodeSystem) -> its intake.
BRANCHES: dict[str, ObservationBranch] = {"survey": take_score_observation, "vital-signs": take_vital_sign}


# What each writable category takes, for the CapabilityStatement (a branch added above says what it takes here).
BRANCH_DOCUMENTATION: dict[str, str] = {
    "survey": "instrument total scores by LOINC ("
    + ", ".join(f"{code} {key.upper()}" for code, key in TOTAL_CODES.items())
    + "), as valueInteger, valueQuantity {score} or a numeric valueString, with one component per item when "
    "sent; a US Core panel with its hasMember Observations in the same Bundle. Any Observation with one of these "
    "codes is a score, whatever its category",
    "vital-signs": "blood pressure (LOINC panel 85354-9 with components 8480-6 systolic and 8462-4 diastolic, or "
    "8480-6 / 8462-4 alone, valueQuantity mm[Hg]), heart rate 8867-4 (/min), SpO2 59408-5 or 2708-6 (%); any "
    "Observation with one of these codes is a vital sign, whatever its category. One taken in a ketamine session's "
    "window (60 min before the dose to discharge) belongs to that session (partOf) and its safety rules; others "
    "are the patient's vitals",
}


def writable_categories() -> str:
    """The Observation categories taken in, in words, for the CapabilityStatement."""
    return "; ".join(f"category {c}: {BRANCH_DOCUMENTATION.get(c, 'taken in')}" for c in sorted(BRANCHES))


def observation_branch(resource: dict[str, Any]) -> ObservationBranch:
    """By code first (a total score's LOINC code says survey whatever the category), then by category."""
    expect_type(resource, _WHERE)
    if fm.score_codes(resource, TOTAL_CODES) is not None:
        return BRANCHES["survey"]
    if fm.vital_sign_code(resource) is not None:
        # A vital sign's LOINC code says what it is without a category (a flowsheet row often has none).
        return BRANCHES["vital-signs"]
    categories = [
        code
        for n, concept in enumerate(as_list(resource.get("category"), f"{_WHERE}.category"))
        for system, code, _ in codings(concept, f"{_WHERE}.category[{n}]")
        if system == OBSERVATION_CATEGORY and isinstance(code, str)
    ]
    if fm.member_references(resource):
        raise fm.MappingError(
            f"{_WHERE}.hasMember",
            "a panel is taken with its member Observations in the same transaction or batch Bundle; or send the "
            "total (e.g. LOINC 44261-6) with one component per item",
            code="not-supported",
        )
    branch = next((BRANCHES[c] for c in categories if c in BRANCHES), None)
    if branch is not None:
        return branch
    if "survey" in categories:
        return BRANCHES["survey"]  # refuses with the known total codes
    writable = ", ".join(sorted(BRANCHES))
    raise fm.MappingError(
        f"{_WHERE}.category",
        f"categories {', '.join(categories) or '(none)'} are not taken in; writable: {writable} (instrument totals: "
        + ", ".join(f"LOINC {code} {key.upper()}" for code, key in TOTAL_CODES.items())
        + "); map your site's code in the target's code_map",
        code="not-supported",
    )


def take_observation(intake: Intake, resource: dict[str, Any]) -> ApiModel:
    """The one Observation intake, for every path (POST, Bundles, import, pull)."""
    try:
        branch = observation_branch(resource)
    except fm.MappingError as error:
        raise refused(error) from None
    return branch(intake, resource)


def observation_role(payload: ApiModel) -> str | None:
    """Which of its record's derived Observations serves a taken-in Observation back: a score's is its total; a
    vital sign is its record's own resource (None)."""
    if isinstance(payload, QuestionnaireResponseCreate):
        return "total"
    if isinstance(payload, VitalSignCreate):
        return None
    raise TypeError(f"no Observation role for {type(payload).__name__}")
