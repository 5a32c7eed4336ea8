"""The intakes of Patient, MedicationAdministration, Encounter and Appointment."""

from __future__ import annotations

from bisect import bisect_left, insort
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

import fhir_mappings as fm
from service.db.memo import COUNTED, remembered
from service.records.appointment import AppointmentCreate
from service.records.cbt import CbtSession, CbtSessionCreate
from service.records.ketamine import KetamineAdministrationCreate
from service.records.patient import FHIR_ELEMENTS, PatientCreate
from service.records.sources import stored_by_source

from .context import Intake, mapped, validated


def take_patient(intake: Intake, resource: dict[str, Any]) -> PatientCreate:
    body = mapped(
        lambda: fm.patient_from_fhir(
            resource,
            canonical_base=intake.canonical_base,
            source_system=intake.source_system,
            mrn_systems=intake.mrn_systems,
        )
    )
    return validated(PatientCreate, body, "Patient", FHIR_ELEMENTS)


def take_medication_administration(intake: Intake, resource: dict[str, Any]) -> KetamineAdministrationCreate:
    body = mapped(
        lambda: fm.administration_from_fhir(
            resource,
            canonical_base=intake.canonical_base,
            resolve_patient=intake.resolve,
            resolve_reference=intake.resolve,
            source_system=intake.source_system,
        )
    )
    return validated(KetamineAdministrationCreate, body, "MedicationAdministration")


def take_encounter(intake: Intake, resource: dict[str, Any]) -> CbtSessionCreate:
    """A therapy visit. Without our session-number extension (an EHR-born visit) it is numbered by date, the
    same on every path (POST, PUT, Bundles, import, pull): see _number_by_date."""
    numbered_here: list[datetime] = []

    def by_date(start: datetime) -> int:
        numbered_here.append(start)
        return _number_by_date(intake, resource, start)

    body = mapped(
        lambda: fm.session_from_fhir(
            resource,
            canonical_base=intake.canonical_base,
            resolve_patient=intake.resolve,
            resolve_reference=intake.resolve,
            source_system=intake.source_system,
            session_number=by_date,
        )
    )
    stored = _stored_session(intake, resource, body.get("source"))
    if stored is not None and numbered_here:
        # A resend or an update of a visit we hold keeps the number it was given: numbers never move.
        body["session_number"] = stored.session_number
    elif numbered_here and body.get("patient_id") and body.get("status") != "entered-in-error":
        # A new visit: the next one of this patient in the unit counts it among the earlier ones.
        for start in numbered_here:
            insort(_session_starts(intake, body["patient_id"]), start)
    if (
        stored is not None
        and not stored.visit_types
        and body["visit_types"] == fm.derived_visit_types(stored.planned_minutes, stored.modality)
    ):
        # Our own rendering of a session recorded here, sent back (PUT as read): its types were derived, not sent.
        body["visit_types"] = []
    return validated(CbtSessionCreate, body, "Encounter")


def take_appointment(intake: Intake, resource: dict[str, Any]) -> AppointmentCreate:
    """A CBT or ketamine/esketamine session booked in the EHR: a planned session (service/records/appointment.py)."""
    body = mapped(
        lambda: fm.appointment_from_fhir(
            resource,
            canonical_base=intake.canonical_base,
            resolve_patient=intake.resolve,
            resolve_reference=intake.resolve,
            source_system=intake.source_system,
        )
    )
    return validated(AppointmentCreate, body, "Appointment")


def _number_by_date(intake: Intake, encounter: dict[str, Any], start: datetime) -> int:
    """The visit's place by start among the patient's sessions (entered-in-error ones aside): 1 + how many
    started earlier. A visit that arrives after later ones were numbered takes its place by date, and the later
    ones keep theirs (never renumbered: a number already shown to the care team and sent to the EHRs stays; the
    plan status counts sessions by status and date, not by number), so two sessions can then share a number."""
    subject = encounter.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    patient_id = intake.resolve(reference) if isinstance(reference, str) else None
    if patient_id is None:
        return 1  # the reader refuses the unknown patient itself, naming Encounter.subject
    return bisect_left(_session_starts(intake, patient_id), start) + 1


def _session_starts(intake: Intake, patient_id: str) -> list[datetime]:
    """The starts of the patient's stored visits (entered-in-error ones aside), in order: read once a unit, so a
    Bundle of visits numbers each without a query of its own (service/db/memo.py, COUNTED)."""

    def look_up() -> list[datetime]:
        began = func.coalesce(col(CbtSession.actual_start), col(CbtSession.planned_start))
        starts = intake.session.exec(
            select(began).where(
                col(CbtSession.tenant_id) == intake.tenant_id,
                col(CbtSession.patient_id) == patient_id,
                col(CbtSession.status) != "entered-in-error",
                began.is_not(None),
            )
        ).all()
        return sorted(starts)

    starts: list[datetime] = remembered(
        intake.session, (COUNTED, "visit starts", intake.tenant_id, patient_id), look_up
    )
    return starts


def _stored_session(intake: Intake, encounter: dict[str, Any], source: Any) -> CbtSession | None:
    """The visit Tandem already holds for this Encounter (by its id, or by the source identifier the reader
    found), or None for a new visit."""
    found: str | None = None
    if isinstance(encounter.get("id"), str):
        found = intake.resolve(f"Encounter/{encounter['id']}")
    if found is None and isinstance(source, dict):
        system, value = source.get("system"), source.get("value")
        if isinstance(system, str) and isinstance(value, str):
            stored = stored_by_source(intake.session, CbtSession, intake.tenant_id, system, value)
            found = stored.id if stored is not None else None
    row = intake.session.get(CbtSession, found) if found is not None else None
    return row if row is not None and row.tenant_id == intake.tenant_id else None
