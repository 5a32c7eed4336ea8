"""Planning a claim's deliveries: what each outbox row's record becomes for a target, read in a few queries.

Per (kind, record id): the record's resources for this target's capabilities (sync/records.py), the target's ids
of the references it holds, our remote rows of the record, or the failure of a record held back by a dead letter.
The worker plans a claim's rows together (per-row reads cost a round trip each on PostgreSQL), the dry run one
record. Reads only: nothing here writes or contacts the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlmodel import Session, col, select

from service.outbox import OutboxMessage
from service.record_fhir import NO_CONTEXT, kind_fhir
from service.sync.capabilities import Capabilities, KindDecision, decide
from service.sync.outcomes import DeliveryFailure, DeliveryResult
from service.sync.records import (
    PlannedResource,
    derived_versions,
    plan_contexts,
    plan_resources,
    public_records,
    references_in,
    rewrite_references,
)
from service.sync.tables import RemoteResource


@dataclass
class RecordPlan:
    kind: str
    record_id: str
    record_version: int
    decision: KindDecision
    resources: list[PlannedResource]

    @cached_property
    def references(self) -> set[str]:
        """Every reference in the record's resources (to its own resources and to other records')."""
        return set().union(*(references_in(r.body) for r in self.resources))


def plan_rows(
    session: Session,
    *,
    tenant_id: str,
    rows: list[tuple[str, str]],
    capabilities: Capabilities,
    canonical_base: str,
    code_map: dict[str, Any],
) -> list[RecordPlan | DeliveryResult]:
    """What each (kind, record id) becomes for this target, in order; the records of one kind read in one query
    (a claim's rows are planned together: per-row reads cost a round trip each on PostgreSQL)."""
    decisions = {kind: decide(kind, capabilities) for kind, _ in rows}
    wanted: dict[str, list[str]] = {}
    for kind, record_id in rows:
        if decisions[kind].mapping != "not_supported":
            wanted.setdefault(kind, []).append(record_id)
    # The versions first: each statement sees what was committed when it ran, so a plan refresh committing
    # between these reads leaves the label older than the content (sent again when its requeued row comes),
    # never newer (the requeued row would read as delivered and the EHR keep the old plan status).
    versions = {kind: derived_versions(session, tenant_id, kind, ids) for kind, ids in wanted.items()}
    records = {
        (kind, record_id): record
        for kind, ids in wanted.items()
        for record_id, record in public_records(session, tenant_id, kind, ids).items()
    }
    contexts = {kind: plan_contexts(session, tenant_id, kind, ids) for kind, ids in wanted.items()}
    result: list[RecordPlan | DeliveryResult] = []
    for kind, record_id in rows:
        decision = decisions[kind]
        record = records.get((kind, record_id))
        if decision.mapping == "not_supported":
            result.append(DeliveryResult("not_supported", decision.reason))
        elif record is None:
            result.append(DeliveryResult("not_supported", f"the {kind} record {record_id} no longer exists"))
        elif resources := plan_resources(
            record,
            kind,
            decision,
            canonical_base=canonical_base,
            code_map=code_map,
            context=contexts[kind].get(record_id, NO_CONTEXT),
        ):
            version = versions[kind].get(record_id, record.version)
            result.append(RecordPlan(kind, record_id, version, decision, resources))
        elif (table := kind_fhir(kind)) is not None and table.of is not None:
            # Sent from a plan that has none now (no urgent finding yet): done, nothing owed to the target.
            result.append(DeliveryResult("sent", f"nothing to send: the plan has no {kind.replace('-', ' ')} now"))
        else:
            nothing = f"{decision.reason or kind}: nothing to send for this record"
            result.append(DeliveryResult("not_supported", nothing))
    return result


Known = tuple[dict[str, str], dict[str, RemoteResource]]
# What a row's record becomes for a target, the target's ids of our references, and our remote rows by role.
Planned = tuple[RecordPlan | DeliveryResult, dict[str, str], dict[str, RemoteResource]]


def plan_for_target(
    session: Session,
    *,
    tenant_id: str,
    target_id: str,
    rows: list[tuple[str, str]],
    capabilities: Capabilities,
    canonical_base: str,
    code_map: dict[str, Any],
) -> list[Planned | DeliveryFailure]:
    """Per (kind, record id), in order: its plan with the references the target holds and our remote rows, or
    the failure of a record held back by a dead letter (held_by_dead_letters). A few queries for all of them:
    the worker plans a claim's rows together, the dry run one record."""
    plans = plan_rows(
        session,
        tenant_id=tenant_id,
        rows=rows,
        capabilities=capabilities,
        canonical_base=canonical_base,
        code_map=code_map,
    )
    record_plans = [plan for plan in plans if isinstance(plan, RecordPlan)]
    known = known_references_many(session, target_id, record_plans)
    held = held_by_dead_letters(session, target_id, record_plans, [references for references, _ in known])
    settled = iter(zip(known, held, strict=True))
    result: list[Planned | DeliveryFailure] = []
    for plan in plans:
        if not isinstance(plan, RecordPlan):
            result.append((plan, {}, {}))
            continue
        (references, delivered), failure = next(settled)
        result.append(failure or (plan, references, delivered))
    return result


def known_references_many(session: Session, target_id: str, plans: list[RecordPlan]) -> list[Known]:
    """Per plan: our references -> the target's, for every resource of ours the target already holds; and the
    remote rows of this record by role. Two queries for all of them."""
    pairs_of: list[set[tuple[str, str]]] = []
    for plan in plans:
        wanted = plan.references | {r.local_reference for r in plan.resources}
        pairs_of.append({(kind, local) for kind, local in (ref.split("/", 1) for ref in wanted if ref.count("/") == 1)})
    local_ids = {local for pairs in pairs_of for _, local in pairs}
    held: dict[tuple[str, str], str] = {}
    if local_ids:
        rows = session.exec(
            select(RemoteResource).where(
                col(RemoteResource.target_id) == target_id, col(RemoteResource.local_id).in_(local_ids)
            )
        ).all()
        held = {(row.resource_type, row.local_id): row.remote_id for row in rows}
    own: dict[tuple[str, str], dict[str, RemoteResource]] = {}
    if plans:
        rows = session.exec(
            select(RemoteResource).where(
                col(RemoteResource.target_id) == target_id,
                col(RemoteResource.record_id).in_({plan.record_id for plan in plans}),
            )
        ).all()
        for row in rows:
            own.setdefault((row.record_kind, row.record_id), {})[row.role] = row
    return [
        (
            {f"{kind}/{local}": f"{kind}/{held[kind, local]}" for kind, local in pairs if (kind, local) in held},
            own.get((plan.kind, plan.record_id), {}),
        )
        for plan, pairs in zip(plans, pairs_of, strict=True)
    ]


def held_by_dead_letters(
    session: Session, target_id: str, plans: list[RecordPlan], known: list[dict[str, str]]
) -> list[DeliveryFailure | None]:
    """Per plan, the failure that keeps it from being sent, if any: it refers to another record of ours that the
    target does not hold and whose outbox row for this target is a dead letter. Sent now, the EHR would get a
    reference to nothing (our local id); per-patient order (claim) only holds a row behind *open* rows, so a dead
    letter must hold its dependants itself. Not retried: replaying the target's dead letters sends both, in order."""
    missing: list[set[str]] = []
    for plan, held in zip(plans, known, strict=True):
        own = {resource.local_reference for resource in plan.resources}
        references = plan.references - own - set(held)
        missing.append({ref.split("/", 1)[1] for ref in references if ref.count("/") == 1})
    wanted = set().union(*missing)
    dead: dict[str, tuple[int, str]] = {}
    if wanted:
        rows = session.exec(
            select(OutboxMessage.id, OutboxMessage.record_kind, OutboxMessage.record_id).where(
                col(OutboxMessage.target_id) == target_id,
                col(OutboxMessage.status) == "dead",
                col(OutboxMessage.record_id).in_(wanted),
            )
        ).all()
        dead = {record_id: (row_id, kind) for row_id, kind, record_id in rows if row_id is not None}
    failures: list[DeliveryFailure | None] = []
    for ids in missing:
        blocking = sorted(dead[record_id] + (record_id,) for record_id in ids if record_id in dead)
        if not blocking:
            failures.append(None)
            continue
        named = ", ".join(f"{kind} {record_id} (outbox row {row_id})" for row_id, kind, record_id in blocking)
        failures.append(
            DeliveryFailure(
                f"not sent: it refers to {named}, a dead letter the target does not hold; replay that first "
                "(replaying the target's dead letters sends both, in order)",
                retryable=False,
            )
        )
    return failures


def outgoing_body(resource: PlannedResource, known: dict[str, str], remote_id: str | None) -> dict[str, Any]:
    """The body sent for a resource: its references to our resources as the target's ids (`known`), under the
    target's id `remote_id` (None for a create)."""
    body = rewrite_references(resource.body, known)
    body.pop("meta", None)  # the EHR owns versionId/lastUpdated of its copy
    if remote_id is None:
        body.pop("id", None)
    else:
        body["id"] = remote_id
    return dict(body)
