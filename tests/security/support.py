"""Shared pieces of the security checks: a tenant holding one record of every kind, credentials good and bad,
page cookies, and the routes the app actually serves.

Nothing here talks to the network: sync targets point at a public address literal that no test ever calls
(dry-run and pull are only ever sent for targets the caller cannot see, so they stop at the tenant check).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from service.auth.principal import Principal, Role
from service.auth.scopes import Needs
from service.auth.tokens import mint_dev_token
from service.clock import now_utc
from service.db.unit_of_work import unit_of_work
from service.instruments import INSTRUMENTS, questionnaire_resource
from service.outbox import OutboxMessage
from service.settings import Settings
from service.tenants import register_tenant
from service.web.session_cookie import COOKIE_NAME, WebSession, csrf_token, encode_session, signed_in_session
from tests.builders import API, PATIENT_RECORD_BODIES, ApiDriver, practitioner_body, sync_target_body
from tests.conftest import TEST_SECRET

ROLES: tuple[Role, ...] = ("ehr-system", "clinician", "coordinator", "admin")
MISSING_ID = "00000000-0000-4000-8000-000000000000"
MISSING_INT_ID = 987_654_321
# The FHIR types whose records the world holds, and the JSON record kind each is projected from.
# FHIR types derived from the records (read-only), each found for the world's patient.
DERIVED_TYPES = ("Observation", "Procedure", "Condition", "Goal", "Flag")
FHIR_RECORD_TYPES = {
    "Patient": "patients",
    "MedicationAdministration": "ketamine-administrations",
    "Encounter": "cbt-sessions",
    "QuestionnaireResponse": "questionnaire-responses",
    "CarePlan": "enrollments",
    "ServiceRequest": "enrollments",  # the referral an enrolment answers, served under the CarePlan's id
    "Appointment": "appointments",
}


# ---- what the app serves -----------------------------------------------------------------------------------


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app answers, through included routers at any depth.

    FastAPI 0.165 wraps included routers (`_IncludedRouter`); `iter_route_contexts` flattens them with their
    prefixes. HEAD is dropped (Starlette adds it to every GET)."""
    found: set[tuple[str, str]] = set()
    for route in _flat_routes(app):
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if path is None:
            raise AssertionError(f"a route without a path: {route!r}; teach served_routes about it")
        if not methods:  # a Mount or websocket: serves something we cannot enumerate by method
            found.add(("ANY", path))
            continue
        found.update((method, path) for method in methods if method != "HEAD")
    return found


def _flat_routes(app: FastAPI) -> Iterator[Any]:
    yield from iter_route_contexts(app.routes)


def declared_scopes(app: FastAPI) -> dict[tuple[str, str], Needs | None]:
    """What each route declares it touches in SMART terms (`context_for(..., scopes=)`; None: role only).
    A route whose dependencies declare nothing is absent."""
    found: dict[tuple[str, str], Needs | None] = {}
    for route in _flat_routes(app):
        dependant = getattr(route, "dependant", None)
        declared = [c.scope_needs for c in _calls(dependant) if hasattr(c, "scope_needs")] if dependant else []
        if declared:
            needs = tuple(n for d in declared if d is not None for n in d)
            found.update(((m, route.path), needs or None) for m in route.methods or () if m != "HEAD")
    return found


def _calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


# ---- credentials ---------------------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(settings: Settings, *, key: Any = TEST_SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": settings.dev_issuer,
        "aud": settings.token_audience,
        "sub": "security-tester",
        "tenant": "unset",
        "role": "clinician",
        "scope": "user/*.cruds",
        "iat": now,
        "exp": now + 600,
    }
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm)


_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def bad_credentials(settings: Settings, tenant_id: str) -> dict[str, dict[str, str]]:
    """Every way a bearer credential can be wrong, each for a registered tenant: all must be refused (401) before
    the role is looked at."""
    now = int(time.time())
    good = {"tenant": tenant_id}
    return {
        "no token": {},
        "malformed": {"Authorization": "Bearer not.a.jwt"},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "expired": bearer(signed(settings, **good, iat=now - 7200, exp=now - 3600)),
        "wrong audience": bearer(signed(settings, **good, aud="someone-else")),
        "wrong issuer": bearer(signed(settings, **good, iss="https://evil.example/issuer")),
        "unknown HS256 key": bearer(signed(settings, **good, key="another-secret-of-at-least-32-bytes-long!!")),
        "unknown RS256 key": bearer(signed(settings, **good, key=_RSA_KEY, algorithm="RS256")),
        "alg none": bearer(jwt.encode({**_claims(settings, tenant_id)}, "", algorithm="none")),
        "oversized": bearer("a" * 9000),
    }


def _claims(settings: Settings, tenant_id: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": settings.dev_issuer,
        "aud": settings.token_audience,
        "sub": "x",
        "tenant": tenant_id,
        "role": "admin",
        "exp": now + 600,
    }


def role_headers(settings: Settings, tenant_id: str, role: Role, scope: str | None = None) -> dict[str, str]:
    if scope is None:
        return bearer(mint_dev_token(settings, tenant=tenant_id, role=role))
    return bearer(signed(settings, tenant=tenant_id, role=role, scope=scope))


# ---- page sessions -------------------------------------------------------------------------------------------


def page_cookie(settings: Settings, tenant_id: str, role: Role) -> tuple[dict[str, str], str]:
    """The cookie a browser holds after signing in as this role, and the CSRF token its forms carry."""
    session = signed_in_session(Principal(subject=f"web-{role}", tenant_id=tenant_id, role=role, scopes=None))
    return {COOKIE_NAME: encode_session(session, settings)}, csrf_token(session, settings)


def bad_page_sessions(settings: Settings, tenant_id: str) -> dict[str, tuple[dict[str, str], str]]:
    """Every way a page session can be missing or wrong: each must be sent to sign in."""
    principal = Principal(subject="web-x", tenant_id=tenant_id, role="coordinator", scopes=None)
    current = signed_in_session(principal)
    expired = WebSession(
        session_id="expired-session",
        expires_at=now_utc() - timedelta(minutes=5),
        subject="web-x",
        tenant_id=tenant_id,
        role="coordinator",
    )
    other_key = settings.model_copy(update={"dev_token_secret": "another-secret-of-at-least-32-bytes-long!!"})
    anonymous = WebSession(session_id="anon", expires_at=now_utc() + timedelta(minutes=30))
    ehr = signed_in_session(Principal(subject="web-ehr", tenant_id=tenant_id, role="ehr-system", scopes=None))
    signature = encode_session(current, settings).split(".")[1]
    tampered = encode_session(
        WebSession("x", current.expires_at, subject="web-x", tenant_id=tenant_id, role="admin"), settings
    ).split(".")[0]

    def with_csrf(session: WebSession, cookie: str) -> tuple[dict[str, str], str]:
        return {COOKIE_NAME: cookie}, csrf_token(session, settings)

    return {
        "no cookie": ({}, ""),
        "garbage cookie": ({COOKIE_NAME: "garbage"}, ""),
        "expired cookie": with_csrf(expired, encode_session(expired, settings)),
        "cookie signed by another key": with_csrf(current, encode_session(current, other_key)),
        "tampered cookie (role changed, old signature)": with_csrf(current, f"{tampered}.{signature}"),
        "anonymous session": with_csrf(anonymous, encode_session(anonymous, settings)),
        "ehr-system session": with_csrf(ehr, encode_session(ehr, settings)),
    }


# ---- a tenant with one record of everything ------------------------------------------------------------------


@dataclass
class World:
    """One tenant's data: ids of one record of every kind (and their FHIR projections), an outbox message."""

    tenant_id: str
    ids: dict[str, str]
    fhir_ids: dict[str, str]
    outbox_ids: list[int]
    enrollment_id: str
    open_flags: list[tuple[str, str]]  # (code, occurrence id) of flags that need a clinician
    mrn: dict[str, str]
    source: dict[str, str]
    registered_questionnaire: str
    protocol_id: str
    engine: Engine
    coordinator_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    def kill_letters(self) -> None:
        """Turn the tenant's outbox messages into dead letters (what replay expects)."""
        with Session(self.engine) as session:
            session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.tenant_id) == self.tenant_id)
                .values(status="dead", last_error={"resourceType": "OperationOutcome"})
            )
            session.commit()


def new_tenant_id(engine: Engine) -> str:
    tenant_id = f"t-sec-{uuid.uuid4().hex[:10]}"
    with unit_of_work(engine) as session:
        register_tenant(session, tenant_id=tenant_id, name=f"Security test hospital {tenant_id}")
    return tenant_id


def registration_body(canonical: str) -> dict[str, Any]:
    questionnaire = copy.deepcopy(questionnaire_resource(INSTRUMENTS["phq-9"]))
    questionnaire["url"] = canonical
    questionnaire.pop("id", None)
    return {"instrument": "phq-9", "questionnaire": questionnaire}


def protocol_body(protocol_id: str) -> dict[str, Any]:
    from service.plan_status import ESKETAMINE_CBT

    body: dict[str, Any] = ESKETAMINE_CBT.model_dump(mode="json")
    body["id"] = protocol_id
    body["version"] = uuid.uuid4().hex[:8]
    return body


def build_world(client: TestClient, settings: Settings, engine: Engine, *, family_name: str = "Worldperson") -> World:
    tenant_id = new_tenant_id(engine)
    ehr = ApiDriver(client, role_headers(settings, tenant_id, "ehr-system"))
    admin = ApiDriver(client, role_headers(settings, tenant_id, "admin"))
    # The target first, so every record after it is queued for the EHR (outbox rows to probe).
    pushed = ["patients", "ketamine-administrations", "cbt-sessions", "questionnaire-responses"]
    ids = {"sync/targets": str(admin.create("sync/targets", sync_target_body(push=pushed))["id"])}
    coordinator_id = str(ehr.create("practitioners", practitioner_body())["id"])
    ids["practitioners"] = coordinator_id
    mrn = {"system": "urn:test:mrn", "value": f"MRN-SEC-{uuid.uuid4().hex[:10]}"}
    patient = ehr.create("patients", _patient(family_name, mrn))
    ids["patients"] = str(patient["id"])
    for path, build in PATIENT_RECORD_BODIES.items():
        extra = {"coordinator_id": coordinator_id} if path == "enrollments" else {}
        ids[path] = str(ehr.create(path, build(ids["patients"], **extra))["id"])
    canonical = f"urn:test:questionnaire:{uuid.uuid4().hex}"
    registered = client.post(f"{API}/questionnaires", json=registration_body(canonical), headers=admin.headers)
    assert registered.status_code == 201, registered.text
    protocol_id = f"sec-protocol-{uuid.uuid4().hex[:8]}"
    added = client.post(f"{API}/protocols", json=protocol_body(protocol_id), headers=admin.headers)
    assert added.status_code == 201, added.text
    with Session(engine) as session:
        outbox_ids = [
            int(i)
            for i in session.exec(
                select(OutboxMessage.id)
                .where(col(OutboxMessage.tenant_id) == tenant_id)
                .order_by(col(OutboxMessage.id))
            ).all()
            if i is not None
        ]
    assert outbox_ids, "records created after a sync target should be queued for it"
    status = client.get(
        f"{API}/patients/{ids['patients']}/plan-status", headers=role_headers(settings, tenant_id, "clinician")
    ).json()
    flags = [
        (r["code"], r["occurrence_id"])
        for s in status["statuses"]
        for r in s["reasons"]
        if r.get("needs_acknowledgement") and r.get("acknowledgement") is None and r.get("occurrence_id")
    ]
    fhir_ids = {name: ids[path] for name, path in FHIR_RECORD_TYPES.items()}
    reader = role_headers(settings, tenant_id, "ehr-system")
    for derived in DERIVED_TYPES:
        # The Observation probed is the world's PHQ-9 total: the kind of Observation that is also written.
        params = {
            "patient": ids["patients"],
            **({"code": "http://loinc.org|44261-6"} if derived == "Observation" else {}),
        }
        found = client.get(f"/fhir/{derived}", params=params, headers=reader).json()
        entries = found.get("entry") or []
        assert entries, f"the world should hold a {derived}"
        fhir_ids[derived] = entries[0]["resource"]["id"]
    world = World(
        tenant_id=tenant_id,
        ids=ids,
        fhir_ids=fhir_ids,
        outbox_ids=outbox_ids,
        enrollment_id=ids["enrollments"],
        open_flags=flags,
        mrn=mrn,
        source=patient["source"],
        registered_questionnaire=canonical,
        protocol_id=protocol_id,
        engine=engine,
        coordinator_id=coordinator_id,
    )
    world.kill_letters()
    return world


def _patient(family_name: str, mrn: dict[str, str]) -> dict[str, Any]:
    from tests.builders import patient_body

    return patient_body(family_name=family_name, identifiers=[mrn])
