"""Hypothesis strategies that build the service's own *Public records, so the protocols are proven to fit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from service.instruments import Coding, ItemAnswer
from service.records.cbt import CbtSessionPublic
from service.records.enrollment import EnrollmentPublic
from service.records.ketamine import AdverseEvent, KetamineAdministrationPublic, VitalSignReading
from service.records.patient import PatientPublic
from service.records.questionnaire import QuestionnaireResponsePublic

BASE = "https://tandem.example.org/fhir"

ids = st.uuids().map(str)
# Printable text without surrounding blanks: the records strip whitespace, FHIR strings may not be empty.
text = (
    st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=40)
    .map(str.strip)
    .filter(bool)
)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))
uris = st.sampled_from(["urn:oid:2.16.840.1.113883.3.7418", "https://ehr.example.org/fhir", "urn:tandem:record"])


@st.composite
def meta(draw: st.DrawFn) -> dict[str, Any]:
    created = draw(instants)
    return {
        "id": draw(ids),
        "version": draw(st.integers(1, 50)),
        "created_at": created,
        "updated_at": created + draw(st.timedeltas(timedelta(0), timedelta(days=30))),
        "source": {"system": draw(uris), "value": draw(text)},
    }


@st.composite
def patients(draw: st.DrawFn) -> PatientPublic:
    mrns = draw(st.lists(st.tuples(uris, text), max_size=3, unique=True))
    family, given = draw(st.none() | text), draw(st.none() | text)
    deceased_at = draw(st.sampled_from([None, "2015", "2024-02-14", "2025-02-14T13:42:00+10:00"]))
    name_text = None if family or given else draw(text)
    official: dict[str, Any] = {"use": "official"}
    official |= {"family": family} if family else {}
    official |= {"given": [given]} if given else {}
    official |= {"text": name_text} if name_text else {}
    with_names = draw(st.booleans())
    return PatientPublic(
        **draw(meta()),
        identifiers=[{"system": s, "value": v} for s, v in mrns],
        family_name=family,
        given_name=given,
        name_text=name_text,
        # Every name as sent: the official one the parts come from, and another the sender uses.
        names=[official, {"use": "nickname", "text": "Jo"}] if with_names else [],
        birth_date=draw(st.none() | st.dates(date(1900, 1, 1), date(2020, 12, 31))),
        sex=draw(st.sampled_from(["female", "male", "other", "unknown"])),
        deceased=deceased_at is not None or draw(st.booleans()),
        deceased_at=deceased_at,
        telecom=draw(st.sampled_from([[], [{"system": "phone", "value": "+1 608 555 0143", "use": "mobile"}]])),
        addresses=draw(st.sampled_from([[], [{"use": "home", "line": ["1 Main St"], "city": "Madison"}]])),
        contacts=draw(st.sampled_from([[], [{"relationship": [{"text": "sister"}], "name": {"text": "Ann Lee"}}]])),
        communication=draw(st.sampled_from([[], [{"language": {"text": "Dutch"}, "preferred": True}]])),
        time_zone=draw(st.sampled_from([None, "America/Chicago", "Europe/Oslo"])),
    )


@st.composite
def enrollments(draw: st.DrawFn) -> EnrollmentPublic:
    start = draw(st.dates(date(2020, 1, 1), date(2030, 1, 1)))
    status = draw(st.sampled_from(["active", "on-hold", "completed", "discontinued"]))
    return EnrollmentPublic(
        **draw(meta()),
        patient_id=draw(ids),
        protocol_id=draw(st.sampled_from(["iv-ketamine-cbt", "esketamine-cbt"])),
        start_date=start,
        end_date=draw(st.none() | st.just(start + timedelta(days=90))),
        status=status,
        status_reason=draw(text) if status in ("on-hold", "discontinued") else draw(st.none() | text),
        coordinator_id=draw(st.none() | ids),
        target_condition=draw(
            st.sampled_from(
                [
                    {"system": "http://snomed.info/sct", "code": "370143000", "display": "Major depressive disorder"},
                    {"system": "http://snomed.info/sct", "code": "66344007", "display": None},
                ]
            )
        ),
        treatment_resistant=draw(st.booleans()),
        primary_instrument=draw(st.sampled_from(["phq-9", "gad-7", "madrs", "qids-sr16"])),
    )


@st.composite
def vital_signs(draw: st.DrawFn, around: datetime) -> VitalSignReading:
    systolic = draw(st.none() | st.integers(90, 300))
    diastolic = None if systolic is None else draw(st.integers(20, min(200, systolic - 1)))
    heart = draw(st.none() | st.integers(20, 250))
    spo2 = draw(st.integers(50, 100)) if systolic is None and heart is None else draw(st.none() | st.integers(50, 100))
    return VitalSignReading(
        taken_at=around + draw(st.timedeltas(timedelta(minutes=-30), timedelta(minutes=180))),
        systolic_mmhg=systolic,
        diastolic_mmhg=diastolic,
        heart_rate_bpm=heart,
        spo2_percent=spo2,
    )


doses = st.floats(5, 300, allow_nan=False).map(lambda v: round(v, 2))


@st.composite
def administrations(draw: st.DrawFn) -> KetamineAdministrationPublic:
    drug = draw(st.sampled_from(["ketamine", "esketamine"]))
    route = (
        "intranasal"
        if drug == "esketamine"
        else draw(st.sampled_from(["intravenous", "intramuscular", "intranasal", "sublingual", "oral"]))
    )
    status = draw(st.sampled_from(["completed", "completed", "stopped", "not-done"]))
    started = draw(instants)
    weight = draw(st.none() | st.floats(30, 200).map(lambda v: round(v, 1)))
    per_kg = draw(st.none() | st.floats(0.1, 1.5).map(lambda v: round(v, 3)))
    dose_mg = None if per_kg is not None and weight is not None else draw(st.none() | doses)
    if status != "not-done" and dose_mg is None and per_kg is None:
        dose_mg = draw(doses)
    return KetamineAdministrationPublic(
        **draw(meta()),
        patient_id=draw(ids),
        enrollment_id=draw(st.none() | ids),
        drug=drug,
        route=route,
        dose_mg=dose_mg,
        dose_mg_per_kg=per_kg,
        body_weight_kg=weight,
        started_at=started,
        ended_at=draw(st.none() | st.just(started + timedelta(minutes=40))),
        lot_number=draw(st.none() | text),
        performer_id=draw(st.none() | ids),
        status=status,
        status_reason=draw(text) if status != "completed" else draw(st.none() | text),
        vital_signs=draw(st.lists(vital_signs(started), max_size=4)),
        sedation_score=draw(st.none() | st.integers(0, 5)),
        dissociation_score=draw(st.none() | st.integers(0, 92)),
        observation_minutes=draw(st.none() | st.integers(0, 1440)),
        adverse_events=draw(
            st.lists(
                st.builds(AdverseEvent, description=text, serious=st.booleans(), onset_at=st.none() | instants),
                max_size=3,
            )
        ),
        rems_form_submitted_at=draw(st.none() | instants),
    )


_CPT = "http://www.ama-assn.org/go/cpt"
_SNOMED = "http://snomed.info/sct"
# Encounter.type as EHRs send it, with the modality each means (a site visit type is CBT only beside a CBT code,
# as after the target's code map added it).
SENT_VISIT_TYPES: list[tuple[list[dict[str, Any]], str]] = [
    ([{"coding": [{"system": _CPT, "code": "90837", "display": "Psychotherapy, 60 minutes with patient"}]}],
     "psychotherapy-unspecified"),
    ([{"coding": [{"system": _CPT, "code": "90853"}]}], "psychotherapy-unspecified"),
    ([{"coding": [{"system": _CPT, "code": "90834"}]}, {"coding": [{"system": _SNOMED, "code": "228557008"}]}],
     "cbt"),
    ([{"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.30", "code": "1023", "display": "CBT"},
                  {"system": _SNOMED, "code": "228557008"}], "text": "CBT follow-up"}], "cbt"),
]  # fmt: skip


@st.composite
def cbt_sessions(draw: st.DrawFn) -> CbtSessionPublic:
    status = draw(st.sampled_from(["planned", "attended", "cancelled", "no-show"]))
    planned = draw(instants)
    actual_start = planned + timedelta(minutes=draw(st.integers(-10, 30))) if status == "attended" else None
    actual_end = (
        draw(st.none() | st.just(actual_start + timedelta(minutes=draw(st.integers(0, 120))))) if actual_start else None
    )
    return CbtSessionPublic(
        **draw(meta()),
        patient_id=draw(ids),
        enrollment_id=draw(st.none() | ids),
        session_number=draw(st.integers(1, 200)),
        therapist_id=draw(st.none() | ids),
        planned_start=planned,
        planned_minutes=draw(st.integers(5, 240)),
        actual_start=actual_start,
        actual_end=actual_end,
        status=status,
        status_reason=draw(st.none() | text),
        setting=draw(st.sampled_from(["in-person", "video"])),
        modules_covered=draw(st.lists(text, max_size=4)),
        homework_set=draw(st.none() | text),
        homework_completed=draw(st.none() | st.booleans()),
        **draw(st.sampled_from([{"visit_types": [], "modality": m} for m in ("cbt", "psychotherapy-unspecified")]
                               + [{"visit_types": t, "modality": m} for t, m in SENT_VISIT_TYPES])),
    )  # fmt: skip


link_ids = st.sampled_from(["/44250-9", "/44255-8", "/44260-8", "/69722-7", "q1", "cadss-1", "/93246-7"])
codings = st.builds(
    Coding,
    system=st.none() | st.just("http://loinc.org"),
    code=st.sampled_from(["LA6568-5", "LA6569-3", "LA33-6", "a1"]),
    display=st.none() | text,
)
values = st.one_of(
    codings.map(lambda c: {"value_coding": c}),
    st.integers(-5, 100).map(lambda v: {"value_integer": v}),
    st.floats(-100, 100, allow_nan=False).map(lambda v: {"value_decimal": round(v, 3)}),
    text.map(lambda v: {"value_string": v}),
    st.booleans().map(lambda v: {"value_boolean": v}),
)


# A sender's author / source: kept as written (a Practitioner at the EHR, or a relative answering for a patient).
def _party(reference: str, display: str | None) -> dict[str, str]:
    return {"reference": reference} | ({"display": display} if display else {})


parties = st.builds(
    _party,
    st.sampled_from(["Practitioner/practitioner-1", "RelatedPerson/mother", "Patient/someone-else"]),
    st.none() | st.just("Dr Example"),
)


author_kinds = st.sampled_from(["patient", "clinician"])


def _author_kind(party: dict[str, str]) -> str:
    # What a sent author/source says (who answered decides, then who recorded): a Practitioner is a clinician.
    return "clinician" if party["reference"].startswith("Practitioner/") else "patient"


@st.composite
def responses(draw: st.DrawFn) -> QuestionnaireResponsePublic:
    chosen = draw(st.lists(link_ids, unique=True, max_size=7))
    instrument = draw(st.sampled_from(["phq-9", "gad-7", "c-ssrs-screener", "cadss", "moaa-s"]))
    author, answered_by = draw(st.none() | parties), draw(st.none() | parties)
    return QuestionnaireResponsePublic(
        **draw(meta()),
        patient_id=draw(ids),
        enrollment_id=draw(st.none() | ids),
        instrument=instrument,
        questionnaire=draw(
            st.none()
            | st.sampled_from(
                ["http://hl7.org/fhir/us/core/Questionnaire/phq-9-example", f"{BASE}/Questionnaire/gad-7|1.0"]
            )
        ),
        authored_at=draw(instants),
        author_kind=_author_kind(sent) if (sent := answered_by or author) else draw(author_kinds),
        status=draw(st.sampled_from(["completed", "in-progress", "amended"])),
        answers=[ItemAnswer(link_id=link_id, text=draw(st.none() | text), **draw(values)) for link_id in chosen],
        author=author,
        answered_by=answered_by,
        ketamine_administration_id=draw(st.none() | ids),
        cbt_session_id=draw(st.none() | ids),
        sent_total=draw(st.none() | st.integers(0, 27) | st.floats(0, 27).map(lambda v: round(v, 2))),
        score=draw(stored_scores()),
    )


@st.composite
def stored_scores(draw: st.DrawFn) -> dict[str, Any]:
    total = draw(st.none() | st.integers(0, 27) | st.floats(0, 27).map(lambda v: round(v, 1)))
    findings = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "link_id": st.none() | link_ids,
                    "code": st.none() | st.just("LA6569-3"),
                    "reason": text,
                    "value": st.integers(0, 3),
                }
            ),
            max_size=2,
        )
    )
    return {
        "total": total,
        "severity": draw(st.none() | st.sampled_from(["mild", "severe"])),
        "complete": total is not None,
        "missing_items": [],
        "item_scores": {},
        "safety_findings": findings,
        "total_mismatch": False,
        "instrument_version": None,
    }
