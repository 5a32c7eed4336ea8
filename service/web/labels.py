"""Words and symbols the coordinator pages show for codes: statuses, phases, flags and what is due."""

from __future__ import annotations

from dataclasses import dataclass

from service.plan_status import wording


@dataclass(frozen=True)
class StatusLook:
    label: str
    icon: str  # a shape as well as a colour: never colour alone
    css: str


STATUS_LOOKS: dict[str, StatusLook] = {
    "at_risk": StatusLook(wording.status_words("at_risk"), "▲", "at-risk"),
    "needs_attention": StatusLook(wording.status_words("needs_attention"), "◆", "needs-attention"),
    "on_track": StatusLook(wording.status_words("on_track"), "●", "on-track"),
    "on_hold": StatusLook(wording.status_words("on_hold"), "‖", "inactive"),
    "completed": StatusLook(wording.status_words("completed"), "✓", "inactive"),
    "discontinued": StatusLook(wording.status_words("discontinued"), "✕", "inactive"),
}
STATUS_ORDER = tuple(STATUS_LOOKS)

PHASE_LABELS: dict[str, str] = wording.PHASE_WORDS

SEVERITY_LOOKS: dict[str, StatusLook] = {
    "urgent": StatusLook("Urgent", "▲", "at-risk"),
    "warning": StatusLook("Warning", "◆", "needs-attention"),
    "info": StatusLook("Note", "\u2139", "info"),
}

FLAG_LABELS: dict[str, str] = {
    "phq9_item9_positive": "PHQ-9 item 9 (self-harm) positive",
    "cssrs_high_risk": "C-SSRS high risk",
    "bp_urgent": "Blood pressure ≥ 180/110",
    "bp_predose_warning": "Pre-dose blood pressure > 140/90",
    "oversedation": "Oversedation (MOAA/S ≤ 2)",
    "serious_adverse_event": "Serious adverse event",
    "esketamine_observation_short": "Observation under 120 min",
    "esketamine_observation_unrecorded": "Observation time not recorded",
    "rems_form_overdue": "REMS form overdue",
    "dissociation_high": "High dissociation (CADSS)",
    "instrument_alert": "Questionnaire alert",
    "ketamine_overdue": "Ketamine session overdue",
    "cbt_not_started": "CBT not started",
    "cbt_overdue": "CBT session overdue",
    "cbt_no_show_streak": "Two CBT no-shows in a row",
    "measurement_overdue": "Measurement overdue",
    "baseline_missing": "Baseline missing",
    "baseline_too_old": "Baseline too old",
    "baseline_due": "Baseline due",
    "induction_window_exceeded": "Induction running late",
    "predose_measurement_missing": "Pre-dose measurement missing",
    "non_response": "No response after induction",
    "worsening": "Worsening",
    "relapse": "Relapse",
    "protocol_version_differs": "Protocol version differs",
}

DUE_LABELS: dict[str, str] = wording.DUE_WORDS


ENROLLMENT_NOTES: dict[str, str] = {
    "on-hold": "enrolment on hold",
    "completed": "enrolment completed",
    "discontinued": "enrolment discontinued",
}


def enrollment_note(status: str, enrollment_status: str | None) -> str | None:
    """Said beside an at-risk status whose enrollment is not active: the urgent finding outranks the state, and
    the coordinator must still see that the patient is on hold (CLINICAL.md section 4)."""
    return ENROLLMENT_NOTES.get(enrollment_status or "") if status == "at_risk" else None


def status_look(code: str) -> StatusLook:
    return STATUS_LOOKS.get(code, StatusLook(wording.status_words(code), "■", "inactive"))


def flag_label(code: str) -> str:
    return FLAG_LABELS.get(code, code.replace("_", " ").capitalize())


def phase_label(code: str) -> str:
    return wording.phase_words(code)


def due_label(code: str | None) -> str:
    if code is None:
        return ""
    return wording.due_words(code)
