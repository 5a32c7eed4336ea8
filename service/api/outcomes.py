"""Programme outcomes (issue #23): the report, and its CSV of one row per patient-period."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from service.api.deps import SessionDep, context_for
from service.api.problems import ERROR_RESPONSES
from service.api.records import API_PREFIX
from service.audit_trail import RequestContext
from service.auth.scopes import needs
from service.outcome_reports.csv_export import outcomes_csv
from service.outcome_reports.pseudonyms import tenant_key
from service.outcome_reports.reading import OutcomeQuery, compute_outcomes, read_outcomes
from service.outcomes import OutcomesReport
from service.record_store.kinds import ADMINS, CLINICIANS

router = APIRouter(prefix=API_PREFIX, tags=["outcomes"])
# A population read of what the report is computed from: enrolments (ServiceRequest), sessions and scores.
OUTCOME_INPUTS = needs(
    "Patient.s", "ServiceRequest.s", "MedicationAdministration.s", "Encounter.s", "QuestionnaireResponse.s"
)
READERS = ADMINS | CLINICIANS
ReadsOutcomes = Annotated[RequestContext, Depends(context_for("list", "outcomes", READERS, scopes=OUTCOME_INPUTS))]
ExportsOutcomes = Annotated[
    RequestContext, Depends(context_for("list", "outcomes-export", READERS, scopes=OUTCOME_INPUTS))
]


def outcome_query(
    period_start: Annotated[
        date | None,
        Query(
            description="First day of the period (enrolments that started from it); default a year before period_end"
        ),
    ] = None,
    period_end: Annotated[date | None, Query(description="Last day of the period; default today")] = None,
    protocol: Annotated[str | None, Query(max_length=64, description="A protocol id, e.g. esketamine-cbt")] = None,
    site: Annotated[
        str | None, Query(max_length=64, description="A site: in Tandem each site is a tenant, so only your own")
    ] = None,
    therapist: Annotated[
        str | None, Query(max_length=64, description="A practitioner id: patients with a CBT session with them")
    ] = None,
) -> OutcomeQuery:
    return OutcomeQuery(period_start, period_end, protocol, site, therapist)


QueryDep = Annotated[OutcomeQuery, Depends(outcome_query)]


@router.get(
    "/outcomes",
    operation_id="readOutcomes",
    summary="Programme outcomes for a period: enrolment, response and remission at weeks 4/8/12 and end of "
    "induction, durability of response by CBT adherence (Kaplan-Meier), completeness, safety, REMS timeliness; "
    "counts of fewer than TANDEM_OUTCOMES_MIN_CELL patients suppressed",
    response_model=OutcomesReport,
    responses=ERROR_RESPONSES,
)
def outcomes(response: Response, session: SessionDep, ctx: ReadsOutcomes, query: QueryDep) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return read_outcomes(session, ctx, query)


@router.get(
    "/outcomes.csv",
    operation_id="exportOutcomesCsv",
    summary="The outcomes as CSV, one row per patient-period with pseudonymous ids (schema: docs/outcomes.md)",
    response_class=Response,
    responses={**ERROR_RESPONSES, 200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def outcomes_export(session: SessionDep, ctx: ExportsOutcomes, query: QueryDep) -> Response:
    computed = compute_outcomes(session, ctx, query, record_kind="outcomes-export")
    filters = computed.selection.filters
    body = outcomes_csv(computed.patients, filters, tenant_key(ctx.settings, ctx.tenant_id))
    name = f"outcomes-{filters.period_start}-{filters.period_end}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Cache-Control": "no-store", "Content-Disposition": f'attachment; filename="{name}"'},
    )
