"""The service's *Public models satisfy the mapping protocols as they are (checked by mypy, run at test time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_public_models_satisfy_the_protocols() -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", str(Path(__file__))],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    assert result.returncode == 0, result.stdout
