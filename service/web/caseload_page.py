"""The caseload registry page: who is on track, who needs attention, who is at risk — read from stored statuses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import Session, col, select

from service.caseload.query import CaseloadFilters, CaseloadRow, SortKey, read_caseload
from service.caseload.tables import PlanStatusRow
from service.clock import now_utc
from service.errors import invalid
from service.instruments import INSTRUMENTS
from service.records.practitioner import Practitioner
from service.self_report.invitations import latest_requests
from service.web import labels
from service.web.charts import sparkline
from service.web.deps import CARE_PAGES, CASELOAD_PAGE, SessionDep, SignedIn, context_for_page, settings_of
from service.web.rendering import WebRoute, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
SORT_KEYS: tuple[str, ...] = get_args(SortKey)


@dataclass(frozen=True)
class Column:
    key: str  # sort key
    label: str


COLUMNS = (
    Column("status", "Status"),
    Column("phase", "Phase"),
    Column("patient", "Patient"),
    Column("weeks", "Weeks"),
    Column("change", "Primary score"),
    Column("flags", "Open flags"),
    Column("last_contact", "Last contact"),
    Column("next_due", "Next due"),
    Column("coordinator", "Coordinator"),
)


@dataclass(frozen=True)
class CaseloadQuery:
    """The page's query string, checked: unknown values are refused, not silently ignored."""

    status: str | None
    phase: str | None
    flag: str | None
    coordinator: str | None
    search: str | None
    sort: SortKey
    descending: bool
    page: int

    def link(self, **changes: Any) -> str:
        values = {
            "status": self.status,
            "phase": self.phase,
            "flag": self.flag,
            "coordinator": self.coordinator,
            "q": self.search,
            "sort": self.sort if self.sort != "urgency" else None,
            "dir": "desc" if self.descending else None,
            "page": self.page if self.page != 1 else None,
        }
        values.update(changes)
        query = urlencode({k: v for k, v in values.items() if v not in (None, "", 1)})
        return f"/?{query}" if query else "/"

    def sort_link(self, key: str) -> str:
        descending = not self.descending if self.sort == key else False
        return self.link(sort=key, dir="desc" if descending else None, page=None)

    def aria_sort(self, key: str) -> str:
        if self.sort != key:
            return "none"
        return "descending" if self.descending else "ascending"


def _choice(name: str, value: str | None, allowed: tuple[str, ...] | None, max_length: int = 64) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > max_length or (allowed is not None and value not in allowed):
        raise invalid(name, f"{value!r} is not a {name} this page knows")
    return value


def parse_query(
    status: str | None,
    phase: str | None,
    flag: str | None,
    coordinator: str | None,
    search: str | None,
    sort: str | None,
    direction: str | None,
    page: str | None,
) -> CaseloadQuery:
    page_number = int(page) if page and page.isdigit() else 1
    return CaseloadQuery(
        status=_choice("status", status, labels.STATUS_ORDER),
        phase=_choice("phase", phase, tuple(labels.PHASE_LABELS)),
        flag=_choice("flag", flag, None),
        coordinator=_choice("coordinator", coordinator, None),
        search=search.strip() or None if search else None,
        sort=cast(SortKey, _choice("sort", sort, SORT_KEYS) or "urgency"),
        descending=direction == "desc",
        page=max(1, min(page_number, 100_000)),
    )


@router.get("/")
def caseload_page(
    request: Request,
    session: SessionDep,
    web_session: SignedIn,
    status: str | None = None,
    phase: str | None = None,
    flag: str | None = None,
    coordinator: str | None = None,
    q: str | None = None,
    sort: str | None = None,
    dir: str | None = None,
    page: str | None = None,
) -> Response:
    if web_session.role == "admin":
        return RedirectResponse("/sync", status_code=303)
    ctx = context_for_page(request, web_session, session, "list", "caseload", CARE_PAGES, scopes=CASELOAD_PAGE)
    query = parse_query(status, phase, flag, coordinator, q, sort, dir, page)
    settings = settings_of(request)
    result = read_caseload(
        session,
        ctx,
        CaseloadFilters(
            page_size=settings.default_page_size,
            page=query.page,
            status=query.status,
            phase=query.phase,
            flag=query.flag,
            coordinator_id=query.coordinator,
            search=query.search,
            sort=query.sort,
            descending=query.descending,
        ),
    )
    pages = max(1, math.ceil(result.total / result.page_size))
    # A measurement due: was the questionnaire sent (and not completed), or not sent at all?
    measured = [row.patient_id for row in result.rows if row.next_due_kind == "measurement"]
    requests = latest_requests(session, ctx.tenant_id, measured, now_utc())
    values = {
        "title": "Caseload",
        "query": query,
        "rows": [_row_view(row, requests.get(row.patient_id)) for row in result.rows],
        "total": result.total,
        "page": result.page,
        "pages": pages,
        "counts": [
            (code, labels.status_look(code), result.counts_by_status.get(code, 0)) for code in labels.STATUS_ORDER
        ],
        "all_count": sum(result.counts_by_status.values()),
        "columns": COLUMNS,
        "phases": labels.PHASE_LABELS,
        "flags": labels.FLAG_LABELS,
        "coordinators": _coordinators(session, ctx.tenant_id),
    }
    return render(request, "caseload.html", values)


# What became of the latest questionnaire sent, beside a measurement due (none sent: "not sent").
REQUEST_WORDS = {"sent": "sent, not completed", "expired": "sent, expired unanswered"}


def _row_view(row: CaseloadRow, request: str | None = None) -> dict[str, Any]:
    instrument = INSTRUMENTS.get(row.primary_instrument)
    max_total = float(instrument.max_total) if instrument is not None else max(row.score_trend or [1.0])
    title = instrument.key.upper() if instrument is not None else row.primary_instrument
    return {
        "row": row,
        "name": ", ".join(n for n in (row.family_name, row.given_name) if n) or row.name_text or "(no name)",
        # Two "Petrov, Dana" rows are told apart by MRN and date of birth.
        "identity": " · ".join(
            [
                *([f"MRN {row.mrn}"] if row.mrn else []),
                *([f"born {row.birth_date:%-d %b %Y}"] if row.birth_date else []),
                *(["deceased"] if row.deceased else []),
            ]
        ),
        "look": labels.status_look(row.status),
        "enrollment_note": labels.enrollment_note(row.status, row.enrollment_status),
        "instrument": title,
        "spark": sparkline(row.score_trend, max_total, title),
        "improved": row.change_percent is not None and row.change_percent <= -50,
        "request": REQUEST_WORDS.get(request or "", "not sent") if row.next_due_kind == "measurement" else None,
    }


def _coordinators(session: Session, tenant_id: str) -> list[tuple[str, str]]:
    """Coordinators who have patients here (an indexed distinct), by name. Staff names, not patient data."""
    ids = session.exec(
        select(PlanStatusRow.coordinator_id)
        .where(col(PlanStatusRow.tenant_id) == tenant_id, col(PlanStatusRow.coordinator_id).is_not(None))
        .distinct()
    ).all()
    if not ids:
        return []
    people = session.exec(
        select(Practitioner).where(col(Practitioner.tenant_id) == tenant_id, col(Practitioner.id).in_(ids))
    ).all()
    session.rollback()
    return sorted(
        ((p.id, f"{p.family_name}, {p.given_name}" if p.given_name else p.family_name) for p in people),
        key=lambda pair: pair[1],
    )
