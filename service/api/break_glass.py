"""Break-the-glass access to restricted patients: start (clinicians), end early, review (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from service.api.deps import SessionDep, SettingsDep, context_for
from service.api.problems import ERROR_RESPONSES, WRITE_ERROR_RESPONSES
from service.api.records import API_PREFIX
from service.audit_trail import RequestContext
from service.auth.scopes import needs
from service.break_glass.grants import (
    BreakGlassGrantPublic,
    BreakGlassRequest,
    end_break_glass,
    list_grants,
    start_break_glass,
)
from service.record_store.kinds import ADMINS, CLINICIANS

router = APIRouter(prefix=API_PREFIX, tags=["break the glass"])
# A grant is an emergency override of the patient's access policy: a FHIR Consent.
Starts = Annotated[RequestContext, Depends(context_for("create", "break-glass", CLINICIANS, scopes=needs("Consent.c")))]
Ends = Annotated[RequestContext, Depends(context_for("update", "break-glass", CLINICIANS, scopes=needs("Consent.u")))]
Reviews = Annotated[
    RequestContext, Depends(context_for("list", "break-glass", CLINICIANS | ADMINS, scopes=needs("Consent.s")))
]


@router.post(
    "/patients/{patient_id}/break-the-glass",
    operation_id="breakTheGlass",
    summary="A clinician opens time-boxed, audited access to a restricted patient, stating why",
    status_code=201,
    response_model=BreakGlassGrantPublic,
    responses=WRITE_ERROR_RESPONSES,
)
def break_the_glass(
    patient_id: str, request: BreakGlassRequest, response: Response, session: SessionDep, ctx: Starts
) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return start_break_glass(session, ctx, patient_id, request)


@router.post(
    "/break-glass-grants/{grant_id}/end",
    operation_id="endBreakTheGlass",
    summary="The clinician who holds a grant ends it before it expires",
    response_model=BreakGlassGrantPublic,
    responses=WRITE_ERROR_RESPONSES,
)
def end_grant(grant_id: str, response: Response, session: SessionDep, ctx: Ends) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return end_break_glass(session, ctx, grant_id)


@router.get(
    "/break-glass-grants",
    operation_id="listBreakTheGlassGrants",
    summary="Grants with their reasons, newest first: all of the tenant's for admins, a clinician's own",
    response_model=list[BreakGlassGrantPublic],
    responses=ERROR_RESPONSES,
)
def review_grants(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    ctx: Reviews,
    active: Annotated[bool, Query(description="Only grants still open")] = False,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Any:
    response.headers["Cache-Control"] = "no-store"
    page_size = min(limit or settings.max_page_size, settings.max_page_size)
    return list_grants(session, ctx, active_only=active, limit=page_size)
