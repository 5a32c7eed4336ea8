"""The outcomes page: response, remission and durability of response by CBT adherence for a period, with the
numbers beside every chart and small counts suppressed (over the same service function as /api/v1/outcomes)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session, col, select

from service.api.outcomes import OUTCOME_INPUTS
from service.auth.principal import Role
from service.caseload.protocols import available_protocols
from service.errors import invalid
from service.outcome_reports.reading import OutcomeQuery, read_outcomes
from service.outcomes.suppression import Cell, Rate
from service.records.practitioner import Practitioner
from service.web import labels
from service.web.deps import SessionDep, SignedIn, context_for_page
from service.web.outcome_charts import milestone_chart, survival_chart
from service.web.rendering import WebRoute, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
OUTCOME_PAGES: frozenset[Role] = frozenset({"clinician", "admin"})
COHORT_LABELS = {"active": "Active", "on-hold": "On hold", "completed": "Completed", "discontinued": "Discontinued"}
REMS_LABELS = {"on_time": "On time", "late": "Late", "overdue": "Overdue", "pending": "Not yet due"}


def _date(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(name, f"{value!r} is not a date (YYYY-MM-DD)") from None


@router.get("/outcomes")
def outcomes_page(
    request: Request,
    session: SessionDep,
    web_session: SignedIn,
    period_start: str | None = None,
    period_end: str | None = None,
    protocol: str | None = None,
    therapist: str | None = None,
) -> Response:
    ctx = context_for_page(request, web_session, session, "list", "outcomes", OUTCOME_PAGES, scopes=OUTCOME_INPUTS)
    query = OutcomeQuery(
        period_start=_date("period_start", period_start),
        period_end=_date("period_end", period_end),
        protocol=protocol or None,
        therapist=therapist or None,
    )
    report = read_outcomes(session, ctx, query)
    n = report.min_cell

    def shown(c: Cell | int | float | None) -> str:
        """A count as the page shows it: "< 11" under the cell size, "hidden" when a small cell beside it could
        otherwise be worked out (the caveat says so)."""
        if isinstance(c, Cell):
            if not c.suppressed:
                return str(c.value)
            return "hidden" if c.reason == "complementary" else f"< {n}"
        return f"< {n}" if c is None else f"{c:g}"

    def percent(r: Rate | float | None) -> str:
        value = r.rate if isinstance(r, Rate) else r
        if isinstance(r, Rate) and r.suppressed:
            if r.denominator.value == 0:
                return "none due"
            return "hidden" if r.numerator.reason == "complementary" else f"< {n} patients"
        return "-" if value is None else f"{value:.0%}"

    values: dict[str, Any] = {
        "title": "Outcomes",
        "report": report,
        "shown": shown,
        "percent": percent,
        "cohort_labels": COHORT_LABELS,
        "rems_labels": REMS_LABELS,
        "flag_label": labels.flag_label,
        "km_chart": survival_chart(report.durability.groups, "km"),
        "bar_chart": milestone_chart(report.milestones, "bars", n),
        "protocols": sorted({p.id: p.title for p in available_protocols(session, ctx.tenant_id)}.items()),
        "therapists": _therapists(session, ctx.tenant_id),
    }
    return render(request, "outcomes.html", values)


def _therapists(session: Session, tenant_id: str) -> list[tuple[str, str]]:
    people = session.exec(
        select(Practitioner).where(col(Practitioner.tenant_id) == tenant_id, col(Practitioner.role) == "therapist")
    ).all()
    return sorted(
        ((p.id, f"{p.family_name}, {p.given_name}" if p.given_name else p.family_name) for p in people),
        key=lambda t: t[1],
    )
