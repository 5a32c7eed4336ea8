"""Instrument definitions (published as FHIR Questionnaires) and the tenant's registered external Questionnaires."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service import questionnaires
from service.api.deps import SessionDep, context_for
from service.api.operation_outcome import FHIR_JSON
from service.api.problems import ERROR_RESPONSES, WRITE_ERROR_RESPONSES
from service.api.records import API_PREFIX
from service.audit_trail import RequestContext
from service.auth.principal import ROLES
from service.auth.scopes import needs
from service.errors import RecordNotFound
from service.instruments import INSTRUMENTS, Instrument, questionnaire_resource
from service.record_store.kinds import STAFF_ADMINS

router = APIRouter(prefix=API_PREFIX, tags=["instruments"])
ListsInstruments = Annotated[
    RequestContext, Depends(context_for("list", "instruments", frozenset(ROLES), scopes=needs("Questionnaire.s")))
]
ReadsInstrument = Annotated[
    RequestContext, Depends(context_for("read", "instruments", frozenset(ROLES), scopes=needs("Questionnaire.r")))
]
RegistersQuestionnaires = Annotated[
    RequestContext, Depends(context_for("create", "questionnaires", STAFF_ADMINS, scopes=needs("Questionnaire.c")))
]
ReadsQuestionnaires = Annotated[
    RequestContext, Depends(context_for("list", "questionnaires", frozenset(ROLES), scopes=needs("Questionnaire.s")))
]


class Band(BaseModel):
    low: float
    high: float
    label: str


class InstrumentSummary(BaseModel):
    key: str = Field(description="Use as `instrument` in questionnaire responses")
    title: str
    version: str
    canonical: str = Field(description="Canonical URL of the published Questionnaire")
    panel_loinc: str | None
    total_loinc: str | None
    min_total: float
    max_total: float
    severity_bands: list[Band]
    remission: str | None = Field(description="e.g. '< 5'")
    externally_scored: bool = Field(description="Licensed instruments: only a total is recorded, never item text")


def _summary(instrument: Instrument) -> InstrumentSummary:
    remission = instrument.remission
    return InstrumentSummary(
        key=instrument.key,
        title=instrument.title,
        version=instrument.version,
        canonical=instrument.canonical,
        panel_loinc=instrument.panel_loinc,
        total_loinc=instrument.total_loinc,
        min_total=instrument.min_total,
        max_total=instrument.max_total,
        severity_bands=[Band(low=b.low, high=b.high, label=b.label) for b in instrument.bands],
        remission=f"{remission.comparator} {remission.value:g}" if remission else None,
        externally_scored=instrument.externally_scored,
    )


@router.get(
    "/instruments",
    operation_id="listInstruments",
    summary="The questionnaire instruments the service scores",
    response_model=list[InstrumentSummary],
    responses=ERROR_RESPONSES,
)
def list_instruments(ctx: ListsInstruments) -> list[InstrumentSummary]:
    return [_summary(instrument) for instrument in INSTRUMENTS.values()]


@router.get(
    "/instruments/{key}",
    operation_id="readInstrumentQuestionnaire",
    summary="An instrument as a FHIR R4 Questionnaire (LOINC-coded where LOINC exists, with ordinal values)",
    response_class=JSONResponse,
    responses={200: {"content": {FHIR_JSON: {}}, "description": "FHIR R4 Questionnaire"}, **ERROR_RESPONSES},
)
def read_instrument(key: str, ctx: ReadsInstrument) -> JSONResponse:
    instrument = INSTRUMENTS.get(key)
    if instrument is None:
        raise RecordNotFound("instrument", key)
    return JSONResponse(questionnaire_resource(instrument), media_type=FHIR_JSON)


@router.post(
    "/questionnaires",
    operation_id="registerQuestionnaire",
    summary="Register a forms tool's Questionnaire so responses to it are scored as one of our instruments",
    status_code=201,
    response_model=questionnaires.RegisteredQuestionnairePublic,
    responses=WRITE_ERROR_RESPONSES,
)
def register_questionnaire(
    registration: questionnaires.QuestionnaireRegistration, session: SessionDep, ctx: RegistersQuestionnaires
) -> Any:
    return questionnaires.register_questionnaire(session, tenant_id=ctx.tenant_id, registration=registration)


@router.get(
    "/questionnaires",
    operation_id="listRegisteredQuestionnaires",
    summary="The tenant's registered external Questionnaires",
    response_model=list[questionnaires.RegisteredQuestionnairePublic],
    responses=ERROR_RESPONSES,
)
def list_registered_questionnaires(session: SessionDep, ctx: ReadsQuestionnaires) -> Any:
    return questionnaires.list_registered(session, tenant_id=ctx.tenant_id)
