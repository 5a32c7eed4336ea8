"""The card a CDS client shows for one patient: the plan status in the words the patient page uses. Pure.

CDS Hooks 2.0 §Card: `summary` (under 140 characters), `indicator` (`info`, `warning`, `critical`), `detail`
(GitHub-flavoured markdown), `source.label`, `links` (`absolute`, or `smart` for a SMART app launch URL).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Literal

from service.plan_status import PlanStatus
from service.plan_status.status import Due, Reason
from service.plan_status.wording import day, due_words, phase_words, status_words

Indicator = Literal["info", "warning", "critical"]
SOURCE_LABEL = "Tandem"
SUMMARY_MAX = 140
INDICATORS: dict[str, Indicator] = {"at_risk": "critical", "needs_attention": "warning"}
SEVERITY_RANK = {"urgent": 0, "warning": 1}


@dataclass(frozen=True)
class CardLink:
    label: str
    url: str
    type: Literal["absolute", "smart"]
    app_context: str | None = None  # smart links only (CDS Hooks 2.0 §Link)


def indicator(status: PlanStatus) -> Indicator:
    """critical for at risk, warning for needs attention, info for on track (and an enrolment that ended)."""
    return INDICATORS.get(status.status, "info")


def open_reasons_urgent_first(status: PlanStatus) -> list[Reason]:
    return sorted(status.open_reasons, key=lambda r: (SEVERITY_RANK.get(r.severity, 2), r.since))


def summary(status: PlanStatus) -> str:
    """ "Tandem: At risk — Induction phase, PHQ-9 item 9 …": the status and phase, then the first reason."""
    text = f"Ketamine + CBT plan: {status_words(status.status)}, {phase_words(status.phase).lower()} phase"
    reasons = open_reasons_urgent_first(status)
    if reasons:
        text += f" — {_what(reasons[0])}"
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def detail(status: PlanStatus, zone: tzinfo) -> str:
    """Markdown: every open reason (urgent first) with its next step, then what is due next."""
    lines: list[str] = []
    reasons = open_reasons_urgent_first(status)
    if reasons:
        lines.append("**Why**")
        lines += [f"- {'**Urgent:** ' if r.severity == 'urgent' else ''}{_escape(r.message)}" for r in reasons]
    due = _due(status)
    if due:
        if lines:
            lines.append("")
        lines.append("**Due next**")
        lines += [f"- {_due_line(d, zone)}" for d in due]
    if not lines:
        lines.append("Nothing is due and nothing needs attention.")
    lines += ["", f"{status.weeks_in_treatment} weeks in the programme."]
    return "\n".join(lines)


def plan_card(status: PlanStatus, zone: tzinfo, links: Sequence[CardLink]) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary(status),
        "indicator": indicator(status),
        "detail": detail(status, zone),
        "source": {"label": SOURCE_LABEL},
        "links": [_link(link) for link in links],
    }


def _link(link: CardLink) -> dict[str, str]:
    found = {"label": link.label, "url": link.url, "type": link.type}
    if link.app_context is not None and link.type == "smart":
        found["appContext"] = link.app_context
    return found


def _what(reason: Reason) -> str:
    """What happened, without the next step the message ends with (the detail says it)."""
    if reason.what_happened:
        return reason.what_happened
    if reason.next_step and f" — {reason.next_step}" in reason.message:
        return reason.message.split(f" — {reason.next_step}", 1)[0]
    return reason.message


def _due(status: PlanStatus) -> list[Due]:
    found = [status.next_due.ketamine_session, status.next_due.cbt_session, status.next_due.measurement,
             status.next_due.rems_form]  # fmt: skip
    return sorted((d for d in found if d is not None), key=lambda d: d.due_at)


def _due_line(due: Due, zone: tzinfo) -> str:
    text = f"{due_words(due.kind)} due {day(due.due_at, zone)}"
    if due.booked:
        text += " (booked)"
    return f"**Overdue:** {text}" if due.overdue else text


def _escape(text: str) -> str:
    """Reason words are ours, but a protocol or instrument name could hold markdown: shown as written."""
    return "".join(f"\\{c}" if c in "\\`*_[]<>#|" else c for c in text)
