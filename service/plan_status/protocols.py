"""Treatment protocols as data: every number the engine uses comes from here, so a tenant can change it.

A protocol is validated when built; a bad one is refused with the reason, never half-applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PositiveDays = Annotated[float, Field(gt=0, le=365)]
CbtStartRule = Literal["with_induction", "after_response"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cadence(_Model):
    sessions_per_week: Annotated[float, Field(gt=0, le=7)]
    min_days_between: Annotated[float, Field(ge=0, le=365)]
    max_days_between: PositiveDays

    @model_validator(mode="after")
    def _ordered(self) -> Cadence:
        if self.min_days_between > self.max_days_between:
            raise ValueError(
                f"min_days_between {self.min_days_between:g} exceeds max_days_between {self.max_days_between:g}"
            )
        return self


class MaintenanceStage(_Model):
    """Cadence that applies from a week of treatment (week 1 = the week of the first session) onwards."""

    from_week: Annotated[int, Field(ge=1, le=520)]
    cadence: Cadence


class MeasurementSchedule(_Model):
    baseline_max_age_days: PositiveDays = 14  # CLINICAL.md section 3/4: baseline <= 14 days before first session
    before_each_induction_session: bool = True
    # A pre-dose questionnaire filled in at the clinic just after the session began still counts.
    predose_tolerance_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 60
    during_cbt_every_days: PositiveDays = 7  # CLINICAL.md section 3: weekly during CBT
    maintenance_every_days: PositiveDays = 28  # CLINICAL.md section 3: every 4 weeks in maintenance


class SafetyThresholds(_Model):
    # CLINICAL.md section 4: BP >= 180/110 at any session is urgent; pre-dose > 140/90 is a warning.
    # The Spravato label (section 5.5) likewise advises against dosing above 140/90 pre-dose.
    bp_urgent_systolic: Annotated[int, Field(ge=100, le=300)] = 180
    bp_urgent_diastolic: Annotated[int, Field(ge=60, le=200)] = 110
    bp_predose_systolic: Annotated[int, Field(ge=90, le=300)] = 140
    bp_predose_diastolic: Annotated[int, Field(ge=50, le=200)] = 90
    # MOAA/S <= 2 = deep sedation (CLINICAL.md section 2 and 4).
    max_sedation_score: Annotated[int, Field(ge=0, le=5)] = 2
    # CADSS has no validated cut-off (CLINICAL.md section 2); default matches the CADSS instrument alert (> 4).
    # None switches the dissociation note off.
    dissociation_above: Annotated[int, Field(ge=0, le=92)] | None = 4
    # Spravato label (section 2.4, REMS): observe at least 2 hours after dosing.
    esketamine_min_observation_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 120
    # Data entry lags the session; only after this long is an unrecorded observation time flagged.
    observation_record_grace_hours: Annotated[float, Field(ge=0, le=24 * 14)] = 24
    # Spravato REMS: the patient monitoring form is due within 7 days of each session.
    rems_form_days: PositiveDays = 7

    @model_validator(mode="after")
    def _urgent_above_warning(self) -> SafetyThresholds:
        if self.bp_urgent_systolic <= self.bp_predose_systolic:
            raise ValueError("bp_urgent_systolic must be above bp_predose_systolic")
        if self.bp_urgent_diastolic <= self.bp_predose_diastolic:
            raise ValueError("bp_urgent_diastolic must be above bp_predose_diastolic")
        return self


class Protocol(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    version: Annotated[str, Field(min_length=1, max_length=32)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    drug: Literal["ketamine", "esketamine"]
    induction_sessions: Annotated[int, Field(ge=1, le=100)]
    induction_cadence: Cadence
    induction_window_days: PositiveDays
    # Adherence clock for the very first session, counted from the enrollment start date.
    first_session_within_days: PositiveDays = 14
    # Empty = boosters "as prescribed": no maintenance cadence to be overdue against.
    maintenance_stages: tuple[MaintenanceStage, ...] = ()
    cbt_sessions: Annotated[int, Field(ge=1, le=200)]
    cbt_cadence_days: PositiveDays = 7
    cbt_start_rule: CbtStartRule = "with_induction"
    cbt_start_within_days: PositiveDays = 7
    cbt_no_show_streak: Annotated[int, Field(ge=1, le=20)] = 2  # CLINICAL.md section 4: two consecutive
    measurements: MeasurementSchedule = MeasurementSchedule()
    safety: SafetyThresholds = SafetyThresholds()
    grace_days: Annotated[float, Field(ge=0, le=60)] = 3  # CLINICAL.md section 4 default grace period
    relapse_min_days_apart: Annotated[float, Field(ge=0, le=365)] = 5  # CLINICAL.md section 4
    # Used when the instrument defines no response rule of its own (CLINICAL.md: >= 50 % reduction).
    default_response_reduction: Annotated[float, Field(gt=0, le=1)] = 0.5

    @model_validator(mode="after")
    def _coherent(self) -> Protocol:
        span = (self.induction_sessions - 1) * self.induction_cadence.min_days_between
        if span > self.induction_window_days:
            raise ValueError(
                f"{self.induction_sessions} induction sessions at least "
                f"{self.induction_cadence.min_days_between:g} days apart cannot fit in "
                f"{self.induction_window_days:g} days"
            )
        weeks = [stage.from_week for stage in self.maintenance_stages]
        if weeks != sorted(set(weeks)):
            raise ValueError("maintenance_stages must have strictly increasing from_week")
        return self

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.version)


# Wilkinson et al. 2017, Psychother Psychosom 86:162 (4 infusions then CBT) and the 2021 RCT NCT03027362;
# CLINICAL.md section 3 sets the default to 6 infusions of 0.5 mg/kg, twice weekly, within 3 weeks,
# with 12 weekly CBT sessions starting with the induction.
IV_KETAMINE_CBT = Protocol(
    id="iv-ketamine-cbt",
    version="1",
    title="IV ketamine + CBT",
    drug="ketamine",
    induction_sessions=6,
    # Twice weekly: typically Mon/Thu, so 3-4 days apart; never two infusions on consecutive days.
    induction_cadence=Cadence(sessions_per_week=2, min_days_between=2, max_days_between=4),
    induction_window_days=21,
    cbt_sessions=12,
    cbt_cadence_days=7,
)

# FDA Spravato (esketamine) label, section 2: induction weeks 1-4 twice weekly; maintenance weeks 5-8
# weekly; week 9 on every 2 weeks or weekly (the longer interval is the overdue limit). Section 2.4 / 5.1
# and the Spravato REMS: >= 2 h observation, blood pressure before and about 40 min after dosing,
# patient monitoring form within 7 days.
ESKETAMINE_CBT = Protocol(
    id="esketamine-cbt",
    version="1",
    title="Esketamine (Spravato) + CBT",
    drug="esketamine",
    induction_sessions=8,
    induction_cadence=Cadence(sessions_per_week=2, min_days_between=2, max_days_between=4),
    induction_window_days=28,
    maintenance_stages=(
        MaintenanceStage(from_week=5, cadence=Cadence(sessions_per_week=1, min_days_between=5, max_days_between=7)),
        MaintenanceStage(from_week=9, cadence=Cadence(sessions_per_week=0.5, min_days_between=5, max_days_between=14)),
    ),
    cbt_sessions=12,
    cbt_cadence_days=7,
)

BUILT_IN_PROTOCOLS: Mapping[tuple[str, str], Protocol] = MappingProxyType(
    {p.key: p for p in (IV_KETAMINE_CBT, ESKETAMINE_CBT)}
)
