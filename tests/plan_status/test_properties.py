"""Properties of compute_plan_status over random timelines."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from random import Random
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from service.plan_status import (
    ESKETAMINE_CBT,
    IV_KETAMINE_CBT,
    Acknowledgement,
    CbtSessionFacts,
    EnrollmentFacts,
    KetamineSessionFacts,
    MeasurementFacts,
    PlanStatus,
    Protocol,
    compute_plan_status,
)
from tests.examples_budget import examples

from .builders import T0, ack, at, cbt, cssrs, enrollment, phq, session

T = TypeVar("T")
CODES = ("phq9_item9_positive", "bp_urgent", "oversedation", "relapse", "ketamine_overdue", "baseline_missing")


@dataclass(frozen=True)
class World:
    protocol: Protocol
    enrollment: EnrollmentFacts
    sessions: list[KetamineSessionFacts]
    cbt: list[CbtSessionFacts]
    measurements: list[MeasurementFacts]
    acks: list[Acknowledgement]

    def ids(self) -> set[str]:
        return (
            {self.enrollment.id}
            | {s.id for s in self.sessions}
            | {c.id for c in self.cbt}
            | {m.id for m in self.measurements}
        )

    def shuffled(self, rnd: Random) -> World:
        def mixed(items: list[T]) -> list[T]:
            return rnd.sample(items, len(items))

        return replace(
            self,
            sessions=mixed(self.sessions),
            cbt=mixed(self.cbt),
            measurements=mixed(self.measurements),
            acks=mixed(self.acks),
        )

    def run(self, as_of: datetime) -> PlanStatus:
        return compute_plan_status(
            self.enrollment, self.sessions, self.cbt, self.measurements, self.protocol, self.acks, as_of
        )


days = st.floats(min_value=-20, max_value=120, allow_nan=False).map(lambda d: round(d, 2))


@st.composite
def worlds(draw: st.DrawFn) -> World:
    protocol = draw(st.sampled_from([IV_KETAMINE_CBT, ESKETAMINE_CBT]))
    drug = protocol.drug
    sessions = [
        session(
            i,
            draw(days),
            drug=drug,
            bp=draw(st.sampled_from([(120, 80), (150, 95), (185, 112)])),
            sedation=draw(st.sampled_from([None, 1, 4])),
            observation=draw(st.sampled_from([None, 90, 120])) if drug == "esketamine" else None,
            rems_day=draw(st.one_of(st.none(), days)),
            serious=draw(st.sampled_from([None, "seizure"])),
            status=draw(st.sampled_from(["completed", "completed", "stopped", "not-done"])),
        )
        for i in range(draw(st.integers(0, 16)))
    ]
    cbts = [
        cbt(i, draw(days), draw(st.sampled_from(["attended", "attended", "no-show", "cancelled", "planned"])))
        for i in range(draw(st.integers(0, 14)))
    ]
    measurements = [
        phq(
            f"m{i}",
            draw(days),
            draw(st.one_of(st.none(), st.integers(0, 27).map(float))),
            item9=draw(st.booleans()),
            status=draw(st.sampled_from(["completed", "completed", "entered-in-error"])),
        )
        for i in range(draw(st.integers(0, 16)))
    ]
    measurements += [cssrs(f"cs{i}", draw(days)) for i in range(draw(st.integers(0, 2)))]
    ids = sorted({s.id for s in sessions} | {m.id for m in measurements} | {c.id for c in cbts} | {"enr-1"})
    acks = [
        ack(draw(st.sampled_from(CODES)), draw(st.sampled_from(ids)), draw(days))
        for _ in range(draw(st.integers(0, 4)))
    ]
    status = draw(st.sampled_from(["active", "active", "active", "on-hold", "completed"]))
    return World(
        protocol,
        enrollment(protocol_id=protocol.id, status=status, status_reason="reason" if status == "on-hold" else None),
        sessions,
        cbts,
        measurements,
        acks,
    )


FAST = settings(max_examples=examples(150), deadline=None)


@FAST
@given(worlds(), days, st.randoms(use_true_random=False))
def test_input_order_does_not_matter(world: World, day: float, rnd: Random) -> None:
    assert world.shuffled(rnd).run(at(day)) == world.run(at(day))


@FAST
@given(worlds(), days)
def test_reasons_name_only_input_records(world: World, day: float) -> None:
    result = world.run(at(day))
    ids = world.ids()
    for reason in result.reasons:
        assert reason.occurrence_id in reason.record_ids
        assert set(reason.record_ids) <= ids, reason
        assert "pat-1" not in reason.message


@FAST
@given(worlds())
def test_before_every_record_the_phase_is_baseline(world: World) -> None:
    earliest = min(
        [s.started_at for s in world.sessions]
        + [c.planned_start for c in world.cbt]
        + [m.authored_at for m in world.measurements],
        default=T0,
    )
    result = world.run(earliest - timedelta(seconds=1))
    assert result.phase == "baseline"
    assert all(r.code in {"ketamine_overdue", "baseline_due"} for r in result.reasons)


@FAST
@given(worlds(), days, st.floats(min_value=0, max_value=1))
def test_status_is_constant_until_next_recompute(world: World, day: float, fraction: float) -> None:
    result = world.run(at(day))
    if result.next_recompute_at is None:
        later = at(day) + timedelta(days=400 * fraction)
    else:
        later = at(day) + (result.next_recompute_at - at(day)) * fraction * 0.999
    assert world.run(later).model_copy(update={"as_of": result.as_of}) == result


@FAST
@given(worlds(), days)
def test_status_is_json_round_trippable(world: World, day: float) -> None:
    result = world.run(at(day))
    assert PlanStatus.model_validate_json(result.model_dump_json()) == result


@FAST
@given(worlds(), days)
def test_an_open_urgent_reason_always_means_at_risk(world: World, day: float) -> None:
    """Whatever the enrollment's state (on hold, completed): CLINICAL.md section 4."""
    result = world.run(at(day))
    if any(r.open and r.severity == "urgent" for r in result.reasons):
        assert result.status == "at_risk"
    assert result.enrollment_status == world.enrollment.status
