"""The outcomes report for the API and the page: filters checked, courses loaded, the pure report built, and one
audit row per patient counted (a population read, like the caseload's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.clock import today_utc
from service.outcomes import Filters, OutcomesReport, PatientOutcome, build_report, patient_outcome

from .query import Selection, check_filters, select_courses

RECORD_KIND = "outcomes"


@dataclass(frozen=True)
class OutcomeQuery:
    period_start: date | None = None
    period_end: date | None = None
    protocol: str | None = None
    site: str | None = None
    therapist: str | None = None


@dataclass(frozen=True)
class Computed:
    selection: Selection
    patients: list[PatientOutcome]


def compute_outcomes(
    session: Session, ctx: RequestContext, query: OutcomeQuery, record_kind: str = RECORD_KIND
) -> Computed:
    ctx.intent = AuditIntent("list", record_kind)
    filters = check_filters(
        session,
        ctx,
        period_start=query.period_start,
        period_end=query.period_end,
        protocol=query.protocol,
        site=query.site,
        therapist=query.therapist,
        today=today_utc(),
    )
    selection = select_courses(session, ctx, filters)
    share = ctx.settings.outcomes_cbt_adherent_share
    patients = [patient_outcome(c, selection.as_of, selection.tz, adherent_share=share) for c in selection.courses]
    record_success(session, ctx, status_code=200, patient_ids=selection.patient_ids)
    return Computed(selection, patients)


def read_outcomes(session: Session, ctx: RequestContext, query: OutcomeQuery) -> OutcomesReport:
    computed = compute_outcomes(session, ctx, query)
    return report_of(computed, ctx)


def report_of(computed: Computed, ctx: RequestContext) -> OutcomesReport:
    selection = computed.selection
    return build_report(
        computed.patients,
        selection.filters,
        selection.as_of,
        min_cell=ctx.settings.outcomes_min_cell,
        adherent_share=ctx.settings.outcomes_cbt_adherent_share,
    )


__all__ = ["Filters", "OutcomeQuery", "compute_outcomes", "read_outcomes", "report_of"]
