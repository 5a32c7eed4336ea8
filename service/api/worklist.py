"""The coordinator's worklist: today's tasks, and outreach, snooze, escalation and done on each."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from service.api.deps import SessionDep, context_for
from service.api.problems import ERROR_RESPONSES, WRITE_ERROR_RESPONSES
from service.api.records import API_PREFIX
from service.audit_trail import RequestContext
from service.auth.principal import Role
from service.auth.scopes import needs
from service.clock import now_utc
from service.worklist.actions import (
    EscalationRequest,
    OutreachLogged,
    OutreachRequest,
    SnoozeRequest,
    TaskState,
    complete_task,
    escalate_task,
    log_outreach,
    snooze_task,
    tenant_zone,
)
from service.worklist.tasks import View, Worklist, read_worklist

router = APIRouter(prefix=API_PREFIX, tags=["worklist"])
# The care team's people; an EHR system has no worklist and an administrator sees no clinical tasks.
WORKLIST_ROLES: frozenset[Role] = frozenset({"clinician", "coordinator"})
# A task is a FHIR Task about the patient's CarePlan and Flags.
READS = needs("Patient.s", "CarePlan.s", "Flag.s", "Task.s")
WRITES = needs("Task.u")
ReadsWorklist = Annotated[RequestContext, Depends(context_for("list", "worklist", WORKLIST_ROLES, scopes=READS))]
LogsOutreach = Annotated[
    RequestContext, Depends(context_for("create", "outreach-attempts", WORKLIST_ROLES, scopes=WRITES))
]
ChangesTask = Annotated[RequestContext, Depends(context_for("update", "worklist-tasks", WORKLIST_ROLES, scopes=WRITES))]
TaskId = Annotated[str, Path(max_length=64, description="A task's id, from the worklist")]


@router.get(
    "/worklist",
    operation_id="readWorklist",
    summary="Today's tasks: open urgent findings first (oldest first), then overdue items, then what is due today",
    response_model=Worklist,
    responses=ERROR_RESPONSES,
)
def worklist(response: Response, session: SessionDep, ctx: ReadsWorklist, view: View = "mine") -> Any:
    response.headers["Cache-Control"] = "no-store"
    return read_worklist(session, ctx, view=view, now=now_utc(), zone=tenant_zone(session, ctx.tenant_id))


@router.post(
    "/worklist/tasks/{task_id}/outreach",
    operation_id="logOutreach",
    summary="Log an attempt to reach the patient about a task (channel, outcome, note)",
    status_code=201,
    response_model=OutreachLogged,
    responses=WRITE_ERROR_RESPONSES,
)
def outreach(task_id: TaskId, request: OutreachRequest, session: SessionDep, ctx: LogsOutreach) -> Any:
    return log_outreach(session, ctx, task_id, request)


@router.post(
    "/worklist/tasks/{task_id}/snooze",
    operation_id="snoozeTask",
    summary="Leave a task off the list until a date, with a reason; an urgent finding cannot wait past today",
    response_model=TaskState,
    responses=WRITE_ERROR_RESPONSES,
)
def snooze(task_id: TaskId, request: SnoozeRequest, session: SessionDep, ctx: ChangesTask) -> Any:
    return snooze_task(session, ctx, task_id, request)


@router.post(
    "/worklist/tasks/{task_id}/escalation",
    operation_id="escalateTask",
    summary="Escalate a task to a clinician, who then sees it on their own worklist",
    response_model=TaskState,
    responses=WRITE_ERROR_RESPONSES,
)
def escalate(task_id: TaskId, request: EscalationRequest, session: SessionDep, ctx: ChangesTask) -> Any:
    return escalate_task(session, ctx, task_id, request)


@router.post(
    "/worklist/tasks/{task_id}/done",
    operation_id="completeTask",
    summary="Mark a task done; an urgent finding is closed by a clinician's acknowledgement instead (409)",
    response_model=TaskState,
    responses=WRITE_ERROR_RESPONSES,
)
def done(task_id: TaskId, session: SessionDep, ctx: ChangesTask) -> Any:
    return complete_task(session, ctx, task_id)
