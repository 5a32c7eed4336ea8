"""The intakes of Patient, MedicationAdministration, Encounter, Appointment and a total-score Observation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

import fhir_mappings as fm
from service.records.appointment import AppointmentCreate
from service.records.cbt import CbtSession, CbtSessionCreate
from service.records.ketamine import KetamineAdministrationCreate
from service.records.patient import PatientCreate
from service.records.questionnaire import QuestionnaireResponseCreate

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
    return validated(PatientCreate, body, "Patient")


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
    body = mapped(
        lambda: fm.session_from_fhir(
            resource,
            canonical_base=intake.canonical_base,
            resolve_patient=intake.resolve,
            resolve_reference=intake.resolve,
            source_system=intake.source_system,
            session_number=_next_session_number(intake, resource),
        )
    )
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


def take_score_observation(intake: Intake, resource: dict[str, Any]) -> QuestionnaireResponseCreate:
    """A total score sent on its own (a flowsheet row, US Core's total Observation): a total-only response."""
    body = mapped(
        lambda: fm.score_observation_from_fhir(
            resource,
            canonical_base=intake.canonical_base,
            resolve_patient=intake.resolve,
            source_system=intake.source_system,
        )
    )
    return validated(QuestionnaireResponseCreate, body, "Observation")


def _next_session_number(intake: Intake, encounter: dict[str, Any]) -> int:
    """An EHR-born visit carries no session number of ours: it becomes the patient's next one."""
    subject = encounter.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    patient_id = intake.resolve(reference) if isinstance(reference, str) else None
    if patient_id is None:
        return 1
    count = intake.session.exec(
        select(func.count())
        .select_from(CbtSession)
        .where(col(CbtSession.tenant_id) == intake.tenant_id, col(CbtSession.patient_id) == patient_id)
    ).one()
    return int(count) + 1
