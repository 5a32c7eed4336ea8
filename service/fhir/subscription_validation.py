"""Reading a Subscription sent to /fhir against the Backport IG's backport-subscription profile.

Every problem is named by its element (an OperationOutcome issue each, through the one error translation): an
unknown topic, a filter the topic cannot filter by, a channel other than rest-hook, an endpoint url_safety refuses
(the same check as an EHR target's base URL: https, no loopback or private host unless allowed), a payload type
or content we do not send, a heartbeat, timeout or max count that is not a positive integer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from service.errors import FieldProblem, InvalidRequest
from service.records.patient import Patient
from service.settings import Settings
from service.subscriptions.topics import BACKPORT, TOPICS, Topic, topic_by_url
from service.sync.url_safety import check_target_url

FILTER_CRITERIA = f"{BACKPORT}/backport-filter-criteria"
PAYLOAD_CONTENT = f"{BACKPORT}/backport-payload-content"
HEARTBEAT_PERIOD = f"{BACKPORT}/backport-heartbeat-period"
TIMEOUT = f"{BACKPORT}/backport-timeout"
MAX_COUNT = f"{BACKPORT}/backport-max-count"
CONTENTS = ("empty", "id-only", "full-resource")
PAYLOAD_TYPES = ("application/fhir+json", "application/json")
MAX_HEADERS = 10


@dataclass
class Accepted:
    topic: Topic
    endpoint: str
    content: str
    patient_filter: str | None = None
    headers: list[str] = field(default_factory=list)
    heartbeat_seconds: int | None = None
    timeout_seconds: int | None = None
    max_count: int | None = None
    end: datetime | None = None


def read_subscription(session: Session, tenant_id: str, resource: dict[str, Any], settings: Settings) -> Accepted:
    """The accepted Subscription, or InvalidRequest naming every problem found."""
    problems: list[FieldProblem] = []

    def problem(where: str, message: str, code: str | None = None) -> None:
        problems.append(FieldProblem(where, message, code))

    if resource.get("resourceType") != "Subscription":
        raise InvalidRequest([FieldProblem("resourceType", "must be Subscription")])
    if resource.get("status", "requested") != "requested":
        problem("status", "a new subscription is sent as requested; the server makes it active after the handshake")
    topic = topic_by_url(settings.canonical_base, str(resource.get("criteria") or ""))
    if topic is None:
        known = ", ".join(t.url(settings.canonical_base) for t in TOPICS)
        problem("criteria", f"unknown topic {resource.get('criteria')!r}: the topics served are {known}", "not-found")
    patient_filter = _filter(session, tenant_id, resource, topic, problem)
    channel: dict[str, Any] = resource["channel"] if isinstance(resource.get("channel"), dict) else {}
    if channel.get("type") != "rest-hook":
        problem("channel.type", f"{channel.get('type')!r} is not supported: only rest-hook", "not-supported")
    endpoint = str(channel.get("endpoint") or "")
    try:
        endpoint = check_target_url(
            endpoint,
            field="channel.endpoint",
            allowed_hosts=settings.sync_allowed_hosts,
            require_https=settings.sync_require_https,
        )
    except InvalidRequest as refused:
        problems.extend(refused.problems)
    if channel.get("payload") not in PAYLOAD_TYPES:
        problem("channel.payload", f"{channel.get('payload')!r}: notifications are sent as application/fhir+json")
    content = _extension(channel.get("_payload"), PAYLOAD_CONTENT, "valueCode")
    if content not in CONTENTS:
        problem(
            "channel.payload.extension(backport-payload-content)",
            f"{content!r}: must be one of {', '.join(CONTENTS)}",
            "value",
        )
    headers = channel.get("header") or []
    if not isinstance(headers, list) or len(headers) > MAX_HEADERS or not all(_header(h) for h in headers):
        problem("channel.header", f"at most {MAX_HEADERS} lines of the form 'Name: value'")
    numbers = {
        name: _positive(channel, url, name, problem)
        for name, url in (("heartbeat", HEARTBEAT_PERIOD), ("timeout", TIMEOUT), ("max_count", MAX_COUNT))
    }
    end = _end(resource.get("end"), problem)
    if problems:
        raise InvalidRequest(problems)
    assert topic is not None
    return Accepted(
        topic=topic,
        endpoint=endpoint,
        content=str(content),
        patient_filter=patient_filter,
        headers=list(headers),
        heartbeat_seconds=numbers["heartbeat"],
        timeout_seconds=numbers["timeout"],
        max_count=numbers["max_count"],
        end=end,
    )


def _filter(
    session: Session, tenant_id: str, resource: dict[str, Any], topic: Topic | None, problem: Any
) -> str | None:
    """`[<Type>?]patient=Patient/<id>`, at most one: the patient must be this hospital's."""
    where = "criteria.extension(backport-filter-criteria)"
    criteria: dict[str, Any] = resource["_criteria"] if isinstance(resource.get("_criteria"), dict) else {}
    filters = [e.get("valueString") for e in criteria.get("extension") or [] if e.get("url") == FILTER_CRITERIA]
    if not filters:
        return None
    if len(filters) > 1:
        problem(where, "one filter at most: patient=Patient/<id>")
        return None
    text = str(filters[0] or "")
    type_name, _, query = text.rpartition("?")
    name, _, value = query.partition("=")
    if type_name and topic is not None and type_name != topic.focus_type:
        problem(where, f"{text!r}: this topic's events are about {topic.focus_type}, not {type_name}")
        return None
    if name != "patient" or not value:
        problem(where, f"{text!r}: the topics can filter by patient only (patient=Patient/<id>)", "not-supported")
        return None
    patient_id = value.removeprefix("Patient/")
    patient = session.get(Patient, patient_id)
    if patient is None or patient.tenant_id != tenant_id:
        problem(where, f"{text!r}: no such patient", "not-found")
        return None
    return patient_id


def _extension(node: Any, url: str, key: str) -> Any:
    if not isinstance(node, dict):
        return None
    return next((e.get(key) for e in node.get("extension") or [] if e.get("url") == url), None)


def _positive(channel: dict[str, Any], url: str, name: str, problem: Any) -> int | None:
    found = [e for e in channel.get("extension") or [] if isinstance(e, dict) and e.get("url") == url]
    if not found:
        return None
    value = next((v for k, v in found[0].items() if k.startswith("value")), None)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        problem(f"channel.extension({url.rsplit('/', 1)[-1]})", f"{value!r}: must be a positive integer", "value")
        return None
    return value


def _header(line: Any) -> bool:
    return isinstance(line, str) and ":" in line and len(line) <= 1024 and "\n" not in line and "\r" not in line


def _end(value: Any, problem: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        problem("end", f"{value!r} is not an instant")
        return None
    if moment.tzinfo is None:
        problem("end", f"{value!r}: an instant needs its offset")
        return None
    return moment
