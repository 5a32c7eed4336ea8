"""Loading the synthetic demo tenant through the same store functions the API uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from service.audit_trail import RequestContext
from service.auth.principal import Principal
from service.db.unit_of_work import unit_of_work
from service.demo import DemoTenant
from service.record_store import store
from service.record_store.kinds import (
    CBT_SESSIONS,
    ENROLLMENTS,
    KETAMINE_ADMINISTRATIONS,
    PATIENTS,
    PRACTITIONERS,
    QUESTIONNAIRE_RESPONSES,
    RecordKind,
)
from service.records.cbt import CbtSessionCreate
from service.records.questionnaire import QuestionnaireResponseCreate
from service.settings import Settings
from service.worklist.staff import link_staff

LOADER_SUBJECT = "tandem-demo-loader"
# The subjects the demo sign-in uses (service.web.sign_in), by the practitioner role each one is.
DEMO_STAFF = {"coordinator": "demo-coordinator", "psychiatrist": "demo-clinician"}


@dataclass
class LoadSummary:
    created: int = 0
    already_present: int = 0


def load_demo_tenant(
    engine: Engine,
    *,
    tenant_id: str,
    demo: DemoTenant,
    settings: Settings,
    advance: Callable[[], None] = lambda: None,
) -> LoadSummary:
    """Write every demo record; `advance` is called once per patient (for a progress bar)."""
    summary = LoadSummary()
    principal = Principal(subject=LOADER_SUBJECT, tenant_id=tenant_id, role="ehr-system", scopes=None)

    def write(session: Session, kind: RecordKind, payload: object) -> str:
        ctx = RequestContext(principal=principal, request_id="demo-load", settings=settings)
        public, created = store.create_record(session, ctx, kind, payload)  # type: ignore[arg-type]
        summary.created += created
        summary.already_present += not created
        return public.id

    with unit_of_work(engine) as session:
        coordinators = []
        subjects_linked: set[str] = set()
        for practitioner in demo.practitioners:
            practitioner_id = write(session, PRACTITIONERS, practitioner)
            if practitioner.role == "coordinator":
                coordinators.append(practitioner_id)
            # The demo sign-in's users are the first coordinator and the first psychiatrist, so "my patients" and
            # "escalated to me" on the worklist name someone.
            subject = DEMO_STAFF.get(practitioner.role)
            if subject is not None and subject not in subjects_linked:
                link_staff(session, tenant_id=tenant_id, subject=subject, practitioner_id=practitioner_id)
                subjects_linked.add(subject)
    for n, patient in enumerate(demo.patients):
        with unit_of_work(engine) as session:  # one unit per patient: a long load keeps what it loaded
            patient_id = write(session, PATIENTS, patient.patient)
            coordinator = coordinators[n % len(coordinators)] if coordinators else None
            enrollment = patient.enrollment.model_copy(update={"patient_id": patient_id, "coordinator_id": coordinator})
            enrollment_id = write(session, ENROLLMENTS, enrollment)
            for record in patient.records:
                kind = _kind_of(record)
                linked = record.model_copy(update={"patient_id": patient_id, "enrollment_id": enrollment_id})
                write(session, kind, linked)
            advance()
    return summary


def _kind_of(record: object) -> RecordKind:
    if isinstance(record, QuestionnaireResponseCreate):
        return QUESTIONNAIRE_RESPONSES
    if isinstance(record, CbtSessionCreate):
        return CBT_SESSIONS
    return KETAMINE_ADMINISTRATIONS
