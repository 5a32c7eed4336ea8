"""One intake per FHIR resource type Tandem takes in: resource JSON → a validated create request.

Every way a resource arrives calls the same function for its type: the FHIR facade (create, update), Bundle
entries, `tandem import`, the JSON API's application/fhir+json bodies and the EHR pull. fhir_mappings reads the
structure (pure); the instruments say what questionnaire answers mean; an `Origin` says whose ids the
references name. Refusals are InvalidRequest problems that keep the reader's OperationOutcome issue code.
"""

from __future__ import annotations

from .code_map import site_code_map, with_standard_codings
from .context import Intake, IntakeFunction, from_request, refused, take_in
from .observation import (
    BRANCHES,
    observation_role,
    take_observation,
    take_score_observation,
    writable_categories,
)
from .questionnaire_response import take_questionnaire_response
from .references import reference_resolver
from .referral import take_service_request
from .resources import (
    take_appointment,
    take_encounter,
    take_medication_administration,
    take_patient,
)
from .vital_signs import take_vital_sign

# FHIR type -> its intake. Practitioner and CarePlan are not taken in as FHIR: practitioners are staff records
# written on /api/v1, and an enrolment's CarePlan is derived from the enrolment (served, never written); an
# enrolment arrives as the referral ServiceRequest it answers.
INTAKES: dict[str, IntakeFunction] = {
    "Patient": take_patient,
    "MedicationAdministration": take_medication_administration,
    "Encounter": take_encounter,
    "QuestionnaireResponse": take_questionnaire_response,
    "ServiceRequest": take_service_request,
    "Appointment": take_appointment,
    # One intake, a branch per kind of Observation (service/intake/observation.py): scores, vital signs.
    "Observation": take_observation,
}

__all__ = [
    "BRANCHES",
    "INTAKES",
    "Intake",
    "IntakeFunction",
    "from_request",
    "observation_role",
    "reference_resolver",
    "refused",
    "site_code_map",
    "take_appointment",
    "take_encounter",
    "take_in",
    "take_medication_administration",
    "take_observation",
    "take_patient",
    "take_questionnaire_response",
    "take_score_observation",
    "take_service_request",
    "take_vital_sign",
    "with_standard_codings",
    "writable_categories",
]
