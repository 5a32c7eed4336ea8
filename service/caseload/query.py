"""The caseload registry: one row per enrollment, read from the stored statuses (never recomputed on read)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import case, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.break_glass.access import visible
from service.caseload.patient_search import check_search, patients_matching
from service.caseload.tables import PlanStatusRow
from service.clock import today_utc
from service.db.unit_of_work import refresh_pending
from service.errors import invalid
from service.records.patient import Patient, PatientIdentifier
from service.records.practitioner import Practitioner

SortKey = Literal[
    "urgency",
    "patient",
    "status",
    "phase",
    "weeks",
    "baseline",
    "latest",
    "change",
    "flags",
    "last_contact",
    "next_due",
    "coordinator",
]


@dataclass(frozen=True)
class CaseloadFilters:
    page_size: int
    page: int = 1
    status: str | None = None
    phase: str | None = None
    flag: str | None = None
    coordinator_id: str | None = None
    protocol_id: str | None = None
    search: str | None = None  # a name, MRN or date of birth (patient_search); checked by the caller
    sort: SortKey = "urgency"
    descending: bool = False


class CaseloadRow(BaseModel):
    patient_id: str
    enrollment_id: str
    family_name: str | None
    given_name: str | None
    name_text: str | None = Field(default=None, description="The whole name, when the hospital sent no parts")
    birth_date: date | None
    deceased: bool = False
    mrn: str | None = Field(description="The patient's first identifier (MRN), to tell patients of one name apart")
    status: str
    enrollment_status: str | None = Field(
        description="The enrollment's own state (active, on-hold, completed, discontinued); an open urgent finding "
        "makes the status at_risk whatever this is"
    )
    phase: str
    protocol_id: str
    weeks_in_programme: int
    primary_instrument: str
    baseline_score: float | None
    latest_score: float | None
    change_percent: float | None = Field(description="Negative is improvement")
    score_trend: list[float]
    open_flags: list[str]
    open_urgent: int
    open_warnings: int
    last_contact_at: datetime | None
    next_due_at: datetime | None
    next_due_kind: str | None
    overdue: bool
    coordinator_id: str | None
    coordinator_name: str | None


class CaseloadPage(BaseModel):
    rows: list[CaseloadRow]
    total: int
    page: int
    page_size: int
    counts_by_status: dict[str, int] = Field(description="Across the whole filtered caseload, ignoring `status`")


def _nulls_last(column: Any, descending: bool) -> list[Any]:
    # Portable NULLS LAST/FIRST: SQLite and PostgreSQL disagree on the default.
    missing = case((column.is_(None), 1), else_=0)
    return [missing, column.desc() if descending else column.asc()]


def read_caseload(session: Session, ctx: RequestContext, filters: CaseloadFilters) -> CaseloadPage:
    ctx.intent = AuditIntent("list", "caseload")
    if filters.search is not None and (problem := check_search(filters.search)) is not None:
        raise invalid("q", problem)
    refresh_pending(session)
    conditions = _conditions(ctx.tenant_id, filters)
    if (not_hidden := visible(session, ctx, PlanStatusRow.patient_id)) is not None:
        conditions.append(not_hidden)
    counts_query = select(PlanStatusRow.status, func.count()).where(*conditions).group_by(col(PlanStatusRow.status))
    counts = {str(s): int(n) for s, n in session.exec(counts_query)}
    if filters.status is not None:
        conditions.append(col(PlanStatusRow.status) == filters.status)
    coordinator = aliased(Practitioner)
    base = (
        select(PlanStatusRow, Patient, coordinator)
        .join(
            Patient,
            (col(Patient.tenant_id) == col(PlanStatusRow.tenant_id))
            & (col(Patient.id) == col(PlanStatusRow.patient_id)),
        )
        .outerjoin(
            coordinator,
            (col(coordinator.tenant_id) == col(PlanStatusRow.tenant_id))
            & (col(coordinator.id) == col(PlanStatusRow.coordinator_id)),
        )
        .where(*conditions)
    )
    total = session.exec(select(func.count()).select_from(PlanStatusRow).where(*conditions)).one()
    ordered = base.order_by(*_order(filters, coordinator), col(PlanStatusRow.enrollment_id))
    found = session.exec(ordered.offset((filters.page - 1) * filters.page_size).limit(filters.page_size)).all()
    mrns = _first_mrns(session, ctx.tenant_id, [patient.id for _, patient, _ in found])
    rows = [_row(status, patient, coord, mrns.get(patient.id)) for status, patient, coord in found]
    record_success(session, ctx, status_code=200, patient_ids=[r.patient_id for r in rows])
    return CaseloadPage(rows=rows, total=total, page=filters.page, page_size=filters.page_size, counts_by_status=counts)


def _first_mrns(session: Session, tenant_id: str, patient_ids: list[str]) -> dict[str, str]:
    """Each patient's first identifier, for one page's patients (a second small query, not one per sorted row)."""
    query = (
        select(PatientIdentifier.patient_id, PatientIdentifier.value)
        .where(col(PatientIdentifier.tenant_id) == tenant_id, col(PatientIdentifier.patient_id).in_(patient_ids))
        .order_by(col(PatientIdentifier.id).desc())
    )
    return dict(session.exec(query).all())  # later rows overwrite: ordered newest first, the first one stays


def _conditions(tenant_id: str, filters: CaseloadFilters) -> list[Any]:
    """Every filter but status (the counts per status are taken before it applies). Always within the tenant."""
    conditions: list[Any] = [col(PlanStatusRow.tenant_id) == tenant_id]
    if filters.phase is not None:
        conditions.append(col(PlanStatusRow.phase) == filters.phase)
    if filters.flag is not None:
        conditions.append(col(PlanStatusRow.open_flags).contains(f",{filters.flag},", autoescape=True))
    if filters.coordinator_id is not None:
        conditions.append(col(PlanStatusRow.coordinator_id) == filters.coordinator_id)
    if filters.protocol_id is not None:
        conditions.append(col(PlanStatusRow.protocol_id) == filters.protocol_id)
    if filters.search is not None:
        conditions.append(patients_matching(tenant_id, filters.search, col(PlanStatusRow.patient_id)))
    return conditions


def _order(filters: CaseloadFilters, coordinator: Any) -> list[Any]:
    p = PlanStatusRow
    columns: dict[str, Any] = {
        "patient": col(Patient.family_name),
        "status": col(p.urgency),
        "phase": col(p.phase),
        "weeks": col(p.start_date),
        "baseline": col(p.baseline_score),
        "latest": col(p.latest_score),
        "change": col(p.change_percent),
        "flags": col(p.open_urgent) * 1000 + col(p.open_warnings),
        "last_contact": col(p.last_contact_at),
        "next_due": col(p.next_due_at),
        "coordinator": col(coordinator.family_name),
    }
    if filters.sort == "urgency":
        # Default: the most urgent first, then whoever has gone longest without contact (never contacted first).
        never_contacted_first = case((col(p.last_contact_at).is_(None), 0), else_=1)
        return [col(p.urgency), never_contacted_first, col(p.last_contact_at)]
    # Weeks in programme grow as the start date recedes: an ascending sort by weeks is descending by date.
    descending = not filters.descending if filters.sort == "weeks" else filters.descending
    return _nulls_last(columns[filters.sort], descending)


def _row(status: PlanStatusRow, patient: Patient, coordinator: Practitioner | None, mrn: str | None) -> CaseloadRow:
    return CaseloadRow(
        patient_id=status.patient_id,
        enrollment_id=status.enrollment_id,
        family_name=patient.family_name,
        given_name=patient.given_name,
        name_text=patient.name_text,
        birth_date=patient.birth_date,
        deceased=patient.deceased,
        mrn=mrn,
        status=status.status,
        enrollment_status=status.detail.get("enrollment_status"),
        phase=status.phase,
        protocol_id=status.protocol_id,
        weeks_in_programme=_weeks_since(status.start_date),
        primary_instrument=status.primary_instrument,
        baseline_score=status.baseline_score,
        latest_score=status.latest_score,
        change_percent=status.change_percent,
        score_trend=status.score_trend,
        open_flags=[code for code in status.open_flags.split(",") if code],
        open_urgent=status.open_urgent,
        open_warnings=status.open_warnings,
        last_contact_at=status.last_contact_at,
        next_due_at=status.next_due_at,
        next_due_kind=status.next_due_kind,
        overdue=status.overdue,
        coordinator_id=status.coordinator_id,
        coordinator_name=f"{coordinator.given_name or ''} {coordinator.family_name}".strip() if coordinator else None,
    )


def _weeks_since(start: date) -> int:
    return max(0, (today_utc() - start).days // 7)
