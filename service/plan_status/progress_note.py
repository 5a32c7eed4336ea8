"""What the plan's progress note says in the EHR's chart: the status, the phase, the course so far, the primary
outcome and every reason in the engine's own words (urgent first), as paragraphs. Pure: the note's FHIR shape is
fhir_mappings/progress_note.py's."""

from __future__ import annotations

from .status import PlanStatus, Reason
from .wording import number

STATUS_WORDS = {
    "at_risk": "At risk",
    "needs_attention": "Needs attention",
    "on_track": "On track",
    "on_hold": "On hold",
    "completed": "Completed",
    "discontinued": "Discontinued",
}
_SEVERITY_ORDER = {"urgent": 0, "warning": 1, "info": 2}


def progress_note_lines(status: PlanStatus) -> list[str]:
    """The note's paragraphs, the headline first. Nothing in it moves with the clock alone (no "as of", no weeks in
    the programme): the EHR's copy is updated when the CarePlan, its Goal or its Flags change, and then it says
    what Tandem says (the reasons' own words carry the hospital's dates)."""
    held, state = "", status.enrollment_status
    if state is not None and state != "active" and state.replace("-", "_") != status.status:
        held = f" (enrolment {state.replace('-', ' ')})"
    lines = [
        f"Plan status: {STATUS_WORDS[status.status]}{held}. Phase: {status.phase}.",
        _course(status),
    ]
    if status.outcomes and (primary := status.outcomes[0]).latest is not None:
        change = f" ({number(round(primary.change_percent))} %)" if primary.change_percent is not None else ""
        baseline = f"baseline {number(primary.baseline.total)}, " if primary.baseline is not None else ""
        lines.append(f"{primary.title}: {baseline}latest {number(primary.latest.total)}{change}.")
    open_reasons = sorted(status.open_reasons, key=lambda r: _SEVERITY_ORDER[r.severity])
    lines += [f"{_severity(r)}: {r.message}" for r in open_reasons] or ["No open findings."]
    # A closed reason's message says who closed it and when.
    lines += [r.message for r in status.reasons if not r.open and r.severity == "urgent"]
    lines.append("Written by Tandem from the programme's records; updated when the plan status changes.")
    return lines


def _course(status: PlanStatus) -> str:
    counts = status.counts
    induction = counts.ketamine_induction
    after = f", {counts.ketamine_after_induction} after induction" if counts.ketamine_after_induction else ""
    return (
        f"Course: {induction.done} of {induction.expected} induction sessions{after}; "
        f"{counts.cbt.done} of {counts.cbt.expected} CBT sessions; "
        f"{counts.measurements.done} of {counts.measurements.expected} measurements."
    )


def _severity(reason: Reason) -> str:
    return {"urgent": "Urgent", "warning": "Needs attention", "info": "Note"}[reason.severity]
