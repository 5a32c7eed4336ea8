"""The service's *Public models satisfy the mapping protocols as they are: `make typecheck` (mypy, which covers
tests/) checks the assignments below, so a model that stops fitting fails the type check, not a test run."""

from __future__ import annotations

from fhir_mappings import (
    CbtSessionRecord,
    EnrollmentRecord,
    KetamineAdministrationRecord,
    PatientRecord,
    QuestionnaireResponseRecord,
    ScoreLike,
)
from service.instruments import Score
from service.records.cbt import CbtSessionPublic
from service.records.enrollment import EnrollmentPublic
from service.records.ketamine import KetamineAdministrationPublic
from service.records.patient import PatientPublic
from service.records.questionnaire import QuestionnaireResponsePublic, StoredScore


def fits(
    patient: PatientPublic,
    enrollment: EnrollmentPublic,
    administration: KetamineAdministrationPublic,
    session: CbtSessionPublic,
    response: QuestionnaireResponsePublic,
    score: Score,
    stored: StoredScore,
) -> None:
    """Never called: mypy checks these assignments."""
    _patient: PatientRecord = patient
    _enrollment: EnrollmentRecord = enrollment
    _administration: KetamineAdministrationRecord = administration
    _session: CbtSessionRecord = session
    _response: QuestionnaireResponseRecord = response
    _score: ScoreLike = score
    _stored: ScoreLike = stored
