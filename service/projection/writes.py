"""Keeping the FHIR projection in step with the records, inside the writing transaction.

A record maps to one or more resources (the record⇄FHIR table, service/record_fhir.py); a resource gets a new
version only when its content changed, and a resource a record no longer produces (a removed vital-sign reading)
gets a deleted version.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from service.clock import now_utc
from service.db.memo import memo
from service.db.unit_of_work import insert_rows, write_inserts
from service.projection.tables import FhirResourceVersion, FhirSearchToken
from service.subscriptions.events import Written, note_written
from service.subscriptions.topics import FOCUS_TYPES

# Elements that hold the resource's clinical date, in the order they are looked for.
DATE_ELEMENTS = (
    "effectiveDateTime",
    "effectivePeriod",
    "authored",
    "performedPeriod",
    "performedDateTime",
    "period",
    "occurrenceDateTime",
    "start",  # Appointment
)


def project(
    session: Session,
    *,
    tenant_id: str,
    record_kind: str,
    record_id: str,
    patient_id: str | None,
    resources: Iterable[dict[str, Any]],
    now: datetime | None = None,
    new_record: bool = False,
) -> bool:
    """Store new versions of the resources that changed; mark the ones the record no longer has deleted. True when
    anything was stored (a record's resources unchanged by a refresh are left as they are). A record created in
    this transaction (new_record) has no versions yet: nothing is read."""
    now = now or now_utc()
    current: dict[tuple[str, str], FhirResourceVersion] = {}
    if not new_record:
        write_inserts(session)  # its current versions may still wait to be inserted
        current = {
            (row.resource_type, row.resource_id): row
            for row in session.exec(
                select(FhirResourceVersion).where(
                    col(FhirResourceVersion.tenant_id) == tenant_id,
                    col(FhirResourceVersion.record_kind) == record_kind,
                    col(FhirResourceVersion.record_id) == record_id,
                    col(FhirResourceVersion.is_current).is_(True),
                )
            )
        }
    produced: set[tuple[str, str]] = set()
    writes = _Writes()
    for resource in resources:
        key = (resource["resourceType"], resource["id"])
        produced.add(key)
        previous = current.get(key)
        if previous is not None and not previous.deleted and _content(previous.body) == _content(resource):
            continue
        writes.add(tenant_id, record_kind, record_id, patient_id, resource, previous, now)
    for key, previous in current.items():
        if key not in produced and not previous.deleted:
            writes.add(tenant_id, record_kind, record_id, patient_id, None, previous, now, key=key)
    writes.execute(session, tenant_id)
    _raise_topic_events(session, tenant_id, writes.versions, current)
    return bool(writes.versions)


def _raise_topic_events(
    session: Session,
    tenant_id: str,
    versions: list[dict[str, Any]],
    current: dict[tuple[str, str], FhirResourceVersion],
) -> None:
    """The one place every resource version is written: the subscription topics it raises (service/subscriptions)."""
    written = [
        Written(
            v["resource_type"],
            v["resource_id"],
            v["patient_id"],
            None if v["deleted"] else v["body"],
            previous.body if (previous := current.get((v["resource_type"], v["resource_id"]))) is not None else None,
        )
        for v in versions
        if v["resource_type"] in FOCUS_TYPES
    ]
    if written:
        note_written(session, tenant_id, written)


_WRITTEN = "written resource version"


def written_version(
    session: Session, tenant_id: str, resource_type: str, resource_id: str
) -> FhirResourceVersion | None:
    """The version of a resource this unit of work wrote last, as written (no read): a write's answer is built
    from it. None when the unit wrote none (a resend, an unchanged resource): read it then."""
    version = memo(session).get((_WRITTEN, tenant_id, resource_type, resource_id))
    return FhirResourceVersion(**version) if version is not None else None


def retract(session: Session, *, tenant_id: str, record_kind: str, record_id: str, now: datetime | None = None) -> None:
    """Every resource of the record gets a deleted version: read afterwards is 410 Gone, history keeps the rest."""
    project(
        session,
        tenant_id=tenant_id,
        record_kind=record_kind,
        record_id=record_id,
        patient_id=None,
        resources=(),
        now=now,
    )


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"} | {
        "meta": {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    }


class _Writes:
    """The statements of one projection, sent together: one multi-row INSERT of versions, one of tokens.

    A resource seen for the first time has no earlier version to retire and no tokens to remove, so a new
    record costs two INSERTs whatever the number of resources it maps to."""

    def __init__(self) -> None:
        self.retired: list[tuple[str, str, int]] = []
        self.versions: list[dict[str, Any]] = []
        self.tokens: list[dict[str, Any]] = []

    def add(
        self,
        tenant_id: str,
        record_kind: str,
        record_id: str,
        patient_id: str | None,
        resource: dict[str, Any] | None,
        previous: FhirResourceVersion | None,
        now: datetime,
        key: tuple[str, str] | None = None,
    ) -> None:
        if key is None:
            assert resource is not None
            key = (resource["resourceType"], resource["id"])
        resource_type, resource_id = key
        version = (previous.version_id + 1) if previous is not None else 1
        if previous is not None:
            self.retired.append((resource_type, resource_id, previous.version_id))
        body: dict[str, Any] = {}
        if resource is not None:
            meta = {**resource.get("meta", {}), "versionId": str(version), "lastUpdated": now.isoformat()}
            body = {**resource, "meta": meta}
        clinical_date = _clinical_date(body)
        self.versions.append(
            {
                "tenant_id": tenant_id,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "version_id": version,
                "is_current": True,
                "deleted": resource is None,
                "last_updated": now,
                "patient_id": patient_id,
                "record_kind": record_kind,
                "record_id": record_id,
                "clinical_date": clinical_date,
                "status": body.get("status"),
                "body": body,
            }
        )
        self.tokens += [
            {
                "tenant_id": tenant_id,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "param": param,
                "system": system,
                "value": value,
                "patient_id": patient_id,
                "clinical_date": clinical_date,
                "last_updated": now,
            }
            for param, system, value in _tokens(body)
        ]

    def execute(self, session: Session, tenant_id: str) -> None:
        for resource_type, resource_id, version_id in self.retired:
            session.execute(
                update(FhirResourceVersion)
                .where(
                    col(FhirResourceVersion.tenant_id) == tenant_id,
                    col(FhirResourceVersion.resource_type) == resource_type,
                    col(FhirResourceVersion.resource_id) == resource_id,
                    col(FhirResourceVersion.version_id) == version_id,
                )
                .values(is_current=False)
            )
            session.execute(
                delete(FhirSearchToken).where(
                    col(FhirSearchToken.tenant_id) == tenant_id,
                    col(FhirSearchToken.resource_type) == resource_type,
                    col(FhirSearchToken.resource_id) == resource_id,
                )
            )
        if self.versions:
            insert_rows(session, FhirResourceVersion, self.versions)
            written = memo(session)
            for version in self.versions:
                written[(_WRITTEN, tenant_id, version["resource_type"], version["resource_id"])] = version
        insert_rows(session, FhirSearchToken, self.tokens)


def _clinical_date(resource: dict[str, Any]) -> datetime | None:
    for element in DATE_ELEMENTS:
        value = resource.get(element)
        if isinstance(value, dict):
            value = value.get("start")
        if isinstance(value, str) and "T" in value:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def _tokens(resource: dict[str, Any]) -> Iterator[tuple[str, str | None, str]]:
    # R4's `code` search parameter on MedicationAdministration is medication.as(CodeableConcept): the drug given.
    code = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    for coding in code.get("coding", []):
        if coding.get("code"):
            yield "code", coding.get("system"), coding["code"]
    category = resource.get("category") or []
    # A list on most types, one CodeableConcept on Procedure and MedicationAdministration (0..1 in R4).
    for concept in [category] if isinstance(category, dict) else category:
        for coding in concept.get("coding", []):
            if coding.get("code"):
                yield "category", coding.get("system"), coding["code"]
    for identifier in (
        resource.get("identifier", [])
        if isinstance(resource.get("identifier"), list)
        else ([resource["identifier"]] if isinstance(resource.get("identifier"), dict) else [])
    ):
        if identifier.get("value"):
            yield "identifier", identifier.get("system"), str(identifier["value"])
