"""Checking the outcome filters (problem+json on a bad one) and loading the courses they select."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from service.audit_trail import RequestContext
from service.break_glass.access import hidden_patients
from service.caseload.facts import (
    PatientFacts,
    acknowledgement_facts,
    administration_facts,
    appointment_facts,
    belongs,
    cbt_facts,
    counts,
    enrollment_facts,
    measurement_facts,
    sent_readings,
    session_times,
)
from service.caseload.protocols import available_protocols, find_protocol
from service.caseload.recompute import load_facts_of
from service.clock import now_utc
from service.errors import FieldProblem, InvalidRequest
from service.outcomes import Course, Filters
from service.plan_status import Protocol
from service.records.cbt import CbtSession
from service.records.enrollment import Enrollment
from service.records.practitioner import Practitioner
from service.records.tenant import Tenant

MAX_PERIOD = timedelta(days=3660)  # ten years


@dataclass(frozen=True)
class Selection:
    filters: Filters
    as_of: datetime
    tz: tzinfo
    courses: list[Course]
    patient_ids: list[str]


def check_filters(
    session: Session,
    ctx: RequestContext,
    *,
    period_start: date | None,
    period_end: date | None,
    protocol: str | None,
    site: str | None,
    therapist: str | None,
    today: date,
) -> Filters:
    """The filters, or InvalidRequest naming each bad one: a period that ends before it starts or spans more than
    ten years; a protocol, therapist or site this hospital does not have. Tandem holds one site per tenant, so a
    site is the tenant's own id."""
    end = period_end or today
    start = period_start or end - timedelta(days=365)
    problems = []
    if start > end:
        problems.append(("query.period_start", f"the period starts ({start}) after it ends ({end})"))
    elif end - start > MAX_PERIOD:
        problems.append(("query.period_end", "a period spans at most ten years"))
    if protocol is not None and protocol not in {p.id for p in available_protocols(session, ctx.tenant_id)}:
        problems.append(("query.protocol", f"{protocol!r} is not a protocol of this hospital"))
    if site is not None and site != ctx.tenant_id:
        problems.append(
            ("query.site", f"{site!r} is not this hospital's site (each site is a tenant: {ctx.tenant_id})")
        )
    if (
        therapist is not None
        and session.exec(
            select(Practitioner.id).where(
                col(Practitioner.tenant_id) == ctx.tenant_id, col(Practitioner.id) == therapist
            )
        ).first()
        is None
    ):
        problems.append(("query.therapist", f"{therapist!r} is not a practitioner of this hospital"))
    if problems:
        raise InvalidRequest([FieldProblem(where, message) for where, message in problems])
    return Filters(period_start=start, period_end=end, protocol=protocol, site=site, therapist=therapist)


def select_courses(session: Session, ctx: RequestContext, filters: Filters) -> Selection:
    """The enrolments that started in the period (and match the filters), each with its facts; restricted patients
    this caller may not see are left out, as from the caseload. Facts dated after the period are not read."""
    tenant = session.get(Tenant, ctx.tenant_id)
    tz: tzinfo = ZoneInfo(tenant.time_zone) if tenant is not None else UTC
    as_of = min(now_utc(), datetime.combine(filters.period_end, time(23, 59, 59), tzinfo=tz))
    query = select(Enrollment).where(
        col(Enrollment.tenant_id) == ctx.tenant_id,
        col(Enrollment.start_date) >= filters.period_start,
        col(Enrollment.start_date) <= filters.period_end,
    )
    if filters.protocol is not None:
        query = query.where(col(Enrollment.protocol_id) == filters.protocol)
    enrollments = list(session.exec(query.order_by(col(Enrollment.id))))
    hidden = hidden_patients(session, ctx)
    enrollments = [e for e in enrollments if e.patient_id not in hidden]
    if filters.therapist is not None:
        seen = set(
            session.exec(
                select(CbtSession.patient_id).where(
                    col(CbtSession.tenant_id) == ctx.tenant_id, col(CbtSession.therapist_id) == filters.therapist
                )
            )
        )
        enrollments = [e for e in enrollments if e.patient_id in seen]
    patient_ids = sorted({e.patient_id for e in enrollments})
    facts = load_facts_of(session, ctx.tenant_id, patient_ids) if patient_ids else {}
    found: dict[tuple[str, str | None], Protocol | None] = {}
    courses = []
    for enrollment in enrollments:
        key = (enrollment.protocol_id, enrollment.protocol_version)
        if key not in found:
            found[key] = find_protocol(session, ctx.tenant_id, *key)
        protocol = found[key]
        if protocol is None:
            continue  # a protocol no longer available: the plan status cannot be computed either
        courses.append(_course(facts[enrollment.patient_id], enrollment, protocol))
    return Selection(filters, as_of, tz, courses, patient_ids)


def _course(facts: PatientFacts, enrollment: Enrollment, protocol: Protocol) -> Course:
    given = [r for r in facts.administrations if counts(r, enrollment)]
    sent, sessions = sent_readings(facts.vital_signs), [session_times(r) for r in given]
    return Course(
        enrollment=enrollment_facts(enrollment, protocol.version),
        protocol=protocol,
        administrations=[administration_facts(r, sent, sessions) for r in given],
        cbt_sessions=[cbt_facts(r) for r in facts.cbt_sessions if counts(r, enrollment)],
        measurements=[measurement_facts(r) for r in facts.responses if belongs(r.enrollment_id, enrollment)],
        appointments=[appointment_facts(r) for r in facts.appointments if counts(r, enrollment)],
        acknowledgements=[acknowledgement_facts(a) for a in facts.acknowledgements if a.enrollment_id == enrollment.id],
        end_date=enrollment.end_date,
    )
