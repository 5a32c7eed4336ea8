"""The FHIR Measures Tandem publishes and `$evaluate-measure`: a summary MeasureReport for a period, from the same
report the outcomes page shows (so the same suppression), audited as a population read."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from sqlmodel import Session

from fhir_mappings.measure import MEASURES, MeasureDefinition, PopulationCounts, measure_report, measure_resource
from service.audit_trail import RequestContext
from service.clock import now_utc
from service.errors import RecordNotFound
from service.outcomes.report import MilestoneReport
from service.outcomes.response import MILESTONES

from .reading import OutcomeQuery, compute_outcomes, report_of


def published_measures(canonical_base: str) -> list[dict[str, Any]]:
    return [measure_resource(canonical_base, d) for d in MEASURES]


def find_measure(measure_id: str) -> MeasureDefinition:
    for definition in MEASURES:
        if definition.id == measure_id:
            return definition
    raise RecordNotFound("Measure", measure_id)


def evaluate_measure(
    session: Session,
    ctx: RequestContext,
    measure_id: str,
    *,
    period_start: date | None,
    period_end: date | None,
) -> dict[str, Any]:
    definition = find_measure(measure_id)
    assert definition.milestone in MILESTONES
    computed = compute_outcomes(session, ctx, OutcomeQuery(period_start, period_end), record_kind="fhir/MeasureReport")
    report = report_of(computed, ctx)
    milestone = next(m for m in report.milestones if m.key == definition.milestone)
    initial = sum(1 for p in computed.patients if p.first_session_at is not None)
    counts = _counts(milestone, definition, initial, ctx.settings.outcomes_min_cell)
    filters = report.filters
    key = f"{ctx.tenant_id}|{definition.id}|{filters.period_start}|{filters.period_end}|{report.as_of.isoformat()}"
    return measure_report(
        ctx.settings.canonical_base,
        definition,
        counts,
        period_start=filters.period_start,
        period_end=filters.period_end,
        generated=now_utc(),
        report_id=hashlib.sha256(key.encode()).hexdigest()[:32],
    )


def _counts(milestone: MilestoneReport, definition: MeasureDefinition, initial: int, min_cell: int) -> PopulationCounts:
    outcome = milestone.response if definition.outcome == "response" else milestone.remission
    return PopulationCounts(
        initial_population=initial if not 0 < initial < min_cell else None,
        denominator=milestone.due.value,
        numerator=outcome.numerator.value,
        score=outcome.rate,
    )
