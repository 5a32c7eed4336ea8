"""Safety flags from questionnaires and from what was recorded at each ketamine/esketamine session.

Urgent flags concern one record each and stay open until acknowledged. Warnings about a session
(pre-dose blood pressure, unrecorded observation) concern only the most recent session: a later clean
session supersedes them.
"""

from __future__ import annotations

from datetime import timedelta

from service.instruments import INSTRUMENTS

from .flags import Finding
from .inputs import KetamineSessionFacts, MeasurementFacts, SafetyFindingFacts, VitalSigns
from .timeline import Timeline
from .wording import day, number, session_noun

_PHQ9_SELF_HARM = "44260-8"  # LOINC PHQ-9 item 9 (CLINICAL.md section 2)
_CSSRS_PREFIX = "C-SSRS high risk: "
# The clinic's next action for a suicide-risk finding (CLINICAL.md section 5).
_RISK_PATHWAY = "follow the suicide-risk pathway (structured risk assessment, safety plan)"


def _item9_answer(finding: SafetyFindingFacts) -> str:
    item = INSTRUMENTS["phq-9"].item(f"/{_PHQ9_SELF_HARM}")
    for option in item.options if item else ():
        if option.code == finding.code or (finding.value is not None and option.score == finding.value):
            return f"'{option.display.lower()}'"
    return "positively"


def measurement_findings(m: MeasurementFacts, timeline: Timeline) -> list[Finding]:
    tz = timeline.tz
    when = day(m.authored_at, tz)
    out: list[Finding] = []
    item9 = [f for f in m.safety_findings if (f.link_id or "").endswith(_PHQ9_SELF_HARM)]
    if m.instrument == "phq-9" and item9:
        out.append(
            Finding(
                "phq9_item9_positive",
                "urgent",
                f"PHQ-9 item 9 (thoughts of self-harm) answered {_item9_answer(item9[0])} on {when}",
                m.id,
                m.authored_at,
                next_step=f"{_first_step(m, timeline)} and {_RISK_PATHWAY}",
            )
        )
    elif m.instrument == "c-ssrs-screener" and m.safety_findings:
        what = "; ".join(sorted({f.reason.removeprefix(_CSSRS_PREFIX) for f in m.safety_findings}))
        out.append(
            Finding(
                "cssrs_high_risk",
                "urgent",
                f"C-SSRS screener on {when} shows high suicide risk ({what})",
                m.id,
                m.authored_at,
                next_step=f"{_first_step(m, timeline)} and {_RISK_PATHWAY}",
            )
        )
    elif m.safety_findings:
        instrument = INSTRUMENTS.get(m.instrument)
        title = instrument.title if instrument else m.instrument
        what = "; ".join(sorted({f.reason for f in m.safety_findings}))
        out.append(Finding("instrument_alert", "warning", f"{title} on {when}: {what} — review.", m.id, m.authored_at))
    if m.instrument == "phq-9" and not m.items_reported and not _screened_since(m, timeline):
        # Item 9 of a total-only PHQ-9 is unknown, never 0 (CLINICAL.md section 2): say so until screened.
        out.append(
            Finding(
                "phq9_item9_not_reported",
                "warning",
                f"PHQ-9 of {when} sent as a total only: item 9 (thoughts of self-harm) was not reported",
                m.id,
                m.authored_at,
                next_step="screen for suicidality at the next contact (an itemised PHQ-9 or a C-SSRS)",
            )
        )
    return out


def _screened_since(m: MeasurementFacts, timeline: Timeline) -> bool:
    """An itemised PHQ-9 or a C-SSRS screener from the same day or later covers a total-only PHQ-9's item 9."""
    answered = m.authored_at.astimezone(timeline.tz).date()
    return any(
        other.id != m.id
        and other.authored_at.astimezone(timeline.tz).date() >= answered
        and (other.instrument == "c-ssrs-screener" or (other.instrument == "phq-9" and other.items_reported))
        for other in timeline.measurements
    )


def _first_step(m: MeasurementFacts, timeline: Timeline) -> str:
    """On the day of a dose the risk is assessed before dosing; otherwise the patient is contacted that day."""
    answered = m.authored_at.astimezone(timeline.tz).date()
    if any(s.started_at.astimezone(timeline.tz).date() == answered for s in timeline.sessions):
        return "assess the patient before dosing that day"
    return "contact the patient today"


def _bp(v: VitalSigns) -> str:
    return f"{v.systolic}/{v.diastolic} mmHg"


def _worst(readings: list[VitalSigns]) -> VitalSigns:
    return max(readings, key=lambda v: (v.systolic or 0, v.diastolic or 0, v.taken_at))


def session_findings(s: KetamineSessionFacts, timeline: Timeline, *, latest: bool) -> list[Finding]:
    limits, tz = timeline.protocol.safety, timeline.tz
    where = f"at the {session_noun(s.drug)} on {day(s.started_at, tz)}"
    out: list[Finding] = []
    bp = [v for v in s.vital_signs if v.systolic is not None and v.diastolic is not None]
    urgent = [
        v
        for v in bp
        if (v.systolic or 0) >= limits.bp_urgent_systolic or (v.diastolic or 0) >= limits.bp_urgent_diastolic
    ]
    predose = [
        v
        for v in bp
        if v.taken_at <= s.started_at
        and ((v.systolic or 0) > limits.bp_predose_systolic or (v.diastolic or 0) > limits.bp_predose_diastolic)
    ]
    if urgent:
        out.append(
            Finding(
                "bp_urgent",
                "urgent",
                f"Blood pressure {_bp(_worst(urgent))} {where} (urgent level "
                f"{limits.bp_urgent_systolic}/{limits.bp_urgent_diastolic})",
                s.id,
                s.started_at,
                next_step="a physician reviews the patient before the next dose; recheck before discharge until "
                f"below {limits.bp_predose_systolic}/{limits.bp_predose_diastolic}",
            )
        )
    elif predose and latest:
        out.append(
            Finding(
                "bp_predose_warning",
                "warning",
                f"Blood pressure before dosing was {_bp(_worst(predose))} {where} (above "
                f"{limits.bp_predose_systolic}/{limits.bp_predose_diastolic}) — check it is controlled before "
                "the next dose.",
                s.id,
                s.started_at,
            )
        )
    if s.sedation_score is not None and s.sedation_score <= limits.max_sedation_score:
        out.append(
            Finding(
                "oversedation",
                "urgent",
                f"Deep sedation (MOAA/S {s.sedation_score}) {where}",
                s.id,
                s.started_at,
                next_step="make sure the prescriber has reviewed the dose",
            )
        )
    serious = sorted({e.description for e in s.adverse_events if e.serious})
    if serious:
        out.append(
            Finding(
                "serious_adverse_event",
                "urgent",
                f"Serious adverse event {where}: {'; '.join(serious)}",
                s.id,
                s.started_at,
                next_step="confirm it has been reviewed and reported",
            )
        )
    cadss = limits.dissociation_above
    if latest and cadss is not None and s.dissociation_score is not None and s.dissociation_score > cadss:
        out.append(
            Finding(
                "dissociation_high",
                "info",
                f"Dissociation (CADSS {s.dissociation_score}) {where} was above {cadss}.",
                s.id,
                s.started_at,
            )
        )
    if s.drug == "esketamine":
        out.extend(_observation(s, timeline, where, latest=latest))
    return out


def _observation(s: KetamineSessionFacts, timeline: Timeline, where: str, *, latest: bool) -> list[Finding]:
    limits = timeline.protocol.safety
    minimum = limits.esketamine_min_observation_minutes
    if s.observation_minutes is not None and s.observation_minutes < minimum:
        return [
            Finding(
                "esketamine_observation_short",
                "urgent",
                f"The patient was observed for only {number(s.observation_minutes)} minutes {where} "
                f"(at least {minimum} required)",
                s.id,
                s.started_at,
                next_step="check on the patient and review with the clinic",
            )
        ]
    grace = timedelta(minutes=minimum, hours=limits.observation_record_grace_hours)
    if s.observation_minutes is None and latest and timeline.clock.reached(s.started_at + grace):
        return [
            Finding(
                "esketamine_observation_unrecorded",
                "warning",
                f"No observation time was recorded {where} — ask the clinic to record it.",
                s.id,
                s.started_at + grace,
            )
        ]
    return []


def all_safety_findings(timeline: Timeline) -> list[Finding]:
    out: list[Finding] = []
    for m in timeline.measurements:
        out.extend(measurement_findings(m, timeline))
    last = timeline.given[-1] if timeline.given else None
    for s in timeline.given:
        out.extend(session_findings(s, timeline, latest=s is last))
    return out
