"""The outcomes CSV: one row per patient-period (an enrolment that started in the period), pseudonymous ids.

Columns: CSV_COLUMNS below, documented in docs/outcomes.md ("CSV schema"). Row-level data for the quality office's
own analysis, so no cell is suppressed here: the ids are pseudonyms, dates are reduced to the enrolment's start
month and days since the first session, and no name, MRN, birth date or free text is written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from service.outcomes import Filters, PatientOutcome
from service.outcomes.response import MILESTONES

from .pseudonyms import pseudonym

CSV_COLUMNS: tuple[str, ...] = (
    "patient_pseudonym",
    "enrollment_pseudonym",
    "period_start",
    "period_end",
    "protocol_id",
    "start_month",
    "enrollment_status",
    "primary_instrument",
    "baseline_score",
    *(f"{key}_{what}" for key in MILESTONES for what in ("state", "score", "response", "remission")),
    "cbt_planned_8w",
    "cbt_attended_8w",
    "cbt_adherence_share",
    "adherence_group",
    "responded",
    "days_response_to_relapse_or_censor",
    "relapsed",
    "measurements_due",
    "measurements_received",
    "sessions_given",
    "urgent_safety_events",
    "rems_on_time",
    "rems_late",
    "rems_overdue",
    "rems_pending",
)


def _flag(value: bool | None) -> str:
    return "" if value is None else ("1" if value else "0")


def outcome_row(p: PatientOutcome, filters: Filters, key: bytes) -> dict[str, str]:
    e = p.enrollment
    row = {
        "patient_pseudonym": pseudonym(key, e.patient_id),
        "enrollment_pseudonym": pseudonym(key, "enrollment:" + e.id),
        "period_start": filters.period_start.isoformat(),
        "period_end": filters.period_end.isoformat(),
        "protocol_id": e.protocol_id,
        "start_month": e.start_date.strftime("%Y-%m"),
        "enrollment_status": e.status,
        "primary_instrument": e.primary_instrument,
        "baseline_score": "" if p.baseline_score is None else f"{p.baseline_score:g}",
    }
    for name, m in p.milestones.items():
        measured = m.state == "measured"
        row[f"{name}_state"] = m.state
        row[f"{name}_score"] = f"{m.score:g}" if m.score is not None else ""
        row[f"{name}_response"] = _flag(m.responded if measured else None)
        row[f"{name}_remission"] = _flag(m.remitted if measured else None)
    d, mon = p.durability, p.monitoring
    share = p.adherence_share
    row |= {
        "cbt_planned_8w": str(p.cbt_planned),
        "cbt_attended_8w": str(p.cbt_attended),
        "cbt_adherence_share": "" if share is None else f"{share:.3f}",
        "adherence_group": p.adherence_group,
        "responded": _flag(d is not None),
        "days_response_to_relapse_or_censor": "" if d is None else f"{d.days:g}",
        "relapsed": _flag(d.relapsed if d is not None else None),
        "measurements_due": str(mon.measurements_due),
        "measurements_received": str(mon.measurements_received),
        "sessions_given": str(mon.sessions_given),
        "urgent_safety_events": str(sum(mon.safety_events.values())),
        "rems_on_time": str(mon.rems.get("on_time", 0)),
        "rems_late": str(mon.rems.get("late", 0)),
        "rems_overdue": str(mon.rems.get("overdue", 0)),
        "rems_pending": str(mon.rems.get("pending", 0)),
    }
    return row


def outcomes_csv(patients: Sequence[PatientOutcome], filters: Filters, key: bytes) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    rows = sorted((outcome_row(p, filters, key) for p in patients), key=lambda r: r["enrollment_pseudonym"])
    writer.writerows(rows)
    return buffer.getvalue()
