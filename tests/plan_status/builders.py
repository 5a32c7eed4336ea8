"""Small constructors for plan-status facts, on a day grid: day 0 = Monday 5 Oct 2026, 09:00 UTC."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from service.plan_status import (
    Acknowledgement,
    AdverseEventFacts,
    CbtSessionFacts,
    EnrollmentFacts,
    KetamineSessionFacts,
    MeasurementFacts,
    SafetyFindingFacts,
    VitalSigns,
)
from service.plan_status.inputs import CbtStatus, Drug, SessionStatus

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
ITEM9 = "/44260-8"
SEVERAL_DAYS = "LA6569-3"


def at(day: float, hours: float = 0) -> datetime:
    return T0 + timedelta(days=day, hours=hours)


def enrollment(
    *, protocol_id: str = "iv-ketamine-cbt", version: str = "1", start_day: int = -7, **kw: Any
) -> EnrollmentFacts:
    return EnrollmentFacts(
        id="enr-1",
        patient_id="pat-1",
        protocol_id=protocol_id,
        protocol_version=version,
        start_date=date(2026, 10, 5) + timedelta(days=start_day),
        **kw,
    )


def session(
    n: int,
    day: float,
    *,
    drug: Drug = "ketamine",
    bp: tuple[int, int] = (128, 82),
    post_bp: tuple[int, int] | None = (132, 84),
    sedation: int | None = 4,
    cadss: int | None = 3,
    observation: int | None = None,
    rems_day: float | None = None,
    serious: str | None = None,
    status: SessionStatus = "completed",
) -> KetamineSessionFacts:
    start = at(day)
    vitals = [VitalSigns(taken_at=start - timedelta(minutes=10), systolic=bp[0], diastolic=bp[1], spo2=98)]
    if post_bp is not None:
        vitals.append(VitalSigns(taken_at=start + timedelta(minutes=40), systolic=post_bp[0], diastolic=post_bp[1]))
    if drug == "esketamine" and observation is None:
        observation = 120
    return KetamineSessionFacts(
        id=f"k{n}",
        started_at=start,
        ended_at=start + timedelta(minutes=40),
        status=status,
        drug=drug,
        vital_signs=tuple(vitals),
        sedation_score=sedation,
        dissociation_score=cadss,
        observation_minutes=observation,
        adverse_events=(AdverseEventFacts(description=serious, serious=True),) if serious else (),
        rems_form_submitted_at=at(rems_day) if rems_day is not None else None,
    )


def cbt(n: int, day: float, status: CbtStatus = "attended") -> CbtSessionFacts:
    start = at(day, 5)
    return CbtSessionFacts(
        id=f"c{n}",
        session_number=n,
        planned_start=start,
        status=status,
        actual_start=start if status == "attended" else None,
    )


def phq(
    mid: str, day: float, total: float | None, *, item9: bool = False, hours: float = -1, **kw: Any
) -> MeasurementFacts:
    findings = (
        (SafetyFindingFacts(link_id=ITEM9, code=SEVERAL_DAYS, reason="PHQ-9 item 9 endorsed", value=1),)
        if item9
        else ()
    )
    return MeasurementFacts(
        id=mid,
        instrument=kw.pop("instrument", "phq-9"),
        authored_at=at(day, hours),
        total=total,
        complete=total is not None,
        safety_findings=findings,
        **kw,
    )


def cssrs(mid: str, day: float) -> MeasurementFacts:
    return MeasurementFacts(
        id=mid,
        instrument="c-ssrs-screener",
        authored_at=at(day),
        total=None,
        complete=True,
        safety_findings=(
            SafetyFindingFacts(link_id="/93249-1", code="LA33-6", reason="C-SSRS high risk: suicidal intent (Q4)"),
        ),
    )


def ack(code: str, record_id: str, day: float) -> Acknowledgement:
    return Acknowledgement(flag_code=code, record_id=record_id, acknowledged_at=at(day), by="prac-7", note="called")


@dataclass(frozen=True)
class Records:
    sessions: tuple[KetamineSessionFacts, ...] = ()
    cbt: tuple[CbtSessionFacts, ...] = ()
    measurements: tuple[MeasurementFacts, ...] = ()
    acks: tuple[Acknowledgement, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def without(self, *ids: str) -> Records:
        return replace(
            self,
            sessions=tuple(s for s in self.sessions if s.id not in ids),
            cbt=tuple(s for s in self.cbt if s.id not in ids),
            measurements=tuple(m for m in self.measurements if m.id not in ids),
        )

    def plus(self, *records: Any) -> Records:
        new = self
        for r in records:
            if isinstance(r, KetamineSessionFacts):
                new = replace(new, sessions=(*new.sessions, r))
            elif isinstance(r, CbtSessionFacts):
                new = replace(new, cbt=(*new.cbt, r))
            elif isinstance(r, MeasurementFacts):
                new = replace(new, measurements=(*new.measurements, r))
            else:
                new = replace(new, acks=(*new.acks, r))
        return new

    def replacing(self, *records: Any) -> Records:
        return self.without(*(r.id for r in records)).plus(*records)


IV_DAYS = (0, 3, 7, 10, 14, 17)
# Baseline 20, falling to 9 by the last infusion (55 % reduction: response), then to remission.
IV_PREDOSE: dict[float, float] = {3: 17, 7: 15, 10: 12, 14: 11, 17: 9}
WEEKLY: dict[float, float] = {24: 8, 31: 7, 38: 6, 45: 5, 52: 4, 59: 4, 66: 4, 73: 3, 80: 3, 108: 4, 136: 4}
CBT_DAYS = tuple(2 + 7 * k for k in range(12))  # Wednesdays, days 2..79


def iv_course(scores: dict[float, float] | None = None, *, baseline: float = 20) -> Records:
    values: dict[float, float] = {**IV_PREDOSE, **WEEKLY, **(scores or {})}
    return Records(
        sessions=tuple(session(i + 1, d) for i, d in enumerate(IV_DAYS)),
        cbt=tuple(cbt(i + 1, d) for i, d in enumerate(CBT_DAYS)),
        measurements=(phq("m-base", -3, baseline), *(phq(f"m{d:g}", d, v) for d, v in sorted(values.items()))),
    )


ESK_DAYS = (0, 3, 7, 10, 14, 17, 21, 24, 31, 38, 45, 52, 66, 80)


def esketamine_course() -> Records:
    scores = {3: 18, 7: 16, 10: 14, 14: 12, 17: 11, 21: 10, 24: 9, **WEEKLY}
    return Records(
        sessions=tuple(session(i + 1, d, drug="esketamine", rems_day=d + 1) for i, d in enumerate(ESK_DAYS)),
        cbt=tuple(cbt(i + 1, d) for i, d in enumerate(CBT_DAYS)),
        measurements=(phq("m-base", -3, 20), *(phq(f"m{d:g}", d, v) for d, v in sorted(scores.items()))),
    )
