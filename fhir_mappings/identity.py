"""Stable ids, our identifiers, meta and narrative: what makes a resend find the same resource at the EHR."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Final, Literal

from .definitions import SOURCE_IDENTIFIER, extension_url
from .records import RecordLike

RecordKind = Literal[
    "patient",
    "enrollment",
    "ketamine-administration",
    "cbt-session",
    "questionnaire-response",
    "appointment",
    "vital-sign",
]

# Fixed namespace so a sub-resource id is the same on every machine and every run.
_NAMESPACE: Final = uuid.UUID("6f0f7d2e-8a51-5b8e-9c1a-3d3f4b2a9e10")
# R4 id datatype: [A-Za-z0-9\-\.]{1,64}.
_FHIR_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# R4 resources whose identifier is 0..1: ours goes there, the source in our source-identifier extension.
_SINGLE_IDENTIFIER: Final = frozenset({"QuestionnaireResponse"})
_SINGLE_IDENTIFIER_KIND: Final[dict[str, RecordKind]] = {"QuestionnaireResponse": "questionnaire-response"}
# Where the service records a record it made itself (no sender): see service/records/base.py.
_OWN_SOURCE_SYSTEM: Final = "urn:tandem:record"


def resource_id(record_id: str) -> str:
    """Our record id (a UUID) is already a valid FHIR id; anything else is hashed into one."""
    if _FHIR_ID.fullmatch(record_id):
        return record_id
    return str(uuid.uuid5(_NAMESPACE, record_id))


def sub_resource_id(record_id: str, role: str) -> str:
    """Id of a resource derived from a record, e.g. its second blood-pressure panel ("bp-1")."""
    return str(uuid.uuid5(_NAMESPACE, f"{record_id}/{role}"))


def identifier_system(canonical_base: str, kind: RecordKind) -> str:
    return f"{canonical_base}/identifier/{kind}"


def identifiers(
    canonical_base: str, kind: RecordKind, record: RecordLike, role: str | None = None
) -> list[dict[str, Any]]:
    """Ours first, then the sender's; a derived resource carries ours only (the source names the record)."""
    if role is not None:
        return [{"system": identifier_system(canonical_base, kind), "value": f"{record.id}/{role}"}]
    return [
        {"use": "official", "system": identifier_system(canonical_base, kind), "value": record.id},
        {"use": "secondary", "system": record.source.system, "value": record.source.value},
    ]


def meta(record: RecordLike) -> dict[str, Any]:
    return {"versionId": str(record.version), "lastUpdated": instant(record.updated_at)}


def narrative(text: str) -> dict[str, Any]:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(text)}</p></div>'}


def reference(resource_type: str, record_id: str) -> dict[str, Any]:
    return {"reference": f"{resource_type}/{resource_id(record_id)}"}


def instant(value: datetime) -> str:
    if value.tzinfo is None:
        # Our records keep aware UTC times; a naive one is a bug upstream, not something to guess about.
        raise ValueError("a FHIR instant needs a time zone")
    text = value.isoformat()
    # UTC as "Z", as fhir.resources writes it: the JSON we build is stored as built (release.to_json).
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def day(value: date) -> str:
    return value.isoformat()


def base_resource(
    resource_type: str,
    canonical_base: str,
    kind: RecordKind,
    record: RecordLike,
    summary: str,
    role: str | None = None,
) -> dict[str, Any]:
    """The common head of every resource we write: id, meta, narrative, identifiers."""
    head: dict[str, Any] = {
        "resourceType": resource_type,
        "id": resource_id(record.id) if role is None else sub_resource_id(record.id, role),
        "meta": meta(record),
        "text": narrative(summary),
        "identifier": identifiers(canonical_base, kind, record, role),
    }
    if resource_type in _SINGLE_IDENTIFIER:
        # R4 allows one identifier here: the sender's stays in it (searchable as sent); ours is the resource id.
        # A record with no sender (made here) carries ours. The EHR copy swaps them back (for_ehr).
        ours, *source = head["identifier"]
        sent = [{k: v for k, v in s.items() if k != "use"} for s in source if s["system"] != _OWN_SOURCE_SYSTEM]
        head["identifier"] = sent[0] if sent else ours
        head["extension"] = []
    return head


def for_ehr(resource: dict[str, Any], canonical_base: str) -> dict[str, Any]:
    """The copy sent to an EHR: a single-identifier resource carries ours in `identifier` (the sync finds its
    copy at the EHR by it, DESIGN.md) and the sender's in our source-identifier extension."""
    kind = _SINGLE_IDENTIFIER_KIND.get(str(resource.get("resourceType")))
    identifier = resource.get("identifier")
    if kind is None or not isinstance(identifier, dict):
        return resource
    system = identifier_system(canonical_base, kind)
    if identifier.get("system") == system:
        return resource
    ours = {"use": "official", "system": system, "value": resource["id"]}
    sent = {
        "url": extension_url(canonical_base, SOURCE_IDENTIFIER),
        "valueIdentifier": {"use": "secondary", **identifier},
    }
    return {**resource, "identifier": ours, "extension": [sent, *resource.get("extension", [])]}


def source_from(
    resource: dict[str, Any],
    canonical_base: str,
    kind: RecordKind,
    source_system: str | None,
    skip: Callable[[dict[str, Any]], bool] = lambda _: False,
) -> dict[str, str] | None:
    """The record's source identifier from an incoming resource.

    One we wrote carries our identifier and the original source next to it; one born in the EHR is named by
    its id under the sender's `source_system`; failing both, its first business identifier.
    """
    ours = identifier_system(canonical_base, kind)
    raw = resource.get("identifier") or []
    raw = [raw] if isinstance(raw, dict) else list(raw)
    source_url = extension_url(canonical_base, SOURCE_IDENTIFIER)
    raw += [e.get("valueIdentifier") for e in resource.get("extension") or [] if e.get("url") == source_url]
    found = [i for i in raw if isinstance(i, dict) and i.get("system") and i.get("value")]
    others = [i for i in found if i["system"] != ours and not skip(i)]
    if others and any(i["system"] == ours for i in found):
        return {"system": others[0]["system"], "value": others[0]["value"]}
    if source_system is not None and isinstance(resource.get("id"), str):
        return {"system": source_system, "value": f"{resource['resourceType']}/{resource['id']}"}
    if others:
        return {"system": others[0]["system"], "value": others[0]["value"]}
    return None
