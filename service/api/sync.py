"""Admin routes of the EHR sync: target status, dead letters (list, inspect, replay), dry run, pull now, the
quarantine of pulled resources Tandem refused (list, retry).

(No `from __future__ import annotations`: FastAPI reads the annotations at run time.)
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import RowNumber, SessionDep, context_for, get_engine
from service.api.problems import ERROR_RESPONSES, PROBLEM_JSON, WRITE_ERROR_RESPONSES, Problem
from service.audit_trail import RequestContext, record_success
from service.break_glass.access import ensure_visible
from service.errors import NotConfigured, RecordNotFound, invalid
from service.record_fhir import Kind
from service.record_store.kinds import ADMINS
from service.records.sync_target import SyncTarget
from service.sync import credentials
from service.sync import status as sync_status
from service.sync.capabilities import decide
from service.sync.client import FhirClient
from service.sync.dry_run import dry_run_requests
from service.sync.outcomes import TARGET_FAILURES, DeliveryFailure
from service.sync.planning import RecordPlan, plan_for_target
from service.sync.processing import Processor
from service.sync.pull import pull
from service.sync.quarantine import list_quarantined, retry_for_target
from service.sync.records import patient_of, public_record
from service.sync.target_failures import explain
from service.sync.targets import CredentialWrite

router = APIRouter(prefix="/api/v1/sync", tags=["EHR sync"])
TARGET_FAILED_RESPONSE: dict[str, object] = {
    "model": Problem,
    "content": {PROBLEM_JSON: {}},
    "description": "The target failed (no answer, a redirect, an error) or its credential is missing; the detail "
    "says what it did and what to do",
}
# Administration of the deployment, no clinical data: role only (scopes=None).
ReadContext = Annotated[RequestContext, Depends(context_for("read", "sync/targets", ADMINS, scopes=None))]
WriteContext = Annotated[RequestContext, Depends(context_for("update", "sync/targets", ADMINS, scopes=None))]


class DryRunRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"record_kind": "ketamine-administrations", "record_id": "6d1f3a2b-8c4e-4f5a-9b6c-7d8e9f0a1b2c"}
            ]
        },
    )

    record_kind: str = Field(description="e.g. ketamine-administrations")
    record_id: str


class DryRun(BaseModel):
    target_id: str
    mapping: str = Field(description="natural, fallback or not_supported")
    reason: str | None = Field(
        description="Why the fallback or not_supported; or why nothing would be sent now (a record it refers to is a "
        "dead letter the target does not hold: replay that first)"
    )
    requests: list[dict[str, Any]] = Field(description="The requests, in order; empty when nothing would be sent")


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"kinds": [Kind.PATIENTS.value]}, {}]})

    kinds: list[str] | None = Field(default=None, description="Default: the target's configured pull kinds")


class PullResult(BaseModel):
    target_id: str
    failed: bool = Field(description="Anything was refused (quarantined) or a search failed")
    errors: list[str] = Field(description="What failed before any search (the CapabilityStatement, no mrn_system)")
    kinds: dict[str, dict[str, Any]]


class QuarantineItem(BaseModel):
    id: int
    target_id: str
    resource_type: str
    remote_id: str = Field(description="The EHR's id of the resource")
    element: str = Field(description="Where the refusal is (e.g. Observation.code)")
    reason: str = Field(description="The refusal, naming the element and the fix")
    state: str = Field(description="refused (waiting), or accepted (a retry took it)")
    attempts: int
    first_seen: datetime
    last_seen: datetime
    record_id: str | None = Field(description="The record a retry made")
    resource: dict[str, Any] = Field(description="The resource as the EHR sent it")


class QuarantineRetry(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}, {"ids": [12, 13]}]})

    ids: list[int] | None = Field(default=None, description="Default: every refused item of the target")


class QuarantineRetryResult(BaseModel):
    accepted: list[int]
    refused: list[int]


def _audit(session: SessionDep, ctx: RequestContext, record_id: str | None = None) -> None:
    assert ctx.intent is not None
    ctx.intent.record_id = record_id
    record_success(session, ctx, status_code=200)


def _target(session: SessionDep, ctx: RequestContext, target_id: str) -> SyncTarget:
    target = session.get(SyncTarget, target_id)
    if target is None or target.tenant_id != ctx.tenant_id:
        raise RecordNotFound("EHR sync target", target_id)
    return target


@router.get(
    "/targets/{target_id}/status",
    operation_id="readSyncTargetStatus",
    summary="Delivery counts, last success and last error of a target",
    response_model=sync_status.TargetStatus,
    responses=ERROR_RESPONSES,
)
def read_status(target_id: str, session: SessionDep, ctx: ReadContext) -> sync_status.TargetStatus:
    result = sync_status.target_status(session, ctx.tenant_id, target_id)
    _audit(session, ctx, target_id)
    return result


@router.get(
    "/dead-letters",
    operation_id="listDeadLetters",
    summary="Messages given up on, with the EHR's OperationOutcome",
    response_model=list[sync_status.OutboxEntry],
    responses=ERROR_RESPONSES,
)
def list_dead(
    session: SessionDep,
    ctx: ReadContext,
    target_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[sync_status.OutboxEntry]:
    result = sync_status.list_dead_letters(session, ctx.tenant_id, target_id=target_id, limit=limit)
    _audit(session, ctx)
    return result


@router.get(
    "/messages/{outbox_id}",
    operation_id="readSyncMessage",
    summary="One outbox message with its request log",
    response_model=sync_status.OutboxDetail,
    responses=ERROR_RESPONSES,
)
def read_message(outbox_id: RowNumber, session: SessionDep, ctx: ReadContext) -> sync_status.OutboxDetail:
    result = sync_status.outbox_detail(session, ctx.tenant_id, outbox_id)
    _audit(session, ctx)
    return result


@router.post(
    "/dead-letters/{outbox_id}/replay",
    operation_id="replayDeadLetter",
    summary="Send one dead letter again",
    response_model=sync_status.ReplayResult,
    responses=WRITE_ERROR_RESPONSES,
)
def replay_one(outbox_id: RowNumber, session: SessionDep, ctx: WriteContext) -> sync_status.ReplayResult:
    count = sync_status.replay(session, ctx.tenant_id, outbox_id=outbox_id)
    _audit(session, ctx)
    return sync_status.ReplayResult(replayed=count)


@router.post(
    "/dead-letters/replay",
    operation_id="replayDeadLetters",
    summary="Send all dead letters again (optionally of one target)",
    response_model=sync_status.ReplayResult,
    responses=WRITE_ERROR_RESPONSES,
)
def replay_all(
    session: SessionDep, ctx: WriteContext, target_id: Annotated[str | None, Query(max_length=36)] = None
) -> sync_status.ReplayResult:
    count = sync_status.replay(session, ctx.tenant_id, target_id=target_id)
    _audit(session, ctx)
    return sync_status.ReplayResult(replayed=count)


@router.put(
    "/targets/{target_id}/credential",
    operation_id="writeSyncTargetCredential",
    summary="Write the bearer token this EHR issued to Tandem (sealed at rest, never shown again)",
    status_code=204,
    responses=WRITE_ERROR_RESPONSES,
)
def write_credential(target_id: str, body: CredentialWrite, session: SessionDep, ctx: WriteContext) -> Response:
    target = _target(session, ctx, target_id)
    if (target.auth or {}).get("kind") != "bearer":
        raise invalid("auth.kind", 'a token is written only for a target whose auth is {"kind": "bearer"}')
    try:
        credentials.write_token(ctx.settings, target, body.token)
    except credentials.CredentialError as error:
        raise NotConfigured(str(error)) from None
    _audit(session, ctx, target_id)
    return Response(status_code=204)


@router.delete(
    "/targets/{target_id}/credential",
    operation_id="deleteSyncTargetCredential",
    summary="Forget the target's bearer token (nothing is sent with its requests until one is written again)",
    status_code=204,
    responses=WRITE_ERROR_RESPONSES,
)
def delete_credential(target_id: str, session: SessionDep, ctx: WriteContext) -> Response:
    credentials.write_token(ctx.settings, _target(session, ctx, target_id), None)
    _audit(session, ctx, target_id)
    return Response(status_code=204)


@router.post(
    "/targets/{target_id}/dry-run",
    operation_id="dryRunSync",
    summary="The exact requests a record would produce for this target (nothing is written)",
    response_model=DryRun,
    responses={**WRITE_ERROR_RESPONSES, 502: TARGET_FAILED_RESPONSE},
)
def dry_run(
    target_id: str, body: DryRunRequest, session: SessionDep, ctx: ReadContext, engine: Any = Depends(get_engine)
) -> DryRun:
    target = _target(session, ctx, target_id)
    # The dry run shows the record's FHIR bodies: a restricted patient's stay hidden from admins too.
    record = public_record(session, ctx.tenant_id, body.record_kind, body.record_id)
    if record is not None:
        ensure_visible(session, ctx, patient_of(body.record_kind, record))
    processor = Processor(engine, ctx.settings, "dry-run")
    client = FhirClient(target, ctx.settings, http=processor.http)
    try:
        capabilities = processor.capabilities(client)
        [planned] = plan_for_target(
            session,
            tenant_id=ctx.tenant_id,
            target_id=target_id,
            rows=[(body.record_kind, body.record_id)],
            capabilities=capabilities,
            canonical_base=ctx.settings.canonical_base,
            code_map=target.code_map or {},
        )
    except TARGET_FAILURES as error:  # the target's failure, explained: a 502, not our 500
        raise explain(error, target) from None
    finally:
        client.close()
    if isinstance(planned, DeliveryFailure):  # held back by a dead letter: nothing would be sent
        mapping = decide(body.record_kind, capabilities).mapping
        result = DryRun(target_id=target_id, mapping=mapping, reason=str(planned), requests=[])
    else:
        plan, known, delivered = planned
        if isinstance(plan, RecordPlan):
            requests = dry_run_requests(plan, known, delivered, base_url=target.base_url, use_batch=capabilities.batch)
            decision = plan.decision
            result = DryRun(target_id=target_id, mapping=decision.mapping, reason=decision.reason, requests=requests)
        else:  # nothing would be sent: not supported, or nothing owed (a plan with no urgent finding now)
            mapping = decide(body.record_kind, capabilities).mapping if plan.status == "sent" else "not_supported"
            result = DryRun(target_id=target_id, mapping=mapping, reason=plan.reason, requests=[])
    _audit(session, ctx, body.record_id)
    return result


@router.post(
    "/targets/{target_id}/pull",
    operation_id="pullFromTarget",
    summary="Pull what the EHR recorded since the last pull",
    response_model=PullResult,
    responses=WRITE_ERROR_RESPONSES,
)
def pull_now(
    target_id: str, body: PullRequest, session: SessionDep, ctx: WriteContext, engine: Any = Depends(get_engine)
) -> PullResult:
    _target(session, ctx, target_id)
    session.rollback()
    summary = pull(engine, ctx.settings, target_id, body.kinds, tenant_id=ctx.tenant_id)
    _audit(session, ctx, target_id)
    return PullResult(
        target_id=target_id,
        failed=summary.failed,
        errors=summary.errors,
        kinds={k: vars(v) for k, v in summary.kinds.items()},
    )


@router.get(
    "/targets/{target_id}/quarantine",
    operation_id="listQuarantine",
    summary="Resources pulled from the target that Tandem refused, with the reason and the raw resource",
    response_model=list[QuarantineItem],
    responses=ERROR_RESPONSES,
)
def list_quarantine(
    target_id: str,
    session: SessionDep,
    ctx: ReadContext,
    state: Annotated[Literal["refused", "accepted"] | None, Query()] = "refused",
) -> list[QuarantineItem]:
    _target(session, ctx, target_id)
    rows = list_quarantined(session, ctx.tenant_id, target_id, state)
    _audit(session, ctx, target_id)
    return [QuarantineItem.model_validate(row, from_attributes=True) for row in rows]


@router.post(
    "/targets/{target_id}/quarantine/retry",
    operation_id="retryQuarantine",
    summary="Take the target's refused resources in again (after fixing the cause, e.g. its code map)",
    response_model=QuarantineRetryResult,
    responses=WRITE_ERROR_RESPONSES,
)
def retry_quarantine(
    target_id: str, body: QuarantineRetry, session: SessionDep, ctx: WriteContext
) -> QuarantineRetryResult:
    result = retry_for_target(session, ctx, target_id, body.ids)
    _audit(session, ctx, target_id)
    return QuarantineRetryResult(accepted=result.accepted, refused=result.refused)
