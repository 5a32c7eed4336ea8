"""The SPRAVATO REMS Patient Monitoring Form, prefilled from what Tandem holds for one esketamine session (pure).

Every field the form asks for is present: with the value Tandem holds, or marked MISSING for the clinician to
complete. Nothing is guessed: a value is shown only when a stored fact says it (a MOAA/S below 5 is sedation by the
scale's own definition; a MOAA/S of 5 does not prove there was none, so that answer stays the clinician's).

The field list follows the form itself, as published by the REMS sponsor and the FDA (read 2026-12-04):
- SPRAVATO REMS Patient Monitoring Form, Outpatient Use Only (Janssen, 11/2021; the text of the form as
  reproduced at https://manuzoid.com/manuals/DGLLa-Spravato%20Patient%20Monitoring%20Operating%20instructions and
  https://manualspro.net/445029-spravato-patient-monitoring-form-instructions): patient first name, MI, last name,
  birthdate, sex; concomitant medication (benzodiazepines, non-benzodiazepine sedative hypnotics, psychostimulants,
  MAOIs: yes/no); healthcare provider conducting the monitoring (first and last name, telephone, e-mail);
  healthcare setting (name, address, city, state, ZIP); treatment date; dose administered (56 mg, 84 mg, other)
  and lot number; total treatment time in minutes from the first device to the end of monitoring (at least 2 h);
  the REMS evaluation question (when would the patient have been ready to leave without the 2-hour minimum);
  vital signs in acceptable range before administration and before the end of the session; blood pressure before
  administration, 40 minutes after, and before the end of the session; "Did the patient experience sedation ...".
- The sponsor's walk-through of the current form (Johnson & Johnson, "SPRAVATO REMS Patient Monitoring Form
  overview", https://jnjmedicalconnect.com/products/spravato/video-spravato-rems-patient-monitoring-form-overview):
  whether this is the patient's first treatment and, if so, whether the patient is enrolled in the REMS; the
  concomitant medications widened to those that may cause sedation, dissociation, respiratory depression or blood
  pressure changes (opioids named); monitoring for sedation, dissociation and respiratory depression.
- FDA, Approved REMS: SPRAVATO (https://www.accessdata.fda.gov/scripts/cder/rems/index.cfm?event=IndvRemsDetails.page&REMS=386):
  patients are monitored for at least two hours and until sedation, dissociation and respiratory depression
  resolve; the setting has a pulse oximeter.
The adverse-event questions after "sedation" were not legible in the copies above; the form's outcome questions
are kept as the FDA's REMS words them (each effect observed, and resolved), plus adverse events as Tandem holds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

MISSING = "missing — to be completed by the clinician"
# The form's blood pressure check "40 mins post-administration": the reading nearest 40 min after the first
# device, within this margin either side, is it (a check at 25-55 min); later readings are before discharge.
POST_DOSE_CHECK = timedelta(minutes=40)
POST_DOSE_MARGIN = timedelta(minutes=15)
MIN_MONITORING_MINUTES = 120  # the form: "Patient must be monitored for at least 2 hours"
LABEL_DOSES_MG = (56.0, 84.0)  # the form's two dose boxes; anything else is "Other"
MOAAS_ALERT = 5  # MOAA/S 5: responds readily to name spoken in a normal tone (not sedated)


@dataclass(frozen=True)
class Reading:
    taken_at: datetime
    systolic: int | None = None
    diastolic: int | None = None
    spo2: int | None = None


@dataclass(frozen=True)
class AdverseEvent:
    description: str
    serious: bool


@dataclass(frozen=True)
class FormInputs:
    """What Tandem holds for the session, as plain values (service/rems/session_form.py reads them)."""

    given_names: tuple[str, ...]
    family_name: str | None
    birth_date: date | None
    sex: str | None
    started_at: datetime
    ended_at: datetime | None
    dose_mg: float | None
    lot_number: str | None
    observation_minutes: int | None
    sedation_score: int | None
    dissociation_score: int | None
    readings: tuple[Reading, ...]
    adverse_events: tuple[AdverseEvent, ...]
    earlier_esketamine_sessions: int
    monitoring_hcp: tuple[str | None, str] | None  # (given, family) of the session's performer
    setting_name: str
    zone: tzinfo
    submitted_at: datetime | None = None
    submitted_by: str | None = None


@dataclass(frozen=True)
class FormField:
    key: str
    label: str
    value: str | None  # None: missing, for the clinician to complete
    note: str | None = None  # what Tandem holds that bears on it, or where the value came from

    @property
    def shown(self) -> str:
        return self.value if self.value is not None else MISSING


@dataclass(frozen=True)
class FormSection:
    title: str
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class RemsForm:
    sections: tuple[FormSection, ...]
    submitted_at: datetime | None
    submitted_by: str | None
    session_started_at: datetime
    due_by: datetime  # the REMS asks for the form within 7 days of the session (the protocol's rems_form_days)

    def get(self, key: str) -> FormField:
        return next(f for s in self.sections for f in s.fields if f.key == key)

    @property
    def missing(self) -> list[FormField]:
        return [f for s in self.sections for f in s.fields if f.value is None]


def prefill(inputs: FormInputs, *, rems_form_days: float = 7) -> RemsForm:
    return RemsForm(
        sections=(
            _patient(inputs),
            _medications(),
            _provider(inputs),
            _setting(inputs),
            _treatment(inputs),
            _blood_pressure(inputs),
            _effects(inputs),
        ),
        submitted_at=inputs.submitted_at,
        submitted_by=inputs.submitted_by,
        session_started_at=inputs.started_at,
        due_by=inputs.started_at + timedelta(days=rems_form_days),  # as the engine's deadline (plan_status.schedule)
    )


def _patient(i: FormInputs) -> FormSection:
    first = i.given_names[0] if i.given_names else None
    middle = i.given_names[1][:1].upper() if len(i.given_names) > 1 and i.given_names[1] else None
    sex = {"male": "Male", "female": "Female", "other": "Other"}.get(i.sex or "")
    if i.earlier_esketamine_sessions:
        first_treatment: str | None = "No"
        note = f"{i.earlier_esketamine_sessions} earlier esketamine session(s) of this patient recorded"
    else:
        first_treatment, note = None, "no earlier esketamine session recorded; treatment elsewhere is not known"
    return FormSection(
        "Patient information",
        (
            FormField("first_name", "First name", first),
            FormField("middle_initial", "MI", middle),
            FormField("last_name", "Last name", i.family_name),
            FormField("birthdate", "Birthdate (MM/DD/YYYY)", f"{i.birth_date:%m/%d/%Y}" if i.birth_date else None),
            FormField("sex", "Sex", sex),
            FormField("first_treatment", "Is this the patient's first treatment?", first_treatment, note),
            FormField(
                "rems_enrolled",
                "If first treatment: is the patient enrolled in the SPRAVATO REMS?",
                None,
                "REMS enrolment is not recorded",
            ),
        ),
    )


def _medications() -> FormSection:
    note = "no medication list recorded"
    names = ("Benzodiazepines", "Non-benzodiazepine sedative hypnotics", "Psychostimulants",
             "Monoamine oxidase inhibitors (MAOIs)", "Opioids")  # fmt: skip
    return FormSection(
        "Concomitant medication (may cause sedation, dissociation, respiratory depression or blood pressure changes)",
        tuple(FormField(f"med_{n.split()[0].lower()}", f"{n}: yes or no", None, note) for n in names),
    )


def _provider(i: FormInputs) -> FormSection:
    given, family = i.monitoring_hcp if i.monitoring_hcp else (None, None)
    note = None if i.monitoring_hcp else "the session names no performer"
    return FormSection(
        "Healthcare provider conducting patient monitoring",
        (
            FormField("hcp_first_name", "First name", given, note),
            FormField("hcp_last_name", "Last name", family, note),
            FormField("hcp_telephone", "Telephone", None, "no practitioner telephone recorded"),
            FormField("hcp_email", "Email", None, "no practitioner e-mail recorded"),
        ),
    )


def _setting(i: FormInputs) -> FormSection:
    note = "only the hospital's name is recorded"
    return FormSection(
        "Healthcare setting information",
        (
            FormField("setting_name", "Healthcare setting name", i.setting_name),
            FormField("setting_address", "Healthcare setting address", None, note),
            FormField("setting_city", "City", None, note),
            FormField("setting_state", "State", None, note),
            FormField("setting_zip", "ZIP", None, note),
        ),
    )


def _treatment(i: FormInputs) -> FormSection:
    local = i.started_at.astimezone(i.zone)
    return FormSection(
        "Patient treatment session (administration and monitoring)",
        (
            FormField("treatment_date", "Treatment date (MM/DD/YYYY)", f"{local:%m/%d/%Y}"),
            FormField(
                "first_device_at", "First device administered at", f"{local:%H:%M %Z}", "the session's recorded start"
            ),
            FormField("dose", "Dose administered (56 mg, 84 mg, other)", _dose(i.dose_mg)),
            FormField("lot_number", "Lot number", i.lot_number),
            _duration(i),
            FormField(
                "ready_to_leave",
                "REMS evaluation: without the 2-hour minimum, when would the patient have "
                "been ready to leave? (minutes from start of administration)",
                None,
                "a clinical judgement, not recorded",
            ),
            FormField(
                "vitals_ok_before",
                "Vital signs in acceptable range prior to administration?",
                None,
                _bp_note(i, before=True),
            ),
            FormField(
                "vitals_ok_end",
                "Vital signs in acceptable range prior to treatment session completion?",
                None,
                _bp_note(i, before=False),
            ),
        ),
    )


def _dose(dose_mg: float | None) -> str | None:
    if dose_mg is None:
        return None
    return f"{dose_mg:g} mg" if dose_mg in LABEL_DOSES_MG else f"Other: {dose_mg:g} mg"


def _duration(i: FormInputs) -> FormField:
    label = "Total treatment time, minutes (first device to completion of monitoring; at least 2 hours)"
    if i.observation_minutes is None:
        return FormField("total_minutes", label, None, "the session's observation time is not recorded")
    # Observation is counted from the end of dosing (service/plan_status/session_vitals.py).
    end = (i.ended_at or i.started_at) + timedelta(minutes=i.observation_minutes)
    total = int((end - i.started_at).total_seconds() // 60)
    dosed = (i.ended_at or i.started_at).astimezone(i.zone)
    note = f"dosing to {dosed:%H:%M}, then {i.observation_minutes} min observed"
    if total < MIN_MONITORING_MINUTES:
        note += f"; below the {MIN_MONITORING_MINUTES}-minute minimum"
    return FormField("total_minutes", label, str(total), note)


def _pressures(i: FormInputs) -> list[Reading]:
    return sorted((r for r in i.readings if r.systolic is not None and r.diastolic is not None),
                  key=lambda r: r.taken_at)  # fmt: skip


def blood_pressure_checks(i: FormInputs) -> tuple[Reading | None, Reading | None, Reading | None]:
    """The form's three checks: the last before the first device, the one nearest 40 min after it, and the last
    one after that window (before the end of the session)."""
    pressures = _pressures(i)
    before = next((r for r in reversed(pressures) if r.taken_at <= i.started_at), None)
    check, margin = i.started_at + POST_DOSE_CHECK, POST_DOSE_MARGIN
    near = [r for r in pressures if abs(r.taken_at - check) <= margin]
    post = min(near, key=lambda r: abs(r.taken_at - check)) if near else None
    later = [r for r in pressures if r.taken_at > check + margin]
    return before, post, later[-1] if later else None


def _bp_note(i: FormInputs, *, before: bool) -> str:
    first, _post, last = blood_pressure_checks(i)
    reading = first if before else last
    if reading is None:
        return "no blood pressure recorded at that point"
    return f"BP {reading.systolic}/{reading.diastolic} mmHg recorded then; whether acceptable is the clinician's call"


def _bp_field(key: str, label: str, reading: Reading | None, zone: tzinfo) -> FormField:
    if reading is None:
        return FormField(key, label, None, "no blood pressure recorded at that point of the session")
    return FormField(key, label, f"{reading.systolic}/{reading.diastolic} mmHg",
                     f"taken {reading.taken_at.astimezone(zone):%H:%M %Z}")  # fmt: skip


def _blood_pressure(i: FormInputs) -> FormSection:
    before, post, last = blood_pressure_checks(i)
    return FormSection(
        "Monitoring of blood pressure",
        (
            _bp_field("bp_before", "Prior to administration", before, i.zone),
            _bp_field("bp_40_min", "40 minutes post-administration", post, i.zone),
            _bp_field("bp_end", "Prior to treatment session completion", last, i.zone),
        ),
    )


def _effects(i: FormInputs) -> FormSection:
    if i.sedation_score is not None and i.sedation_score < MOAAS_ALERT:
        sedation: str | None = f"Yes (MOAA/S {i.sedation_score} recorded)"
        sedation_note = None
    else:
        sedation = None
        sedation_note = (f"MOAA/S {i.sedation_score} recorded (5 = alert); one score does not rule sedation out"
                         if i.sedation_score is not None else "no MOAA/S recorded")  # fmt: skip
    if i.dissociation_score is not None and i.dissociation_score > 0:
        dissociation: str | None = f"Yes (CADSS {i.dissociation_score} recorded)"
        dissociation_note = None
    else:
        dissociation = None
        dissociation_note = "CADSS 0 recorded" if i.dissociation_score == 0 else "no CADSS recorded"
    return FormSection(
        "Sedation, dissociation, respiratory depression and adverse events",
        (
            FormField("sedation", "Did the patient experience sedation?", sedation, sedation_note),
            FormField("dissociation", "Did the patient experience dissociation?", dissociation, dissociation_note),
            FormField(
                "respiratory_depression",
                "Did the patient experience respiratory depression?",
                None,
                _oximetry(i.readings),
            ),
            FormField(
                "resolved",
                "Did sedation, dissociation and respiratory depression resolve before the patient left?",
                None,
                "when each effect resolved is not recorded",
            ),
            _adverse(i.adverse_events),
        ),
    )


def _oximetry(readings: Sequence[Reading]) -> str:
    spo2 = [r.spo2 for r in readings if r.spo2 is not None]
    if not spo2:
        return "no pulse oximetry recorded"
    return f"pulse oximetry: lowest SpO2 {min(spo2)} % of {len(spo2)} reading(s)"


def _adverse(events: Sequence[AdverseEvent]) -> FormField:
    label = "Other adverse events"
    if not events:
        return FormField("adverse_events", label, None, "none recorded")
    text = "; ".join(f"{e.description}{' (serious)' if e.serious else ''}" for e in events)
    return FormField("adverse_events", label, text)
