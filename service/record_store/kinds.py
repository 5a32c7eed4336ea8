"""The record kinds the service stores, described once; the store and the routes are driven by these."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from service import questionnaires
from service.audit_trail import RequestContext
from service.auth.principal import Role
from service.caseload.enrollment_protocol import pinned_protocol
from service.intake import from_request, take_questionnaire_response
from service.intake.patient_match import patient_named_by_mrn
from service.record_fhir import KIND_FHIR, Kind
from service.records import appointment, cbt, enrollment, ketamine, patient, practitioner, questionnaire, vital_sign
from service.records.base import ApiModel, PatientRecord, RecordMeta, TenantRecord

Columns = dict[str, Any]

CARE_TEAM: frozenset[Role] = frozenset({"ehr-system", "clinician", "coordinator"})
PRESCRIBERS: frozenset[Role] = frozenset({"ehr-system", "clinician"})
SCHEDULERS: frozenset[Role] = frozenset({"ehr-system", "clinician", "coordinator"})
STAFF_ADMINS: frozenset[Role] = frozenset({"ehr-system", "admin"})
ADMINS: frozenset[Role] = frozenset({"admin"})
# Only a clinician may close an urgent flag (CLINICAL.md section 4).
CLINICIANS: frozenset[Role] = frozenset({"clinician"})


@dataclass(frozen=True)
class Reference:
    """A field that names another record of the same tenant (and, where it says so, of the same patient)."""

    field: str
    table: type[TenantRecord]
    label: str
    same_patient: bool = False


@dataclass(frozen=True)
class StoredKind:
    """A table the store creates, reads, lists and updates and the generic /api/v1 routes serve: the clinical
    record kinds (RecordKind) and administration tables (EHR sync targets, service/sync/target_kind.py)."""

    label: str  # in messages: "ketamine administration"
    path: str  # in URLs: "ketamine-administrations"
    schema_name: str  # in operation ids: "KetamineAdministration"
    table: type[TenantRecord]
    fields_schema: type[ApiModel]
    create_schema: type[ApiModel]
    public_schema: type[RecordMeta]
    time_column: str  # what date filters and ordering use
    readers: frozenset[Role]
    writers: frozenset[Role]
    references: tuple[Reference, ...] = ()
    immutable: frozenset[str] = frozenset({"patient_id"})
    patient_scoped: bool = True
    has_status: bool = True
    # The label's indefinite article, said, not spelled: "an EHR sync target", "an enrollment".
    article: str = "a"
    # Hooks where the API shape is not the columns: flatten before writing, expand after reading.
    to_columns: Callable[[Columns], Columns] = field(default=lambda values: values)
    from_columns: Callable[[Columns], Columns] = field(default=lambda values: values)
    # Columns the service derives from what was sent (a questionnaire's score); may refuse the values.
    derive: Callable[[Session, RequestContext, Columns], Columns] = field(default=lambda session, ctx, values: values)
    # Turns a FHIR resource sent to the JSON API (application/fhir+json) into a create request.
    from_fhir: Callable[[Session, RequestContext, dict[str, Any]], ApiModel] | None = None
    save_children: Callable[[Session, TenantRecord, Columns], None] | None = None
    load_children: Callable[[Session, Sequence[TenantRecord]], Mapping[str, Columns]] | None = None
    # Children are part of the API shape but not columns, so they are split off before writing.
    child_fields: frozenset[str] = frozenset()
    # The stored record a new one sent without a source identifier is (a patient named only by its MRN).
    match_unsourced: Callable[[Session, str, Columns], TenantRecord | None] | None = None

    @property
    def a_label(self) -> str:
        """The label with its article, for summaries and messages: "an enrollment", "a CBT session"."""
        return f"{self.article} {self.label}"

    def patient_of(self, row: TenantRecord) -> str | None:
        if not self.patient_scoped:
            return None
        return row.patient_id if isinstance(row, PatientRecord) else row.id

    @property
    def fhir_type(self) -> str | None:
        """The FHIR type these records are served as: SMART scopes name it on /api/v1 as on /fhir. None: not
        clinical data, so routes on it are role-only."""
        return None


@dataclass(frozen=True)
class RecordKind(StoredKind):
    """A clinical record kind: published as FHIR (the record⇄FHIR table), sent to EHRs, part of a patient's plan."""

    # A patient's own details (name, MRNs) do not enter the plan status: only their records trigger a refresh.
    enters_plan_status: bool = True

    @property
    def kind(self) -> Kind:
        return Kind(self.path)

    @property
    def fhir_type(self) -> str:
        return KIND_FHIR[self.kind].fhir_type


_patient_ref = Reference("patient_id", patient.Patient, "patient")
_enrollment_ref = Reference("enrollment_id", enrollment.Enrollment, "enrollment", same_patient=True)


def _practitioner_ref(field_name: str) -> Reference:
    return Reference(field_name, practitioner.Practitioner, "practitioner")


PATIENTS = RecordKind(
    label="patient",
    path=Kind.PATIENTS,
    schema_name="Patient",
    table=patient.Patient,
    fields_schema=patient.PatientFields,
    create_schema=patient.PatientCreate,
    public_schema=patient.PatientPublic,
    time_column="created_at",
    readers=CARE_TEAM,
    writers=PRESCRIBERS,
    immutable=frozenset(),
    has_status=False,
    enters_plan_status=False,
    save_children=patient.save_identifiers,
    load_children=patient.load_identifiers,
    child_fields=frozenset({"identifiers"}),
    match_unsourced=patient_named_by_mrn,
    to_columns=patient.with_name_key,
    from_columns=patient.without_name_key,
)

PRACTITIONERS = RecordKind(
    label="practitioner",
    path=Kind.PRACTITIONERS,
    schema_name="Practitioner",
    table=practitioner.Practitioner,
    fields_schema=practitioner.PractitionerFields,
    create_schema=practitioner.PractitionerCreate,
    public_schema=practitioner.PractitionerPublic,
    time_column="created_at",
    readers=CARE_TEAM | {"admin"},
    writers=STAFF_ADMINS,
    immutable=frozenset(),
    patient_scoped=False,
    has_status=False,
)

ENROLLMENTS = RecordKind(
    label="enrollment",
    article="an",
    path=Kind.ENROLLMENTS,
    schema_name="Enrollment",
    table=enrollment.Enrollment,
    fields_schema=enrollment.EnrollmentFields,
    create_schema=enrollment.EnrollmentCreate,
    public_schema=enrollment.EnrollmentPublic,
    time_column="created_at",
    readers=CARE_TEAM,
    writers=SCHEDULERS,
    references=(_patient_ref, _practitioner_ref("coordinator_id")),
    derive=pinned_protocol,
    to_columns=enrollment.condition_to_columns,
    from_columns=enrollment.condition_from_columns,
)

KETAMINE_ADMINISTRATIONS = RecordKind(
    label="ketamine administration",
    path=Kind.KETAMINE_ADMINISTRATIONS,
    schema_name="KetamineAdministration",
    table=ketamine.KetamineAdministration,
    fields_schema=ketamine.KetamineAdministrationFields,
    create_schema=ketamine.KetamineAdministrationCreate,
    public_schema=ketamine.KetamineAdministrationPublic,
    time_column="started_at",
    readers=CARE_TEAM,
    writers=PRESCRIBERS,
    references=(_patient_ref, _enrollment_ref, _practitioner_ref("performer_id")),
)

CBT_SESSIONS = RecordKind(
    label="CBT session",
    path=Kind.CBT_SESSIONS,
    schema_name="CbtSession",
    table=cbt.CbtSession,
    fields_schema=cbt.CbtSessionFields,
    create_schema=cbt.CbtSessionCreate,
    public_schema=cbt.CbtSessionPublic,
    time_column="planned_start",
    readers=CARE_TEAM,
    writers=SCHEDULERS,
    references=(_patient_ref, _enrollment_ref, _practitioner_ref("therapist_id")),
)

QUESTIONNAIRE_RESPONSES = RecordKind(
    label="questionnaire response",
    path=Kind.QUESTIONNAIRE_RESPONSES,
    schema_name="QuestionnaireResponse",
    table=questionnaire.QuestionnaireResponse,
    fields_schema=questionnaire.QuestionnaireResponseFields,
    create_schema=questionnaire.QuestionnaireResponseCreate,
    public_schema=questionnaire.QuestionnaireResponsePublic,
    time_column="authored_at",
    readers=CARE_TEAM,
    # Coordinators in collaborative care take PHQ-9s by phone, so they record responses too.
    writers=CARE_TEAM,
    derive=questionnaires.scored_columns,
    from_columns=questionnaires.score_from_columns,
    from_fhir=from_request(take_questionnaire_response),
    references=(
        _patient_ref,
        _enrollment_ref,
        Reference(
            "ketamine_administration_id",
            ketamine.KetamineAdministration,
            "ketamine administration",
            same_patient=True,
        ),
        Reference("cbt_session_id", cbt.CbtSession, "CBT session", same_patient=True),
    ),
)

APPOINTMENTS = RecordKind(
    label="appointment",
    article="an",
    path=Kind.APPOINTMENTS,
    schema_name="Appointment",
    table=appointment.Appointment,
    fields_schema=appointment.AppointmentFields,
    create_schema=appointment.AppointmentCreate,
    public_schema=appointment.AppointmentPublic,
    time_column="start",
    readers=CARE_TEAM,
    writers=SCHEDULERS,
    references=(_patient_ref, _enrollment_ref, _practitioner_ref("practitioner_id")),
)

VITAL_SIGNS = RecordKind(
    label="vital sign",
    path=Kind.VITAL_SIGNS,
    schema_name="VitalSign",
    table=vital_sign.VitalSign,
    fields_schema=vital_sign.VitalSignFields,
    create_schema=vital_sign.VitalSignCreate,
    public_schema=vital_sign.VitalSignPublic,
    time_column="taken_at",
    readers=CARE_TEAM,
    writers=PRESCRIBERS,
    references=(
        _patient_ref,
        Reference(
            "ketamine_administration_id",
            ketamine.KetamineAdministration,
            "ketamine administration",
            same_patient=True,
        ),
    ),
)

RECORD_KINDS: tuple[RecordKind, ...] = (
    PATIENTS,
    PRACTITIONERS,
    ENROLLMENTS,
    KETAMINE_ADMINISTRATIONS,
    CBT_SESSIONS,
    QUESTIONNAIRE_RESPONSES,
    APPOINTMENTS,
    VITAL_SIGNS,
)


def kind_of(payload: ApiModel) -> RecordKind | None:
    """The record kind a create request is for (an intake's result): the kind whose create schema it is. One FHIR
    type may become several kinds (an Observation: a score or a vital sign)."""
    return next((kind for kind in RECORD_KINDS if type(payload) is kind.create_schema), None)
