"""Patient timelines as data, each with what a coordinator should see at several instants.

`open` is the exact set of open urgent/warning reason codes; `closed` the acknowledged ones; `notes`
info codes that must be present (others may be). Days count from Monday 5 Oct 2026 09:00 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.plan_status import ESKETAMINE_CBT, IV_KETAMINE_CBT, Protocol

from .builders import (
    CBT_DAYS,
    Records,
    ack,
    cbt,
    cssrs,
    esketamine_course,
    iv_course,
    phq,
    session,
)


@dataclass(frozen=True)
class Check:
    day: float
    status: str
    phase: str
    open: frozenset[str] = frozenset()
    closed: frozenset[str] = frozenset()
    notes: frozenset[str] = frozenset()
    outcome: dict[str, Any] = field(default_factory=dict)  # expected primary-instrument outcome fields


def check(day: float, status: str, phase: str, *open_codes: str, **kw: Any) -> Check:
    closed = frozenset(kw.pop("closed", ()))
    notes = frozenset(kw.pop("notes", ()))
    return Check(day, status, phase, frozenset(open_codes), closed, notes, kw)


@dataclass(frozen=True)
class Scenario:
    name: str
    records: Records
    checks: tuple[Check, ...]
    protocol: Protocol = IV_KETAMINE_CBT
    enrollment: dict[str, Any] = field(default_factory=dict)


IV_V2 = Protocol(
    **{**IV_KETAMINE_CBT.model_dump(), "version": "2", "induction_sessions": 8, "induction_window_days": 28}
)
AFTER_RESPONSE = Protocol(
    **{**IV_KETAMINE_CBT.model_dump(), "id": "iv-ketamine-then-cbt", "cbt_start_rule": "after_response"}
)

COURSE = iv_course()
NO_CBT = Records(sessions=COURSE.sessions, measurements=COURSE.measurements)
ESK = esketamine_course()
FLAT = iv_course({3: 19, 7: 18, 10: 18, 14: 17, 17: 17, 24: 16, 31: 16})

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "on-track course from baseline to maintenance",
        COURSE,
        (
            check(-6, "on_track", "baseline", notes={"baseline_due"}),
            check(-2, "on_track", "baseline"),
            check(1, "on_track", "induction", change_percent=None),
            check(12, "on_track", "induction", change_percent=-40.0, in_response=False),
            check(18, "on_track", "consolidation", in_response=True, change_percent=-55.0),
            check(50, "on_track", "consolidation", in_remission=False),
            check(85, "on_track", "maintenance", in_remission=True),
            check(140, "on_track", "maintenance"),
        ),
    ),
    Scenario(
        "missed infusion after the second",
        COURSE.without("k3", "k4", "k5", "k6", "m7", "m10", "m14", "m17", "m24", "m31"),
        (
            check(9.9, "on_track", "induction"),
            check(10.5, "needs_attention", "induction", "ketamine_overdue"),
            check(14.5, "needs_attention", "induction", "ketamine_overdue", "measurement_overdue"),
            check(
                24.5,
                "needs_attention",
                "induction",
                "ketamine_overdue",
                "measurement_overdue",
                "induction_window_exceeded",
            ),
        ),
    ),
    Scenario(
        "CBT not started a week after the first infusion",
        NO_CBT,
        (
            check(7, "on_track", "induction"),
            check(10.5, "needs_attention", "induction", "cbt_not_started"),
            check(18, "needs_attention", "consolidation", "cbt_not_started"),
        ),
    ),
    Scenario(
        "two CBT no-shows in a row",
        COURSE.replacing(cbt(2, 9, "no-show"), cbt(3, 16, "cancelled")),
        (
            check(10, "on_track", "induction"),
            check(16.5, "needs_attention", "induction", "cbt_no_show_streak", "cbt_overdue"),
            check(23.5, "on_track", "consolidation"),
        ),
    ),
    Scenario(
        "no-show streak acknowledged, then a third no-show opens a new one",
        COURSE.replacing(cbt(2, 9, "no-show"), cbt(3, 16, "no-show"), cbt(4, 23, "no-show")).plus(
            ack("cbt_no_show_streak", "c3", 16.5), ack("cbt_overdue", "c1", 16.5)
        ),
        (
            check(16.8, "on_track", "induction", closed={"cbt_no_show_streak", "cbt_overdue"}),
            # The acknowledged streak (ending c3) is superseded by the new one ending c4.
            check(23.5, "needs_attention", "consolidation", "cbt_no_show_streak", closed={"cbt_overdue"}),
        ),
    ),
    Scenario(
        "response then remission",
        iv_course({10: 9, 14: 6, 17: 4}),
        (
            check(9, "on_track", "induction", in_response=False, responded_at=None),
            check(11, "on_track", "induction", in_response=True, in_remission=False),
            check(18, "on_track", "consolidation", in_response=True, in_remission=True, change_percent=-80.0),
        ),
    ),
    Scenario(
        "non-response after induction",
        FLAT,
        (
            check(18, "on_track", "consolidation", non_response=None),
            check(25, "needs_attention", "consolidation", "non_response", non_response=True),
        ),
    ),
    Scenario(
        "late response overrides non-response",
        iv_course({3: 19, 7: 18, 10: 18, 14: 17, 17: 17, 24: 16, 31: 9}),
        (
            check(25, "needs_attention", "consolidation", "non_response"),
            check(32, "on_track", "consolidation", non_response=False, in_response=True),
        ),
    ),
    Scenario(
        "worsening between two scores",
        iv_course({7: 12, 10: 18}),
        (
            check(8, "on_track", "induction"),
            check(10.5, "needs_attention", "induction", "worsening", worsening=True),
            check(14.5, "on_track", "induction", worsening=False),
        ),
    ),
    Scenario(
        "relapse after response, acknowledged, then response regained",
        iv_course({10: 9, 14: 8, 17: 7, 24: 11, 31: 13, 38: 8}).plus(ack("relapse", "m31", 33)),
        (
            check(25, "on_track", "consolidation", in_response=False),
            check(32, "at_risk", "consolidation", "relapse", relapse=True),
            check(34, "at_risk", "consolidation", closed={"relapse"}, relapse=True),
            check(39, "on_track", "consolidation", closed={"relapse"}, relapse=False),
        ),
    ),
    Scenario(
        "PHQ-9 item 9 positive, acknowledged, positive again",
        COURSE.replacing(phq("m3", 3, 17, item9=True), phq("m7", 7, 15, item9=True)).plus(
            ack("phq9_item9_positive", "m3", 4)
        ),
        (
            check(3.5, "at_risk", "induction", "phq9_item9_positive"),
            check(5, "on_track", "induction", closed={"phq9_item9_positive"}),
            check(7.5, "at_risk", "induction", "phq9_item9_positive", closed={"phq9_item9_positive"}),
        ),
    ),
    Scenario(
        "C-SSRS high risk",
        COURSE.plus(cssrs("cs1", 5)),
        (check(4, "on_track", "induction"), check(5.5, "at_risk", "induction", "cssrs_high_risk")),
    ),
    Scenario(
        "blood pressure 185/112 at a session stays open until acknowledged",
        COURSE.replacing(session(3, 7, bp=(185, 112))).plus(ack("bp_urgent", "k3", 11)),
        (
            check(7.5, "at_risk", "induction", "bp_urgent"),
            check(10.5, "at_risk", "induction", "bp_urgent"),
            check(11.5, "on_track", "induction", closed={"bp_urgent"}),
        ),
    ),
    Scenario(
        "pre-dose blood pressure 150/95 is a warning superseded by the next session",
        COURSE.replacing(session(3, 7, bp=(150, 95))),
        (check(7.5, "needs_attention", "induction", "bp_predose_warning"), check(10.5, "on_track", "induction")),
    ),
    Scenario(
        "deep sedation and a serious adverse event",
        COURSE.replacing(session(2, 3, sedation=1), session(4, 10, serious="laryngospasm")),
        (
            check(3.5, "at_risk", "induction", "oversedation"),
            check(10.5, "at_risk", "induction", "oversedation", "serious_adverse_event"),
        ),
    ),
    Scenario(
        "esketamine course on track into maintenance",
        ESK,
        (
            check(1, "on_track", "induction"),
            check(25, "on_track", "consolidation"),
            check(60, "on_track", "consolidation"),
            check(90, "on_track", "maintenance"),
        ),
        protocol=ESKETAMINE_CBT,
        enrollment={"protocol_id": "esketamine-cbt"},
    ),
    Scenario(
        "esketamine observed only 90 minutes",
        ESK.replacing(session(3, 7, drug="esketamine", observation=90, rems_day=8)),
        (check(6, "on_track", "induction"), check(7.5, "at_risk", "induction", "esketamine_observation_short")),
        protocol=ESKETAMINE_CBT,
        enrollment={"protocol_id": "esketamine-cbt"},
    ),
    Scenario(
        "esketamine REMS form overdue, then submitted late",
        ESK.replacing(session(2, 3, drug="esketamine", rems_day=12)),
        (
            check(9.9, "on_track", "induction"),
            check(10.1, "needs_attention", "induction", "rems_form_overdue"),
            check(12.5, "on_track", "induction"),
        ),
        protocol=ESKETAMINE_CBT,
        enrollment={"protocol_id": "esketamine-cbt"},
    ),
    Scenario(
        "esketamine maintenance session overdue in weeks 5-8",
        ESK.without("k11", "k12", "k13", "k14"),
        (
            check(47.9, "on_track", "consolidation"),
            check(48.5, "needs_attention", "consolidation", "ketamine_overdue"),
        ),
        protocol=ESKETAMINE_CBT,
        enrollment={"protocol_id": "esketamine-cbt"},
    ),
    Scenario(
        "baseline missing",
        COURSE.without("m-base"),
        (
            check(-2, "on_track", "baseline", notes={"baseline_due"}),
            check(1, "needs_attention", "induction", "baseline_missing"),
        ),
    ),
    Scenario(
        "baseline too old",
        COURSE.replacing(phq("m-base", -20, 20)),
        (check(1, "needs_attention", "induction", "baseline_too_old", baseline=None),),
    ),
    Scenario(
        "baseline missing acknowledged",
        COURSE.without("m-base").plus(ack("baseline_missing", "k1", 1)),
        (check(2, "on_track", "induction", closed={"baseline_missing"}),),
    ),
    Scenario(
        "first infusion never given",
        Records(measurements=(phq("m-base", -3, 20),)),
        (check(5, "on_track", "baseline"), check(10.5, "needs_attention", "baseline", "ketamine_overdue")),
    ),
    Scenario(
        # An open urgent finding outranks the enrollment's state (CLINICAL.md section 4, since issue #21).
        "discontinued with a missed infusion and an unacknowledged item 9: still at risk",
        COURSE.without("k3", "k4", "k5", "k6")
        .replacing(phq("m3", 3, 17, item9=True))
        .plus(ack("phq9_item9_positive", "m3", 21)),
        (
            check(20, "at_risk", "induction", "phq9_item9_positive"),
            check(22, "discontinued", "induction", closed=("phq9_item9_positive",)),
        ),
        enrollment={"status": "discontinued", "status_reason": "moved away"},
    ),
    Scenario(
        "on hold",
        COURSE.without("k4", "k5", "k6"),
        (check(20, "on_hold", "induction"),),
        enrollment={"status": "on-hold", "status_reason": "surgery"},
    ),
    Scenario(
        "completed",
        COURSE,
        (check(140, "completed", "maintenance"),),
        enrollment={"status": "completed"},
    ),
    Scenario(
        "protocol version 2 (8 infusions) applied to the whole course",
        COURSE.plus(session(7, 21), session(8, 24)),
        (check(18, "on_track", "induction"), check(25, "on_track", "consolidation")),
        protocol=IV_V2,
        enrollment={"version": "2"},
    ),
    Scenario(
        "protocol given differs from the enrollment's version",
        COURSE,
        (check(18, "on_track", "consolidation", notes={"protocol_version_differs"}),),
        enrollment={"version": "2"},
    ),
    Scenario(
        "CBT after response: not expected until response",
        NO_CBT,
        (
            check(12, "on_track", "induction"),
            check(27.5, "needs_attention", "consolidation", "cbt_not_started"),
        ),
        protocol=AFTER_RESPONSE,
        enrollment={"protocol_id": "iv-ketamine-then-cbt"},
    ),
    Scenario(
        "weekly measurement overdue during CBT",
        COURSE.without("m31", "m38"),
        (
            check(30, "on_track", "consolidation"),
            check(34.5, "needs_attention", "consolidation", "measurement_overdue"),
        ),
    ),
    Scenario(
        "back-dated score arriving late: only later as_of changes",
        COURSE.replacing(phq("m31", 31, 16, hours=-1)),
        (check(30, "on_track", "consolidation"), check(31.5, "needs_attention", "consolidation", "worsening")),
    ),
    Scenario(
        "entered-in-error item 9 response is ignored",
        COURSE.plus(phq("m-err", 5, 22, item9=True, status="entered-in-error")),
        (check(6, "on_track", "induction"),),
    ),
    Scenario(
        "CBT completed: maintenance needs a score every 4 weeks",
        COURSE.without("m108", "m136"),
        (check(100, "on_track", "maintenance"), check(111.5, "needs_attention", "maintenance", "measurement_overdue")),
    ),
)

assert len(CBT_DAYS) == 12
