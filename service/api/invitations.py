"""Self-report invitations (service/self_report/invitations.py): send one, list a patient's, cancel one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Response

from service import clock
from service.api.deps import SessionDep, context_for
from service.api.problems import ERROR_RESPONSES, WRITE_ERROR_RESPONSES
from service.api.records import API_PREFIX
from service.audit_trail import RequestContext
from service.auth.principal import Role
from service.auth.scopes import needs
from service.records.tenant import Tenant
from service.self_report import invitations
from service.self_report.invitations import (
    INVITATION_KIND,
    InvitationCreated,
    InvitationPublic,
    InvitationRequest,
    PatientInvitations,
)

router = APIRouter(prefix=API_PREFIX, tags=["self-report"])
# The care team sends them; a hospital's EHR may too (its own reminders, a visit's workflow).
SENDERS: frozenset[Role] = frozenset({"clinician", "coordinator", "ehr-system"})
# In FHIR terms, asking a patient to fill in a questionnaire is a Task (SDC); its answers a QuestionnaireResponse.
Reads = Annotated[
    RequestContext, Depends(context_for("list", INVITATION_KIND, SENDERS, scopes=needs("Patient.r", "Task.rs")))
]
Sends = Annotated[
    RequestContext, Depends(context_for("create", INVITATION_KIND, SENDERS, scopes=needs("Patient.r", "Task.cu")))
]
INVITATIONS = "/patients/{patient_id}/invitations"


@router.post(
    INVITATIONS,
    operation_id="sendInvitation",
    summary="Send the patient a questionnaire: a single-use link, delivered on the channel asked (the link is in "
    "this answer only)",
    status_code=201,
    response_model=InvitationCreated,
    responses=WRITE_ERROR_RESPONSES,
)
def send(patient_id: str, request: InvitationRequest, response: Response, session: SessionDep, ctx: Sends) -> Any:
    response.headers["Cache-Control"] = "no-store"
    now = clock.now_utc()
    due = request.due_date or _today(session, ctx.tenant_id, now)
    sent = invitations.send_invitation(
        session, ctx, patient_id, request.instrument, due, request.channel, now=now, enrollment_id=request.enrollment_id
    )
    return invitations.created(sent, ctx.settings, now)


@router.get(INVITATIONS, operation_id="listInvitations", summary="The questionnaires sent to the patient, newest "
            "first, each sent, opened, partially answered, completed, expired or cancelled",
            response_model=PatientInvitations, responses=ERROR_RESPONSES)  # fmt: skip
def list_all(patient_id: str, response: Response, session: SessionDep, ctx: Reads) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return invitations.list_invitations(session, ctx, patient_id, now=clock.now_utc())


@router.post(
    f"{INVITATIONS}/{{invitation_id}}/cancel",
    operation_id="cancelInvitation",
    summary="Cancel an open invitation: its link stops working and nothing more is sent",
    response_model=InvitationPublic,
    responses=WRITE_ERROR_RESPONSES,
)
def cancel(patient_id: str, invitation_id: str, response: Response, session: SessionDep, ctx: Sends) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return invitations.cancel_invitation(session, ctx, patient_id, invitation_id, now=clock.now_utc())


def _today(session: SessionDep, tenant_id: str, now: datetime) -> Any:
    tenant = session.get(Tenant, tenant_id)
    return now.astimezone(ZoneInfo(tenant.time_zone if tenant else "UTC")).date()
