"""Recording that an esketamine session's REMS monitoring form was submitted (service/rems/session_form.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from service.api.deps import SessionDep, context_for
from service.api.problems import WRITE_ERROR_RESPONSES
from service.api.records import API_PREFIX
from service.audit_trail import RequestContext
from service.auth.scopes import needs
from service.record_store.kinds import CLINICIANS
from service.rems.session_form import SESSION_KIND, RemsSubmission, RemsSubmissionRecorded, record_submission

router = APIRouter(prefix=API_PREFIX, tags=["rems"])
RecordsSubmission = Annotated[
    RequestContext,
    Depends(context_for("update", SESSION_KIND, CLINICIANS, scopes=needs("Patient.r", "MedicationAdministration.ru"))),
]


@router.post(
    "/ketamine-administrations/{session_id}/rems-form/submission",
    operation_id="recordRemsFormSubmission",
    summary="Record when the clinic submitted the session's SPRAVATO REMS monitoring form (esketamine only; "
    "Tandem does not submit it); a second call changes nothing (already_recorded)",
    response_model=RemsSubmissionRecorded,
    responses=WRITE_ERROR_RESPONSES,
)
def record_rems_submission(
    session_id: str, request: RemsSubmission, response: Response, session: SessionDep, ctx: RecordsSubmission
) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return record_submission(session, ctx, session_id, request.submitted_at)
