"""Durability of response: Kaplan-Meier curves of time from first response to relapse, by CBT adherence group.

Adherence is the share of the CBT sessions planned in the first 8 weeks of treatment that were attended
(course.py). Groups are split at a fixed threshold (`TANDEM_OUTCOMES_CBT_ADHERENT_SHARE`, default 0.75: six of the
eight weekly sessions of the built-in protocols), not at tertiles: tertiles move with every new patient and would
make three groups of a small programme, each more often suppressed; a fixed line means the same thing from one
period to the next.

Shown: a group's curve only when the group has at least min_cell patients, and only up to the last time at which at
least min_cell patients were still at risk (a step on fewer would tell about one or two people); the numbers at
risk every 4 weeks, suppressed under min_cell; the log-rank test between the two groups when both are shown.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from .course import PatientOutcome
from .suppression import Cell, cell, partition
from .survival import Observation, kaplan_meier, log_rank

GROUPS: dict[str, str] = {
    "adherent": "CBT adherent",
    "less_adherent": "Less CBT adherent",
}
AT_RISK_EVERY_DAYS = 28


class CurvePoint(BaseModel):
    day: float
    survival: float = Field(description="Share still free of relapse, 0-1")
    lower: float
    upper: float


class AtRisk(BaseModel):
    day: int
    patients: Cell


class GroupCurve(BaseModel):
    group: str
    label: str
    patients: Cell
    relapsed: Cell
    censored: Cell
    median_days: float | None = Field(description="Days to the estimate's first fall to one half or below")
    suppressed: bool
    curve: list[CurvePoint]
    at_risk: list[AtRisk]


class LogRankResult(BaseModel):
    chi_square: float
    p_value: float


class DurabilityReport(BaseModel):
    adherence_definition: str
    adherent_share: float
    responders: Cell
    no_cbt_planned: Cell
    groups: list[GroupCurve]
    log_rank: LogRankResult | None


def observations(patients: Sequence[PatientOutcome], group: str) -> list[Observation]:
    return [
        Observation(p.durability.days, p.durability.relapsed)
        for p in patients
        if p.durability is not None and p.adherence_group == group
    ]


def durability(patients: Sequence[PatientOutcome], min_cell: int, adherent_share: float) -> DurabilityReport:
    responders = [p for p in patients if p.durability is not None]
    groups = [_group(key, observations(responders, key), min_cell) for key in GROUPS]
    shown = all(not g.suppressed for g in groups)
    test = log_rank(observations(responders, "adherent"), observations(responders, "less_adherent")) if shown else None
    return DurabilityReport(
        adherence_definition=(
            f"share of the CBT sessions planned in the first 8 weeks of treatment that were attended; adherent: "
            f"at least {adherent_share:.0%}"
        ),
        adherent_share=adherent_share,
        responders=cell(len(responders), min_cell),
        no_cbt_planned=cell(sum(1 for p in responders if p.adherence_group == "no_cbt_planned"), min_cell),
        groups=groups,
        log_rank=LogRankResult(chi_square=test.chi_square, p_value=test.p_value) if test is not None else None,
    )


def _group(key: str, obs: list[Observation], min_cell: int) -> GroupCurve:
    relapsed = sum(1 for o in obs if o.event)
    total, parts = partition(len(obs), {"relapsed": relapsed, "censored": len(obs) - relapsed}, min_cell)
    if len(obs) < min_cell:
        return GroupCurve(
            group=key,
            label=GROUPS[key],
            patients=total,
            relapsed=parts["relapsed"],
            censored=parts["censored"],
            median_days=None,
            suppressed=True,
            curve=[],
            at_risk=[],
        )
    curve = kaplan_meier(obs)
    shown = [s for s in curve.steps if s.at_risk >= min_cell]
    last_day = max(o.time for o in obs)
    median = curve.median
    return GroupCurve(
        group=key,
        label=GROUPS[key],
        patients=total,
        relapsed=parts["relapsed"],
        censored=parts["censored"],
        median_days=median if median is not None and any(s.time == median for s in shown) else None,
        suppressed=False,
        curve=[CurvePoint(day=s.time, survival=s.survival, lower=s.lower, upper=s.upper) for s in shown],
        at_risk=[
            AtRisk(day=d, patients=cell(curve.at_risk(d), min_cell))
            for d in range(0, int(last_day) + 1, AT_RISK_EVERY_DAYS)
        ],
    )
