"""Pure mappings between Tandem's records and HL7 FHIR R4 resources.

This package imports nothing from the service, the database or the web framework (a test enforces it).
Outbound functions take records (any object with the attributes of the protocols in `records`) and return
fhir.resources R4B models; `to_json` writes them as R4 4.0.1 JSON. Inbound functions take resource JSON and
return dicts shaped like the service's `*Create` bodies, or raise MappingError.
"""

from .administration import AdministrationResources, administration_fallback, administration_resources
from .administration_inbound import administration_from_fhir
from .appointment import appointment_from_fhir, appointment_resource
from .capabilities import SYSTEM, writable_types
from .care_plan import CarePlanResources, care_plan_resources
from .cbt_session import SessionResources, derived_visit_types, psychotherapy_cpt, session_resources
from .cbt_session_inbound import session_from_fhir
from .code_map import InboundCodeMap, add_standard_codings, code_map_problems, inbound_code_map
from .definitions import (
    CODE_SYSTEMS,
    EXTENSIONS,
    code_system_resource,
    extension_definition_resource,
    published_definitions,
)
from .errors import MappingError, operation_outcome
from .flag import safety_flag_resource
from .identity import for_ehr, identifier_system, resource_id, sub_resource_id
from .patient import display_name, kept_datatypes, patient_from_fhir, patient_resource
from .patient_contact import ContactSummary, contact_summary
from .progress_note import progress_note_resource
from .questionnaire_response import ResponseResources, questionnaire_canonical, response_resources
from .questionnaire_response_inbound import (
    SentAnswer,
    SentResponse,
    read_response,
    response_from_fhir,
    sent_answers,
    stored_answer,
    stored_questionnaire,
)
from .reading import ReferenceResolver, parse_reference
from .records import (
    AppointmentRecord,
    CbtSessionRecord,
    EnrollmentRecord,
    KetamineAdministrationRecord,
    PatientRecord,
    QuestionnaireResponseRecord,
    ScoreLike,
)
from .referral import NO_RULE, ReferralRule, is_programme_referral, referral_from_fhir, referral_resource
from .release import FHIR_VERSION, build, to_json
from .score_observation_inbound import (
    SentComponent,
    SentScoreObservation,
    fold_panel,
    is_survey,
    member_references,
    read_score_observation,
    score_codes,
)
from .urgent_message import urgent_finding_message
from .vital_signs import (
    VITAL_SIGN_CODES,
    SentValue,
    SentVitalSign,
    VitalSignRecord,
    read_vital_sign,
    vital_sign_code,
    vital_sign_resource,
)

__all__ = [
    "CODE_SYSTEMS",
    "EXTENSIONS",
    "FHIR_VERSION",
    "NO_RULE",
    "SYSTEM",
    "VITAL_SIGN_CODES",
    "AdministrationResources",
    "AppointmentRecord",
    "CarePlanResources",
    "CbtSessionRecord",
    "ContactSummary",
    "EnrollmentRecord",
    "InboundCodeMap",
    "KetamineAdministrationRecord",
    "MappingError",
    "PatientRecord",
    "QuestionnaireResponseRecord",
    "ReferenceResolver",
    "ReferralRule",
    "ResponseResources",
    "ScoreLike",
    "SentAnswer",
    "SentComponent",
    "SentResponse",
    "SentScoreObservation",
    "SentValue",
    "SentVitalSign",
    "SessionResources",
    "VitalSignRecord",
    "add_standard_codings",
    "administration_fallback",
    "administration_from_fhir",
    "administration_resources",
    "appointment_from_fhir",
    "appointment_resource",
    "build",
    "care_plan_resources",
    "code_map_problems",
    "code_system_resource",
    "contact_summary",
    "derived_visit_types",
    "display_name",
    "extension_definition_resource",
    "fold_panel",
    "for_ehr",
    "identifier_system",
    "inbound_code_map",
    "is_programme_referral",
    "is_survey",
    "kept_datatypes",
    "member_references",
    "operation_outcome",
    "parse_reference",
    "patient_from_fhir",
    "patient_resource",
    "progress_note_resource",
    "psychotherapy_cpt",
    "published_definitions",
    "questionnaire_canonical",
    "read_response",
    "read_score_observation",
    "read_vital_sign",
    "referral_from_fhir",
    "referral_resource",
    "resource_id",
    "response_from_fhir",
    "response_resources",
    "safety_flag_resource",
    "score_codes",
    "sent_answers",
    "session_from_fhir",
    "session_resources",
    "stored_answer",
    "stored_questionnaire",
    "sub_resource_id",
    "to_json",
    "urgent_finding_message",
    "vital_sign_code",
    "vital_sign_resource",
    "writable_types",
]
