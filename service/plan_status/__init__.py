"""Plan status of a combined ketamine/esketamine + CBT enrollment, computed purely from facts and an instant.

Imports only the standard library, pydantic and service.instruments: the database layer builds the
input facts from rows, and the sweep recomputes at each status's next_recompute_at.
"""

from __future__ import annotations

from .engine import compute_plan_status
from .inputs import (
    Acknowledgement,
    AdverseEventFacts,
    AppointmentFacts,
    CbtSessionFacts,
    EnrollmentFacts,
    KetamineSessionFacts,
    MeasurementFacts,
    SafetyFindingFacts,
    VitalSigns,
)
from .protocols import (
    BUILT_IN_PROTOCOLS,
    ESKETAMINE_CBT,
    IV_KETAMINE_CBT,
    Cadence,
    MaintenanceStage,
    MeasurementSchedule,
    Protocol,
    SafetyThresholds,
)
from .status import (
    Count,
    Counts,
    Due,
    InstrumentOutcome,
    LastContact,
    NextDue,
    PlanStatus,
    Reason,
    ScorePoint,
)

__all__ = [
    "BUILT_IN_PROTOCOLS",
    "ESKETAMINE_CBT",
    "IV_KETAMINE_CBT",
    "Acknowledgement",
    "AdverseEventFacts",
    "AppointmentFacts",
    "Cadence",
    "CbtSessionFacts",
    "Count",
    "Counts",
    "Due",
    "EnrollmentFacts",
    "InstrumentOutcome",
    "KetamineSessionFacts",
    "LastContact",
    "MaintenanceStage",
    "MeasurementFacts",
    "MeasurementSchedule",
    "NextDue",
    "PlanStatus",
    "Protocol",
    "Reason",
    "SafetyFindingFacts",
    "SafetyThresholds",
    "ScorePoint",
    "VitalSigns",
    "compute_plan_status",
]
