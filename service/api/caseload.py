"""Plan status, the caseload registry, flag acknowledgement and protocols."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import AwareDatetime

from service import patient_status
from service.api.deps import SessionDep, SettingsDep, context_for
from service.api.problems import ERROR_RESPONSES, WRITE_ERROR_RESPONSES
from service.api.records import API_PREFIX
from service.audit_trail import RequestContext
from service.auth.scopes import needs
from service.caseload.patient_search import MAX_SEARCH_LENGTH
from service.caseload.protocols import add_protocol, available_protocols
from service.caseload.query import CaseloadFilters, CaseloadPage, SortKey, read_caseload
from service.errors import invalid
from service.plan_status import ESKETAMINE_CBT, Protocol
from service.record_store.kinds import ADMINS, CARE_TEAM, CLINICIANS
from service.records.base import DateOrTimeText

router = APIRouter(prefix=API_PREFIX, tags=["plan status"])
# Plan status is what /fhir serves as the patient's CarePlan and Flags; protocols are PlanDefinitions.
PLAN = needs("Patient.r", "CarePlan.r", "Flag.r")
CASELOAD = needs("Patient.s", "CarePlan.s", "Flag.s")
ReadsStatus = Annotated[RequestContext, Depends(context_for("read", "plan-status", CARE_TEAM, scopes=PLAN))]
ReadsCaseload = Annotated[RequestContext, Depends(context_for("list", "caseload", CARE_TEAM, scopes=CASELOAD))]
Acknowledges = Annotated[
    RequestContext, Depends(context_for("create", "flag-acknowledgements", CLINICIANS, scopes=needs("Flag.u")))
]
ReadsProtocols = Annotated[
    RequestContext, Depends(context_for("list", "protocols", CARE_TEAM | ADMINS, scopes=needs("PlanDefinition.s")))
]
WritesProtocols = Annotated[
    RequestContext, Depends(context_for("create", "protocols", ADMINS, scopes=needs("PlanDefinition.c")))
]


@router.get(
    "/patients/{patient_id}/plan-status",
    operation_id="readPlanStatus",
    summary="The patient's combined-plan status with its reasons (as stored, or as of an earlier instant)",
    response_model=patient_status.PatientPlanStatus,
    responses=ERROR_RESPONSES,
)
def read_plan_status(
    patient_id: str,
    response: Response,
    session: SessionDep,
    ctx: ReadsStatus,
    as_of: Annotated[
        AwareDatetime | None,
        DateOrTimeText,
        Query(description="Recompute as of this instant from the records stored now (history)"),
    ] = None,
) -> Any:
    response.headers["Cache-Control"] = "no-store"
    if as_of is not None and not 1900 <= as_of.year <= 2200:
        raise invalid("query.as_of", "must be between the years 1900 and 2200")
    return patient_status.read_plan_status(session, ctx, patient_id, as_of)


@router.post(
    "/patients/{patient_id}/flag-acknowledgements",
    operation_id="acknowledgeFlag",
    summary="A clinician acknowledges one occurrence of a flag; a new occurrence opens a new flag",
    status_code=201,
    response_model=patient_status.PatientPlanStatus,
    responses=WRITE_ERROR_RESPONSES,
)
def acknowledge_flag(
    patient_id: str,
    request: patient_status.FlagAcknowledgementRequest,
    response: Response,
    session: SessionDep,
    ctx: Acknowledges,
) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return patient_status.acknowledge_flag(session, ctx, patient_id, request)


@router.get(
    "/caseload",
    operation_id="readCaseload",
    summary="The caseload registry: one row per enrollment, most urgent first",
    response_model=CaseloadPage,
    responses=ERROR_RESPONSES,
)
def caseload(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    ctx: ReadsCaseload,
    status: Annotated[str | None, Query(max_length=24)] = None,
    phase: Annotated[str | None, Query(max_length=24)] = None,
    flag: Annotated[str | None, Query(max_length=64, description="An open flag's reason code")] = None,
    coordinator_id: Annotated[str | None, Query(max_length=64)] = None,
    protocol_id: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_SEARCH_LENGTH,
            description="A name (every word, accents and case ignored), an MRN (exact) or a date of birth (YYYY-MM-DD)",
        ),
    ] = None,
    sort: SortKey = "urgency",
    descending: bool = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int | None, Query(ge=1)] = None,
) -> Any:
    response.headers["Cache-Control"] = "no-store"
    filters = CaseloadFilters(
        page_size=min(page_size or settings.default_page_size, settings.max_page_size),
        page=page,
        status=status,
        phase=phase,
        flag=flag,
        coordinator_id=coordinator_id,
        protocol_id=protocol_id,
        search=q,
        sort=sort,
        descending=descending,
    )
    return read_caseload(session, ctx, filters)


@router.get(
    "/protocols",
    operation_id="listProtocols",
    summary="Protocols available to the tenant: built in and its own, every version",
    response_model=list[Protocol],
    responses=ERROR_RESPONSES,
)
def list_protocols(session: SessionDep, ctx: ReadsProtocols) -> Any:
    return available_protocols(session, ctx.tenant_id)


@router.post(
    "/protocols",
    operation_id="addProtocol",
    summary="Add a protocol (or a new version of one); validated, and never changed in place",
    status_code=201,
    response_model=Protocol,
    responses=WRITE_ERROR_RESPONSES,
)
def create_protocol(
    protocol: Annotated[Protocol, Body(examples=[ESKETAMINE_CBT.model_dump(mode="json") | {"version": "2-site"}])],
    session: SessionDep,
    ctx: WritesProtocols,
) -> Any:
    return add_protocol(session, tenant_id=ctx.tenant_id, protocol=protocol, author=ctx.principal.subject)
