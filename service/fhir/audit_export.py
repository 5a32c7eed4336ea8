"""The audit trail as FHIR R4 AuditEvents, after the IHE Basic Audit Log Patterns (BALP).

Each row already concerns one patient (a search writes one row per patient it returned), which is what BALP
asks of a query event. Rows are read-only: no route changes or deletes them.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.db.unit_of_work import write_inserts
from service.fhir.search import date_clause
from service.fhir.search_parameters import DateBound, check_parameters, date_bound, invalid, whole_number
from service.records.audit import AuditEvent

# BALP / R4 value sets (hl7.org/fhir/R4/valueset-audit-event-type.html, restful-interaction, audit-event-action).
INTERACTION = {"create": "create", "read": "read", "list": "search-type", "update": "update", "delete": "delete"}
ACTION = {"create": "C", "read": "R", "list": "E", "update": "U", "delete": "D"}
AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
# Purpose of use: HL7 v3 ActReason BTG "break the glass" (terminology.hl7.org/CodeSystem-v3-ActReason.html).
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PURPOSES = {"BTG": {"system": ACT_REASON, "code": "BTG", "display": "break the glass"}}
MAX_EVENTS = 1000


def audit_event(row: AuditEvent, base: str) -> dict[str, Any]:
    outcome = "0" if row.status_code < 400 else ("4" if row.status_code < 500 else "8")
    entities: list[dict[str, Any]] = []
    if row.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{row.patient_id}"},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    entities.append(
        {
            "what": {"identifier": {"system": f"{base}/record/{row.record_kind}", "value": row.record_id or "-"}},
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            "description": f"{row.record_kind} (request {row.request_id})",
        }
    )
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": row.id,
        "type": {"system": AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": INTERACTION_SYSTEM, "code": INTERACTION[row.action]}],
        "action": ACTION[row.action],
        "recorded": row.occurred_at.isoformat(),
        "outcome": outcome,
        "outcomeDesc": f"HTTP {row.status_code}",
        "agent": [
            {
                "who": {"identifier": {"system": f"{base}/actor", "value": row.actor}},
                "requestor": True,
                "role": [{"text": row.actor_role}],
            }
        ],
        "source": {
            "observer": {"display": "Tandem"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    }
    if row.purpose in PURPOSES:
        event["purposeOfEvent"] = [{"coding": [PURPOSES[row.purpose]]}]
    return event


def search_audit(session: Session, ctx: RequestContext, params: list[tuple[str, str]], base: str) -> dict[str, Any]:
    """AuditEvents of the caller's tenant, newest first; `patient`, `date` (with prefixes) and `_count`."""
    ctx.intent = AuditIntent("list", "fhir/AuditEvent")
    write_inserts(session)  # this request's own audit rows wait to be inserted with the others
    query = select(AuditEvent).where(col(AuditEvent.tenant_id) == ctx.tenant_id)
    count = 100
    check_parameters("AuditEvent", params)
    for name, value in params:
        if name in ("patient", "patient:Patient"):
            query = query.where(col(AuditEvent.patient_id) == value.split("/")[-1])
        elif name == "date":
            bound: DateBound = date_bound("date", value)
            query = query.where(date_clause(col(AuditEvent.occurred_at), bound))
        elif name == "_count":
            count = min(whole_number("_count", value), MAX_EVENTS)
        elif name not in ("_format",):
            raise invalid(name, "AuditEvent searches take patient, date and _count")
    rows = session.exec(query.order_by(col(AuditEvent.occurred_at).desc()).limit(count)).all()
    record_success(session, ctx, status_code=200)
    entries = [
        {"fullUrl": f"{base}/AuditEvent/{row.id}", "resource": audit_event(row, base), "search": {"mode": "match"}}
        for row in rows
    ]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(rows)}
    if entries:
        bundle["entry"] = entries
    return bundle
