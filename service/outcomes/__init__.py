"""Programme outcomes (issue #23): response, remission and durability of response by CBT adherence, measurement
completeness, safety events and REMS timeliness, for a population, with small-cell suppression.

Pure: it reads the plan-status engine's facts and rules (service.plan_status) and nothing of the database or the
web; service/outcome_reports/ loads the facts and audits the read.
"""

from __future__ import annotations

from .course import Course, PatientOutcome, patient_outcome
from .report import Filters, OutcomesReport, build_report

__all__ = ["Course", "Filters", "OutcomesReport", "PatientOutcome", "build_report", "patient_outcome"]
