"""Audit completeness: every interaction the CapabilityStatement serves that can hand back a resource is a read.

The cases are GENERATED from GET /fhir/metadata: every resource type x every interaction it lists (conditional
create included where it says conditionalCreate), each sent alone, as a batch entry and as a transaction entry.
For each, the resources that came back must each have exactly one audit row of this request naming the resource
and its patient (read, vread, history and a conditional create's match: a `read` row; a search: one `list` row per
patient; a create or update answered with its body: the write's own row). A caller that may write but not read
the type gets no resource at all and no read row (issue #16, finding 2).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.projection.tables import FhirResourceVersion
from service.records.audit import AuditEvent
from service.settings import Settings
from tests.fhir.support import patient_resource
from tests.security.support import World, build_world, role_headers

FHIR_JSON = "application/fhir+json"
# Types the capability serves that hold no patient data, or audit themselves: printed, never silently dropped.
NOT_PATIENT_DATA = {
    "Questionnaire": "published instrument definitions",
    "StructureDefinition": "published profiles",
    "CodeSystem": "published code systems",
    "SearchParameter": "published search parameter definitions",
    "AuditEvent": "the audit trail export, audited by its own read (tests/fhir/test_audit_export.py)",
    "Measure": "published quality measures; $evaluate-measure is audited per patient counted "
    "(tests/outcomes/test_outcome_exports.py)",
    "Subscription": "a subscriber's own subscriptions (audited; $events audits the patients whose events it returns)",
    "Basic": "the published subscription topics",
}
CARRIERS = ("alone", "batch", "transaction")
# The audit row a returned resource must have, by interaction.
ROW_ACTION = {
    "read": "read",
    "vread": "read",
    "history-instance": "read",
    "search-type": "list",
    "conditional-create": "read",
    "create": "create",
    "update": "update",
    "delete": "delete",
}


@dataclass(frozen=True)
class Case:
    resource_type: str
    interaction: str
    carrier: str

    def __str__(self) -> str:
        return f"{self.interaction} {self.resource_type} ({self.carrier})"


def capability_cases(capability: dict[str, Any]) -> Iterator[Case]:
    rest = capability["rest"][0]
    bundle_interactions = {i["code"] for i in rest.get("interaction", [])}
    assert bundle_interactions == {"batch", "transaction"}, f"teach this test the new ones: {bundle_interactions}"
    for resource in rest["resource"]:
        codes = [i["code"] for i in resource["interaction"]]
        if resource.get("conditionalCreate"):
            codes.append("conditional-create")
        for code in codes:
            assert code in ROW_ACTION, f"{resource['type']}: interaction {code!r} is new; say what it must audit"
            for carrier in CARRIERS:
                yield Case(resource["type"], code, carrier)


@pytest.fixture(scope="module")
def world(client: TestClient, settings: Settings, engine: Engine) -> World:
    return build_world(client, settings, engine, family_name="Auditperson")


def _copy_of(body: dict[str, Any]) -> dict[str, Any]:
    """A stored resource as a new one: without its ids, and without the sender's identifier, or the create would be
    a resend of the record it was copied from (answered 200 with that record)."""
    copy = {k: v for k, v in body.items() if k not in ("id", "meta", "text", "identifier", "extension")}
    extensions = [e for e in body.get("extension", []) if not e["url"].endswith("/source-identifier")]
    return copy | ({"extension": extensions} if extensions else {})


@dataclass
class Driver:
    client: TestClient
    settings: Settings
    world: World

    def headers(self, scope: str | None, request_id: str) -> dict[str, str]:
        auth = role_headers(self.settings, self.world.tenant_id, "clinician", scope=scope)
        return {**auth, "Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "X-Request-ID": request_id}

    def reader(self) -> dict[str, str]:
        return role_headers(self.settings, self.world.tenant_id, "ehr-system")

    def stored(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get(f"/fhir/{resource_type}/{resource_id}", headers=self.reader()).json()
        return body

    def fresh(self, resource_type: str) -> str:
        """A record of its own for a case that changes one."""
        body = self.stored(resource_type, self.world.fhir_ids[resource_type])
        body = _copy_of(body)
        if resource_type == "Patient":
            body = patient_resource()
        created = self.client.post(
            f"/fhir/{resource_type}", json=body, headers={**self.reader(), "Content-Type": FHIR_JSON}
        )
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def request(self, case: Case) -> tuple[str, str, dict[str, Any]]:
        """(method, url relative to /fhir, keyword arguments) of the case's interaction."""
        t, ids = case.resource_type, self.world.fhir_ids
        if case.interaction == "read":
            return "GET", f"{t}/{ids[t]}", {}
        if case.interaction == "vread":
            version = self.stored(t, ids[t])["meta"]["versionId"]
            return "GET", f"{t}/{ids[t]}/_history/{version}", {}
        if case.interaction == "history-instance":
            return "GET", f"{t}/{ids[t]}/_history", {}
        if case.interaction == "search-type":
            include = f"&_include={t}:patient" if t != "Patient" else ""
            return "GET", f"{t}?_id={ids[t]}{include}", {}
        if case.interaction == "conditional-create":
            body = {k: v for k, v in self.stored(t, ids[t]).items() if k not in ("id", "meta")}
            return "POST", t, {"json": body, "if_none_exist": f"_id={ids[t]}"}
        if case.interaction == "create":
            body = self.stored(t, self.fresh(t))
            body = patient_resource() if t == "Patient" else _copy_of(body)
            return "POST", t, {"json": body}
        record_id = self.fresh(t)
        if case.interaction == "update":
            stored = self.stored(t, record_id)
            return "PUT", f"{t}/{record_id}", {"json": stored, "if_match": f'W/"{stored["meta"]["versionId"]}"'}
        return "DELETE", f"{t}/{record_id}", {}

    def send(self, case: Case, scope: str | None) -> tuple[str, Response]:
        request_id = f"audit-{uuid.uuid4().hex}"
        method, url, extra = self.request(case)
        headers = self.headers(scope, request_id)
        if case.carrier == "alone":
            if "if_none_exist" in extra:
                headers["If-None-Exist"] = extra["if_none_exist"]
            if "if_match" in extra:
                headers["If-Match"] = extra["if_match"]
            response = self.client.request(method, f"/fhir/{url}", headers=headers, json=extra.get("json"))
            return request_id, response
        request: dict[str, Any] = {"method": method, "url": url}
        if "if_none_exist" in extra:
            request["ifNoneExist"] = extra["if_none_exist"]
        if "if_match" in extra:
            request["ifMatch"] = extra["if_match"]
        entry: dict[str, Any] = {"request": request}
        if "json" in extra:
            entry["resource"] = extra["json"]
        bundle = {"resourceType": "Bundle", "type": case.carrier, "entry": [entry]}
        return request_id, self.client.post("/fhir", json=bundle, headers=headers)


def _entry_status(response: Response) -> int:
    body = response.json() if response.content else {}
    if body.get("type") in ("batch-response", "transaction-response"):
        return int(body["entry"][0]["response"]["status"].split()[0])
    return response.status_code


def returned_resources(body: Any) -> list[dict[str, Any]]:
    """Every patient-data resource in an answer, through Bundles (a batch's searchset) at any depth."""
    if not isinstance(body, dict):
        return []
    if body.get("resourceType") == "Bundle":
        return [r for e in body.get("entry") or [] for r in returned_resources(e.get("resource"))]
    if body.get("resourceType") in ("OperationOutcome", None):
        return []
    return [body]


def audit_rows(engine: Engine, request_id: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(col(AuditEvent.request_id) == request_id)))


def patient_of(engine: Engine, tenant_id: str, resource: dict[str, Any]) -> str | None:
    r = FhirResourceVersion
    with Session(engine) as session:
        row = session.exec(
            select(r).where(
                col(r.tenant_id) == tenant_id,
                col(r.resource_type) == resource["resourceType"],
                col(r.resource_id) == resource["id"],
            )
        ).first()
    assert row is not None, f"{resource['resourceType']}/{resource['id']} came back but is not stored"
    return row.patient_id


def audit_failures(case: Case, engine: Engine, world: World, request_id: str, response: Response) -> list[str]:
    """Each resource returned has exactly its audit row; no read row names anything that was not returned."""
    returned = returned_resources(response.json() if response.content else None)
    rows = [r for r in audit_rows(engine, request_id) if r.outcome == "success"]
    action = ROW_ACTION[case.interaction]
    failures = []
    if case.interaction == "search-type":
        patients = {patient_of(engine, world.tenant_id, r) for r in returned}
        listed = Counter(r.patient_id for r in rows if r.action == "list")
        if set(listed) != patients or any(n != 1 for n in listed.values()):
            failures.append(f"{case}: list rows for {dict(listed)}, returned data of {patients}")
        return failures
    distinct = {(r["resourceType"], r["id"]): r for r in returned}
    for (resource_type, resource_id), resource in distinct.items():
        patient = patient_of(engine, world.tenant_id, resource)
        mine = [r for r in rows if r.record_id == resource_id and r.action == action and r.patient_id == patient]
        if len(mine) != 1:
            failures.append(f"{case}: {resource_type}/{resource_id} returned with {len(mine)} {action} rows")
    reads = [r for r in rows if r.action in ("read", "list")]
    if len(reads) != (len(distinct) if action == "read" else 0):
        failures.append(f"{case}: {len(reads)} read/list rows for {len(distinct)} resources returned")
    return failures


def withheld_failures(case: Case, engine: Engine, request_id: str, response: Response) -> list[str]:
    """A caller without read permission: nothing returned, nothing audited as read."""
    failures = []
    returned = returned_resources(response.json() if response.content else None)
    if returned:
        failures.append(f"{case} without read: {len(returned)} resources came back ({response.status_code})")
    reads = [r for r in audit_rows(engine, request_id) if r.action in ("read", "list") and r.outcome == "success"]
    if reads:
        failures.append(f"{case} without read: {len(reads)} read rows for nothing handed back")
    return failures


def test_every_served_interaction_that_returns_a_resource_audits_it(
    client: TestClient, settings: Settings, engine: Engine, world: World
) -> None:
    capability = client.get("/fhir/metadata").json()
    driver = Driver(client, settings, world)
    failures: list[str] = []
    tried: Counter[str] = Counter()
    for case in capability_cases(capability):
        if case.resource_type in NOT_PATIENT_DATA:
            tried[f"not patient data: {case.resource_type} ({NOT_PATIENT_DATA[case.resource_type]})"] += 1
            continue
        request_id, response = driver.send(case, None)
        refused = response.status_code >= 400 or _entry_status(response) >= 400
        if refused:
            failures.append(f"{case}: {response.status_code} {response.text[:300]}")
        failures += audit_failures(case, engine, world, request_id, response)
        tried[case.interaction] += 1
        # the same, by a caller whose token may write but not read this type
        write_only = f"user/{case.resource_type}.cud"
        request_id, response = driver.send(case, write_only)
        failures += withheld_failures(case, engine, request_id, response)
        tried["without read permission"] += 1
    print("\n[audit completeness] cases generated from the CapabilityStatement:")
    for what, count in sorted(tried.items()):
        print(f"    {what:<80} {count}")
    assert not failures, f"{len(failures)} interactions hand back resources unaudited:\n" + "\n".join(failures)


@pytest.mark.fixtures
def test_a_coordinators_conditional_create_of_a_cssrs_response_is_a_read(
    client: TestClient, settings: Settings, engine: Engine, world: World
) -> None:
    """The red team's case: a coordinator's If-None-Exist matching a C-SSRS response (its suicidality answers)."""
    from tests.fhir.support import about
    from tests.shared_fixtures import load_fixture

    cssrs = about(load_fixture("fhir/onc-bhp-QuestionnaireResponse-C-SSRS-example-1.json"), world.ids["patients"])
    cssrs.pop("id", None)
    ehr = {**role_headers(settings, world.tenant_id, "ehr-system"), "Content-Type": FHIR_JSON}
    stored = client.post("/fhir/QuestionnaireResponse", json=cssrs, headers=ehr)
    assert stored.status_code == 201, stored.text
    stored_id = stored.json()["id"]
    answers = {"scope=None": None, "write-only scope": "user/QuestionnaireResponse.c"}
    for label, scope in answers.items():
        request_id = f"cssrs-{uuid.uuid4().hex}"
        headers = {
            **role_headers(settings, world.tenant_id, "coordinator", scope=scope),
            "Content-Type": FHIR_JSON,
            "If-None-Exist": f"_id={stored_id}",
            "X-Request-ID": request_id,
        }
        response = client.post("/fhir/QuestionnaireResponse", json=cssrs, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["location"].endswith(f"/QuestionnaireResponse/{stored_id}/_history/1")
        reads = [r for r in audit_rows(engine, request_id) if r.action == "read"]
        if scope is None:  # the coordinator reads QuestionnaireResponses: the answers come back, on the record
            assert response.json()["id"] == stored_id
            assert [(r.record_id, r.patient_id) for r in reads] == [(stored_id, world.ids["patients"])]
        else:  # may create, may not read: told it exists, not what it says
            body = response.json()
            assert body["resourceType"] == "OperationOutcome", f"{label}: {body}"
            assert body["issue"][0]["severity"] == "information"
            assert "item" not in response.text and reads == []
