"""The quality measures Tandem publishes (Measure) and their summary reports (MeasureReport), as R4 JSON dicts.

In the spirit of CMS159 (Depression Remission at Twelve Months): proportion scoring, an initial population, a
denominator and a numerator. Tandem's measures count enrolments that started in the period and had a first
ketamine or esketamine session; the denominator, those whose milestone window had closed by the period's end
(a missing score counts against the measure, as in CMS159); the numerator, response (a fall of at least half from
the baseline score) or remission (PHQ-9 under 5) at the milestone. Unlike CMS159 the initial population does not
require a baseline PHQ-9 over 9: the programme treats depression already diagnosed.

A count of fewer patients than the cell size is left out of the report, with the data-absent-reason `masked`, and
so is the score; the service decides which (service/outcomes/suppression.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .identity import instant, narrative

MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
MEASURE_SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
MEASURE_TYPE = "http://terminology.hl7.org/CodeSystem/measure-type"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
MEASURE_VERSION = "1"


@dataclass(frozen=True)
class MeasureDefinition:
    id: str  # also the last part of its canonical url
    title: str
    milestone: str  # service/outcomes/response.py MILESTONES key
    outcome: str  # "response" | "remission"
    description: str


MEASURES: tuple[MeasureDefinition, ...] = (
    MeasureDefinition(
        "phq9-response-12-weeks",
        "PHQ-9 response at 12 weeks",
        "week_12",
        "response",
        "Share of patients starting ketamine or esketamine + CBT whose PHQ-9 twelve weeks after the first session "
        "(the score closest to it within 7 days) fell by at least half from the baseline score.",
    ),
    MeasureDefinition(
        "phq9-remission-12-weeks",
        "PHQ-9 remission at 12 weeks",
        "week_12",
        "remission",
        "Share of patients starting ketamine or esketamine + CBT whose PHQ-9 twelve weeks after the first session "
        "(the score closest to it within 7 days) was under 5.",
    ),
    MeasureDefinition(
        "phq9-remission-12-months",
        "PHQ-9 remission at 12 months",
        "month_12",
        "remission",
        "Share of patients starting ketamine or esketamine + CBT whose PHQ-9 twelve months after the first session "
        "(the score closest to it within 60 days, as CMS159 allows) was under 5.",
    ),
)
POPULATIONS = (
    ("initial-population", "Initial Population", "Enrolments that started in the period and had a first session"),
    ("denominator", "Denominator", "Those whose milestone window had closed by the end of the period"),
    ("numerator", "Numerator", "Those with the outcome at the milestone"),
)


def measure_url(canonical_base: str, definition: MeasureDefinition) -> str:
    return f"{canonical_base}/Measure/{definition.id}"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, **({"display": display} if display else {})}]}


def measure_resource(canonical_base: str, definition: MeasureDefinition) -> dict[str, Any]:
    name = "Tandem" + "".join(part.capitalize() for part in definition.id.split("-"))
    return {
        "resourceType": "Measure",
        "id": definition.id,
        "text": narrative(f"{definition.title}. {definition.description}"),
        "url": measure_url(canonical_base, definition),
        "version": MEASURE_VERSION,
        "name": name,
        "title": definition.title,
        "status": "active",
        "experimental": False,
        "date": "2026-12-04",
        "publisher": "Tandem",
        "description": definition.description,
        "scoring": _coding(MEASURE_SCORING, "proportion", "Proportion"),
        "type": [_coding(MEASURE_TYPE, "outcome", "Outcome")],
        "improvementNotation": _coding(IMPROVEMENT, "increase", "Increased score indicates improvement"),
        "group": [
            {
                "population": [
                    {
                        "code": _coding(MEASURE_POPULATION, code, display),
                        "description": words,
                        # No CQL is published: the criteria are Tandem's code, named here in words.
                        "criteria": {"language": "text/plain", "expression": words},
                    }
                    for code, display, words in POPULATIONS
                ]
            }
        ],
    }


@dataclass(frozen=True)
class PopulationCounts:
    """Counts for a report; None = suppressed (fewer patients than the cell size, or it would give one away)."""

    initial_population: int | None
    denominator: int | None
    numerator: int | None
    score: float | None


def measure_report(
    canonical_base: str,
    definition: MeasureDefinition,
    counts: PopulationCounts,
    *,
    period_start: date,
    period_end: date,
    generated: datetime,
    report_id: str,
) -> dict[str, Any]:
    populations = []
    for (code, display, _), value in zip(
        POPULATIONS, (counts.initial_population, counts.denominator, counts.numerator), strict=True
    ):
        population: dict[str, Any] = {"code": _coding(MEASURE_POPULATION, code, display)}
        if value is None:
            population["extension"] = [{"url": DATA_ABSENT, "valueCode": "masked"}]
        else:
            population["count"] = value
        populations.append(population)
    group: dict[str, Any] = {"population": populations}
    if counts.score is not None:
        group["measureScore"] = {"value": round(counts.score, 4)}
    masked = any(v is None for v in (counts.initial_population, counts.denominator, counts.numerator))
    summary = f"{definition.title}, {period_start} to {period_end}" + (" (small counts masked)" if masked else "")
    return {
        "resourceType": "MeasureReport",
        "id": report_id,
        "text": narrative(summary),
        "status": "complete",
        "type": "summary",
        "measure": f"{measure_url(canonical_base, definition)}|{MEASURE_VERSION}",
        "date": instant(generated),
        "period": {"start": period_start.isoformat(), "end": period_end.isoformat()},
        "improvementNotation": _coding(IMPROVEMENT, "increase", "Increased score indicates improvement"),
        "group": [group],
    }
