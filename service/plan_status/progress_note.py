"""What the plan's progress note says in the EHR's chart: the status, the phase, the course so far, how the primary
measure is going, and every reason (urgent first), as paragraphs. Pure: the note's FHIR shape is
fhir_mappings/progress_note.py's.

The note says only what the enrollment's CarePlan, Goal and Flags carry (the status and reason codes, the course
counts, the goal's achievement, each urgent finding's own words), so the EHR's copy, updated when those change, never
lags behind a change they do not show; nothing in it moves with the clock alone. A warning is named by its reason's
label, not its message (whose dates and counts no resource carries); an urgent finding in its own words.
"""

from __future__ import annotations

from collections.abc import Mapping

from .status import InstrumentOutcome, PlanStatus, Reason

STATUS_WORDS = {
    "at_risk": "At risk",
    "needs_attention": "Needs attention",
    "on_track": "On track",
    "on_hold": "On hold",
    "completed": "Completed",
    "discontinued": "Discontinued",
}
_SEVERITY_WORDS = {"urgent": "Urgent", "warning": "Needs attention", "info": "Note"}
_SEVERITY_ORDER = {"urgent": 0, "warning": 1, "info": 2}


def progress_note_lines(status: PlanStatus, reason_words: Mapping[str, str]) -> list[str]:
    """The note's paragraphs, the headline first; reason_words: each reason code's label."""
    held, state = "", status.enrollment_status
    if state is not None and state != "active" and state.replace("-", "_") != status.status:
        held = f" (enrolment {state.replace('-', ' ')})"
    lines = [f"Plan status: {STATUS_WORDS[status.status]}{held}. Phase: {status.phase}.", _course(status)]
    if status.outcomes and (primary := status.outcomes[0]).latest is not None:
        lines.append(f"{primary.title}: {_how_it_goes(primary)}.")
    open_reasons = sorted(status.open_reasons, key=lambda r: _SEVERITY_ORDER[r.severity])
    lines += [f"{_SEVERITY_WORDS[r.severity]}: {_words(r, reason_words)}" for r in open_reasons]
    if not open_reasons:
        lines.append("No open findings.")
    # A closed urgent finding's message says who closed it and when.
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


def _how_it_goes(primary: InstrumentOutcome) -> str:
    """The goal's achievement (the CarePlan's Goal carries the same judgement), in words."""
    if primary.in_remission:
        return "in remission"
    if primary.worsening:
        return "worsening"
    return "responding (50 % below baseline or better)" if primary.in_response else "not yet responding"


def _words(reason: Reason, reason_words: Mapping[str, str]) -> str:
    return reason.message if reason.severity == "urgent" else reason_words.get(reason.code, reason.code)
