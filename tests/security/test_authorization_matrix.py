"""The authorization matrix: every route the app serves x every kind of caller, against a table written here.

The table (MATRIX, FHIR_DATA_TYPES and friends) is the specification: who may call each route, what they get, and what
another tenant gets when it names this tenant's records. It is data in this file on purpose, not read from the
service: a role widened in the code shows up here as a failure.

`test_every_served_route_has_a_matrix_entry` compares the table with what the app actually serves (through
included routers at any depth), so a route added without an entry fails CI until someone decides who may call it.

Variants per route: no/malformed/expired/wrong-audience/wrong-issuer/unknown-key/alg-none/oversized bearer tokens
(pages: missing, garbage, expired, re-signed, tampered, anonymous and EHR-role cookies instead), an unregistered
tenant, every role, another tenant's caller naming this tenant's ids, and (FHIR and /api/v1) tokens without the
scope. The /api/v1 scope variants are generated from what each route declares (`context_for(..., scopes=)`), and
`test_every_api_route_declares_its_scopes` fails for a route that declares nothing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

import fhir_mappings as fm
from service.api.docs_page import ASSETS as DOCS_ASSETS
from service.auth.principal import Role
from service.fhir.capability import STATIC_TYPES
from service.fhir.search_definitions import search_definitions
from service.fhir.types import FHIR_TYPES
from service.settings import Settings
from tests.builders import (
    API,
    PATIENT_RECORD_BODIES,
    ApiDriver,
    patient_body,
    practitioner_body,
    sync_target_body,
)
from tests.fhir.support import patient_resource
from tests.security.support import (
    FHIR_RECORD_TYPES,
    MISSING_ID,
    MISSING_INT_ID,
    ROLES,
    World,
    bad_credentials,
    bad_page_sessions,
    build_world,
    declared_scopes,
    new_tenant_id,
    page_cookie,
    protocol_body,
    registration_body,
    role_headers,
    served_routes,
)

EVERYONE: frozenset[Role] = frozenset(ROLES)
NOBODY: frozenset[Role] = frozenset()
CARE_TEAM: frozenset[Role] = frozenset({"ehr-system", "clinician", "coordinator"})
PRESCRIBERS: frozenset[Role] = frozenset({"ehr-system", "clinician"})
STAFF_ADMINS: frozenset[Role] = frozenset({"ehr-system", "admin"})
ADMIN: frozenset[Role] = frozenset({"admin"})
CLINICIAN: frozenset[Role] = frozenset({"clinician"})
EHR_SYSTEM: frozenset[Role] = frozenset({"ehr-system"})
CARE_PEOPLE: frozenset[Role] = frozenset({"clinician", "coordinator"})
WEB_ROLES: tuple[Role, ...] = ("clinician", "coordinator", "admin")
FHIR_JSON = "application/fhir+json"
FHIR_RECORD_KINDS = {k: v for k, v in FHIR_RECORD_TYPES.items() if k != "CarePlan"}  # record kind by FHIR type


@dataclass(frozen=True)
class Entry:
    """Who may call a route and what they get.

    surface: public (no credential needed), api (bearer), fhir (bearer + SMART scope), page (session cookie),
    sign-in (a public form that takes a bearer token in its body), cds-jwt (a JWT signed by a registered EHR's
    own key, CDS Hooks 2.0: no Tandem credential of any role is one; the EHR's JWTs are tested in tests/cds_hooks).
    allowed: roles that pass; `ok` is what they get from the owning tenant (per-role overrides in `role_ok`).
    Roles outside `allowed` get `denied`. `names_records`: the path names one of the tenant's records, so a
    caller of another tenant (with an allowed role) gets 404, exactly like a missing id.
    """

    surface: str
    allowed: frozenset[Role] = NOBODY
    ok: frozenset[int] = frozenset({200})
    names_records: bool = False
    denied: int = 403
    role_ok: dict[Role, frozenset[int]] = field(default_factory=dict)
    scoped: bool = True  # FHIR: a token without the SMART scope gets 403
    scope_type: str | None = None  # FHIR routes of their own: the type their scope names
    scope_interaction: str = "search"  # … and the interaction they need on it

    def expected_for(self, role: Role) -> frozenset[int]:
        if role not in self.allowed:
            return frozenset({self.denied})
        return self.role_ok.get(role, self.ok)


def public(*ok: int) -> Entry:
    return Entry("public", EVERYONE, frozenset(ok or (200,)))


def api(allowed: frozenset[Role], *ok: int, ids: bool = False) -> Entry:
    return Entry("api", allowed, frozenset(ok or (200,)), names_records=ids)


def link(*ok: int) -> Entry:
    """The patient's questionnaire link (/r/{token}): the token in the path is the only credential. No bearer
    token or session cookie of any role opens anything: an unknown link is 404 whoever asks (what a real link
    does, and each bad one: tests/self_report/test_link_pages.py)."""
    return Entry("link", EVERYONE, frozenset(ok or (404,)))


def page(
    allowed: frozenset[Role], *ok: int, ids: bool = False, role_ok: dict[Role, frozenset[int]] | None = None
) -> Entry:
    return Entry("page", allowed, frozenset(ok or (200,)), names_records=ids, role_ok=role_ok or {})


# ---- the specification -------------------------------------------------------------------------------------

# record kind path -> (readers, writers). CLINICAL/least-privilege: admins manage the deployment, not patients.
RECORDS: dict[str, tuple[frozenset[Role], frozenset[Role]]] = {
    "patients": (CARE_TEAM, PRESCRIBERS),
    "practitioners": (CARE_TEAM | ADMIN, STAFF_ADMINS),
    "enrollments": (CARE_TEAM, CARE_TEAM),
    "ketamine-administrations": (CARE_TEAM, PRESCRIBERS),
    "cbt-sessions": (CARE_TEAM, CARE_TEAM),
    "questionnaire-responses": (CARE_TEAM, CARE_TEAM),
    "appointments": (CARE_TEAM, CARE_TEAM),  # booked by schedulers: the EHR, clinicians, coordinators
    "vital-signs": (CARE_TEAM, PRESCRIBERS),
    "sync/targets": (ADMIN, ADMIN),
}

MATRIX: dict[tuple[str, str], Entry] = {
    # public on purpose: probes, our JWKS, the CapabilityStatement, the OpenAPI docs (see docs/security.md)
    ("GET", "/healthz"): public(),
    ("GET", "/readyz"): public(),
    ("GET", "/.well-known/jwks.json"): public(),
    # Prometheus metrics take their own bearer token (TANDEM_METRICS_TOKEN), never a user's: unset here, so not
    # served to anyone (404); the token check is tested in tests/reliability/test_observability.py.
    ("GET", "/metrics"): public(404),
    ("GET", "/fhir/metadata"): public(),
    # SMART discovery is public; the suite configures no authorization server, so it says so (404)
    ("GET", "/fhir/.well-known/smart-configuration"): public(404),
    # CDS Hooks discovery: public like /fhir/metadata (the services and prefetch templates, no patient data)
    ("GET", "/cds-services"): public(),
    # a CDS service call is authenticated by the calling EHR's signed JWT, never by a Tandem token (any role): 401
    ("POST", "/cds-services/{service_id}"): Entry("cds-jwt", NOBODY, denied=401),
    # history of the whole server: not implemented, said after authentication (types: FHIR_GENERIC)
    ("GET", "/fhir/_history"): Entry("fhir", EVERYONE, frozenset({501}), scoped=False),
    # the facade's own 404/405 for what no interaction serves (an OperationOutcome, before any token is read)
    **{(method, "/fhir/{path:path}"): public(404) for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")},
    **{(method, "/fhir"): public(405) for method in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS")},
    ("GET", "/openapi.json"): public(),
    ("GET", "/docs"): public(),
    ("GET", "/docs/fhir"): public(),
    ("GET", "/fhir/openapi.json"): public(),
    **{("GET", f"/docs/assets/{name}"): public() for name in DOCS_ASSETS},
    ("GET", "/static/tandem.css"): public(),
    ("GET", "/sign-in"): public(),
    # a signed-in person's own time zone: every role of the pages sets its own (no zone sent: the hospital's, 303)
    ("GET", "/time-zone"): page(frozenset(WEB_ROLES)),
    ("POST", "/time-zone"): page(frozenset(WEB_ROLES), 303),
    # the sign-in forms: public, CSRF-protected, and the token in the form is what is checked
    ("POST", "/sign-in"): Entry("sign-in", EVERYONE, frozenset({303})),
    ("POST", "/sign-in/demo"): Entry("public", EVERYONE, frozenset({404})),  # development only
    ("POST", "/sign-out"): Entry("public", EVERYONE, frozenset({303})),
    # SMART App Launch from an EHR: entry points before anyone is signed in, like /sign-in. What is checked is the
    # launch itself, never a bearer token or a cookie session: a launch without a registered `iss` and a callback
    # without the state this browser started are refused (400) whoever calls them (tests/smart_launch walks the
    # whole flow and its refusals).
    ("GET", "/smart/launch"): public(400),
    ("GET", "/smart/callback"): public(400),
    # JSON API, record kinds
    **{
        entry: spec
        for path, (readers, writers) in RECORDS.items()
        for entry, spec in {
            ("POST", f"{API}/{path}"): api(writers, 201),
            ("GET", f"{API}/{path}"): api(readers),
            ("GET", f"{API}/{path}/{{record_id}}"): api(readers, ids=True),
            ("PATCH", f"{API}/{path}/{{record_id}}"): api(writers, ids=True),
        }.items()
    },
    # provenance: what senders sent for a record, read like the record
    **{
        ("GET", f"{API}/{path}/{{record_id}}/received"): api(readers, ids=True)
        for path, (readers, _writers) in RECORDS.items()
        if path != "sync/targets"
    },
    ("GET", f"{API}/instruments"): api(EVERYONE),
    ("GET", f"{API}/instruments/{{key}}"): api(EVERYONE),
    ("POST", f"{API}/questionnaires"): api(STAFF_ADMINS, 201),
    ("GET", f"{API}/questionnaires"): api(EVERYONE),
    ("GET", f"{API}/patients/{{patient_id}}/plan-status"): api(CARE_TEAM, ids=True),
    ("POST", f"{API}/patients/{{patient_id}}/flag-acknowledgements"): api(CLINICIAN, 201, ids=True),
    # break the glass: the world's patient is not restricted, so a clinician's call is refused 409 after the role
    # check; ending names a grant that does not exist (the grant flow itself: tests/security/test_break_glass.py)
    ("POST", f"{API}/patients/{{patient_id}}/break-the-glass"): api(CLINICIAN, 409, ids=True),
    ("POST", f"{API}/break-glass-grants/{{grant_id}}/end"): api(CLINICIAN, 404),
    ("GET", f"{API}/break-glass-grants"): api(CLINICIAN | ADMIN),
    ("GET", f"{API}/caseload"): api(CARE_TEAM),
    # the worklist is the care team's people's (an EHR system has none); an empty body is refused after the role
    # check, and a task id that is not the tenant's is not found
    ("GET", f"{API}/worklist"): api(CARE_PEOPLE),
    ("POST", f"{API}/worklist/tasks/{{task_id}}/outreach"): api(CARE_PEOPLE, 422),
    ("POST", f"{API}/worklist/tasks/{{task_id}}/snooze"): api(CARE_PEOPLE, 422),
    ("POST", f"{API}/worklist/tasks/{{task_id}}/escalation"): api(CARE_PEOPLE, 422),
    ("POST", f"{API}/worklist/tasks/{{task_id}}/done"): api(CARE_PEOPLE, 404),
    # notes on a patient: the care team's people, not the EHR; the note named is missing (the flow itself:
    # tests/web/test_patient_notes.py)
    ("GET", f"{API}/patients/{{patient_id}}/notes"): api(CARE_PEOPLE, ids=True),
    ("POST", f"{API}/patients/{{patient_id}}/notes"): api(CARE_PEOPLE, 201, ids=True),
    ("GET", f"{API}/patients/{{patient_id}}/notes/{{note_id}}"): api(CARE_PEOPLE, 404, ids=True),
    ("PATCH", f"{API}/patients/{{patient_id}}/notes/{{note_id}}"): api(CARE_PEOPLE, 404, ids=True),
    ("POST", f"{API}/patients/{{patient_id}}/notes/{{note_id}}/sign"): api(CARE_PEOPLE, 404, ids=True),
    # self-report invitations: the care team and the EHR send them; the invitation named is missing
    ("GET", f"{API}/patients/{{patient_id}}/invitations"): api(CARE_TEAM, ids=True),
    ("POST", f"{API}/patients/{{patient_id}}/invitations"): api(CARE_TEAM, 201, ids=True),
    ("POST", f"{API}/patients/{{patient_id}}/invitations/{{invitation_id}}/cancel"): api(CARE_TEAM, 404, ids=True),
    # the patient's questionnaire pages: token-authenticated, not bearer (see link())
    ("GET", "/r/{token}"): link(),
    ("POST", "/r/{token}"): link(),
    ("POST", "/r/{token}/submit"): link(),
    # programme outcomes (issue #23): a population read for clinicians and admins, not coordinators or the EHR
    ("GET", f"{API}/outcomes"): api(CLINICIAN | ADMIN),
    ("GET", f"{API}/outcomes.csv"): api(CLINICIAN | ADMIN),
    # the REMS form's submission (issue #23): a clinician's; the world's session is ketamine IV, which has no REMS
    # form (404 after the role check, as for another tenant's)
    ("POST", f"{API}/ketamine-administrations/{{session_id}}/rems-form/submission"): api(CLINICIAN, 404, ids=True),
    ("GET", f"{API}/protocols"): api(CARE_TEAM | ADMIN),
    ("POST", f"{API}/protocols"): api(ADMIN, 201),
    ("GET", f"{API}/sync/targets/{{target_id}}/status"): api(ADMIN, ids=True),
    ("GET", f"{API}/sync/dead-letters"): api(ADMIN),
    ("GET", f"{API}/sync/messages/{{outbox_id}}"): api(ADMIN, ids=True),
    ("POST", f"{API}/sync/dead-letters/{{outbox_id}}/replay"): api(ADMIN, ids=True),
    ("POST", f"{API}/sync/dead-letters/replay"): api(ADMIN),
    # the world's target authenticates with nothing: writing it a token is refused (422) after the role check
    ("PUT", f"{API}/sync/targets/{{target_id}}/credential"): api(ADMIN, 422, ids=True),
    ("DELETE", f"{API}/sync/targets/{{target_id}}/credential"): api(ADMIN, 204, ids=True),
    # dry-run and pull would call the EHR: the owner's call names a missing target (404 after the role check)
    ("POST", f"{API}/sync/targets/{{target_id}}/dry-run"): api(ADMIN, 404, ids=True),
    ("POST", f"{API}/sync/targets/{{target_id}}/pull"): api(ADMIN, 404, ids=True),
    # what a pull refused, kept per target (issue #19): administrators only, like the rest of sync
    ("GET", f"{API}/sync/targets/{{target_id}}/quarantine"): api(ADMIN, ids=True),
    ("POST", f"{API}/sync/targets/{{target_id}}/quarantine/retry"): api(ADMIN, ids=True),
    # FHIR routes of their own
    # the audit trail export (IHE BALP): administrators only, with a SMART scope for AuditEvent
    ("GET", "/fhir/AuditEvent"): Entry("fhir", ADMIN, scope_type="AuditEvent"),
    # FHIR Subscriptions (R4 Backport): the EHR system subscribes; the topics are published definitions
    ("POST", "/fhir/Subscription"): Entry(
        "fhir", EHR_SYSTEM, frozenset({201}), scope_type="Subscription", scope_interaction="create"
    ),
    ("GET", "/fhir/Subscription"): Entry("fhir", EHR_SYSTEM, scope_type="Subscription"),
    **{
        (method, f"/fhir/Subscription/{{subscription_id}}{suffix}"): Entry(
            "fhir", EHR_SYSTEM, names_records=True, scope_type="Subscription", scope_interaction=interaction
        )
        for method, suffix, interaction in (
            ("GET", "", "read"),
            ("GET", "/$status", "read"),
            ("GET", "/$events", "read"),
            ("DELETE", "", "delete"),
        )
    },
    ("GET", "/fhir/Basic"): Entry("fhir", EVERYONE, scoped=False),
    ("GET", "/fhir/Basic/{basic_id}"): Entry("fhir", EVERYONE, scoped=False),
    ("GET", "/fhir/Questionnaire"): Entry("fhir", EVERYONE, scoped=False),
    ("GET", "/fhir/Questionnaire/{resource_id}"): Entry("fhir", EVERYONE, scoped=False),
    # a summary MeasureReport of the programme: clinicians and admins with a MeasureReport scope; at the type
    # without `measure` the allowed caller is told to name one (422)
    ("GET", "/fhir/Measure/$evaluate-measure"): Entry(
        "fhir", CLINICIAN | ADMIN, frozenset({422}), scope_type="MeasureReport"
    ),
    ("GET", "/fhir/Measure/{resource_id}/$evaluate-measure"): Entry(
        "fhir", CLINICIAN | ADMIN, scope_type="MeasureReport"
    ),
    ("POST", "/fhir"): Entry("fhir", EVERYONE, scoped=False),  # entries are authorized one by one (below)
    ("POST", "/fhir/"): Entry("fhir", EVERYONE, scoped=False),
    # pages: a missing session is sent to sign in (303); the caseload sends an admin to /sync
    ("GET", "/"): page(frozenset(WEB_ROLES), role_ok={"admin": frozenset({303})}),
    ("GET", "/patients/{patient_id}"): page(frozenset({"clinician", "coordinator"}), ids=True),
    # a clinician's empty note is refused (422) after the role check: that is the "allowed" answer here
    ("POST", "/patients/{patient_id}/acknowledgements"): page(CLINICIAN, 422, ids=True),
    # the world's patient is not restricted: 409 after the role check
    ("POST", "/patients/{patient_id}/break-the-glass"): page(CLINICIAN, 409, ids=True),
    ("GET", "/worklist"): page(CARE_PEOPLE),
    ("GET", "/outcomes"): page(CLINICIAN | ADMIN),
    # an empty form: refused (422) after the role check, or (no body fields to check) the empty task is not found
    ("POST", "/worklist/outreach"): page(CARE_PEOPLE, 422),
    ("POST", "/worklist/snooze"): page(CARE_PEOPLE, 422),
    ("POST", "/worklist/escalation"): page(CARE_PEOPLE, 404),
    ("POST", "/worklist/done"): page(CARE_PEOPLE, 404),
    # an empty note is refused (422) after the role check
    ("POST", "/patients/{patient_id}/notes"): page(CARE_PEOPLE, 422, ids=True),
    ("POST", "/patients/{patient_id}/notes/{note_id}"): page(CARE_PEOPLE, 422, ids=True),
    # "Send now" on the patient page (a PHQ-9 by the preferred channel: 303) and the worklist's "Send PHQ-9
    # now" (no patient named: 404)
    ("POST", "/patients/{patient_id}/invitations"): page(CARE_PEOPLE, 303, ids=True),
    ("POST", "/worklist/invitations"): page(CARE_PEOPLE, 404),
    # the REMS form of an esketamine session (issue #23): clinicians; the world's session is ketamine IV (404)
    ("GET", "/patients/{patient_id}/sessions/{session_id}/rems-form"): page(CLINICIAN, 404, ids=True),
    ("GET", "/patients/{patient_id}/sessions/{session_id}/rems-form.pdf"): page(CLINICIAN, 404, ids=True),
    ("POST", "/patients/{patient_id}/sessions/{session_id}/rems-form/submission"): page(CLINICIAN, 404, ids=True),
    ("GET", "/sync"): page(ADMIN),
    ("POST", "/sync/dead-letters/{message_id}/replay"): page(ADMIN, 303, ids=True),
    # a patient message (service/messaging) that is not there: the administrator is told so
    ("POST", "/sync/patient-messages/{patient_message_id}/replay"): page(ADMIN, 404),
    ("POST", "/sync/targets/{target_id}/quarantine/retry"): page(ADMIN, 303, ids=True),
    # managing targets: an empty form is refused (422) after the role check, nothing is changed
    ("GET", "/sync/targets/new"): page(ADMIN),
    ("POST", "/sync/targets"): page(ADMIN, 422),
    ("GET", "/sync/targets/{target_id}"): page(ADMIN, ids=True),
    ("GET", "/sync/targets/{target_id}/edit"): page(ADMIN, ids=True),
    ("POST", "/sync/targets/{target_id}"): page(ADMIN, 422, ids=True),
    ("POST", "/sync/targets/{target_id}/enabled"): page(ADMIN, 422, ids=True),
    # the owner's test is of a missing target (never call the EHR from a test)
    ("POST", "/sync/targets/{target_id}/connection-test"): page(ADMIN, 404, ids=True),
    # the world's records were queued as they were written: nothing more to queue (303)
    ("POST", "/sync/targets/{target_id}/backfill"): page(ADMIN, 303, ids=True),
    ("POST", "/sync/targets/{target_id}/replay"): page(ADMIN, 303, ids=True),
    ("GET", "/sync/messages/{message_id}"): page(ADMIN, ids=True),
}

# The generic FHIR routes, per resource type.
FHIR_GENERIC = {
    ("GET", "/fhir/{resource_type}"): "search",
    ("POST", "/fhir/{resource_type}/_search"): "search",
    ("GET", "/fhir/{resource_type}/{resource_id}"): "read",
    ("GET", "/fhir/{resource_type}/{resource_id}/_history"): "read",
    ("GET", "/fhir/{resource_type}/_history"): "search",  # history of a whole type: 501 to its readers
    ("GET", "/fhir/{resource_type}/{resource_id}/_history/{version_id}"): "read",
    ("POST", "/fhir/{resource_type}"): "create",
    ("PUT", "/fhir/{resource_type}/{resource_id}"): "update",
    ("DELETE", "/fhir/{resource_type}/{resource_id}"): "delete",
}
# DELETE marks a record entered-in-error; only these types take it (others: 405 after the role check).
FHIR_CORRECTABLE = {"MedicationAdministration", "Encounter", "QuestionnaireResponse", "Appointment"}
# Written by POST only (a taken-in score is corrected by POSTing it amended): PUT answers 405 after the role check.
FHIR_CREATE_ONLY = {"Observation"}
# type -> (readers, writers); writers None: derived from other records, nobody writes it (405 for everyone).
FHIR_DATA_TYPES: dict[str, tuple[frozenset[Role], frozenset[Role] | None]] = {
    "Patient": (CARE_TEAM, PRESCRIBERS),
    "MedicationAdministration": (CARE_TEAM, PRESCRIBERS),
    "Encounter": (CARE_TEAM, CARE_TEAM),
    "QuestionnaireResponse": (CARE_TEAM, CARE_TEAM),
    "Appointment": (CARE_TEAM, CARE_TEAM),
    "ServiceRequest": (CARE_TEAM, CARE_TEAM),  # the referral an enrolment answers: written by its schedulers
    "Observation": (CARE_TEAM, CARE_TEAM),  # score Observations are taken in; create only (FHIR_CREATE_ONLY)
    "Procedure": (CARE_TEAM, None),
    "CarePlan": (CARE_TEAM, None),
    "Condition": (CARE_TEAM, None),
    "Goal": (CARE_TEAM, None),
    "Flag": (CARE_TEAM, None),  # urgent plan-status reasons
}
# Published definitions: every role reads them (no scope needed); history/vread are not kept (404).
FHIR_STATIC_TYPES = ("Questionnaire", "StructureDefinition", "CodeSystem", "SearchParameter", "Measure")


def subscription_body() -> dict[str, Any]:
    """A valid backport Subscription that has ended already: accepted, and nothing is ever sent for it."""
    backport = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "authorization matrix",
        "criteria": "https://tandem.example.org/fhir/SubscriptionTopic/urgent-reason-raised",
        "end": "2026-01-01T00:00:00Z",
        "channel": {
            "type": "rest-hook",
            "endpoint": "https://93.184.216.34/hooks",
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": f"{backport}/backport-payload-content", "valueCode": "id-only"}]},
        },
    }


def fhir_entry(resource_type: str, method: str, path: str) -> Entry:
    interaction = FHIR_GENERIC[(method, path)]
    ids = "{resource_id}" in path
    if path == "/fhir/{resource_type}/_history":
        if resource_type in FHIR_STATIC_TYPES:
            return Entry("fhir", EVERYONE, frozenset({501}), scoped=False)
        return Entry("fhir", FHIR_DATA_TYPES[resource_type][0], frozenset({501}))
    if resource_type in FHIR_STATIC_TYPES:
        if interaction in ("create", "update", "delete"):
            return Entry("fhir", EVERYONE, frozenset({405}), scoped=False)
        if "_history" in path:
            return Entry("fhir", EVERYONE, frozenset({404}), scoped=False)
        ok = 200  # Questionnaire: GET search and read have their own routes; POST _search serves it too
        return Entry("fhir", EVERYONE, frozenset({ok}), scoped=False)
    readers, writers = FHIR_DATA_TYPES[resource_type]
    if interaction in ("search", "read"):
        return Entry("fhir", readers, names_records=ids)
    if writers is None:
        return Entry("fhir", EVERYONE, frozenset({405}), names_records=ids, scoped=False)
    if interaction == "delete":
        return Entry("fhir", writers, frozenset({200 if resource_type in FHIR_CORRECTABLE else 405}), names_records=ids)
    if interaction == "update" and resource_type in FHIR_CREATE_ONLY:
        return Entry("fhir", writers, frozenset({405}), names_records=ids)
    return Entry("fhir", writers, frozenset({200, 201} if interaction == "create" else {200}), names_records=ids)


def all_route_cases() -> list[tuple[str, str, str | None, Entry]]:
    """(method, path, FHIR type or None, entry) for every route, the generic FHIR ones once per type."""
    cases: list[tuple[str, str, str | None, Entry]] = [(m, p, None, e) for (m, p), e in MATRIX.items()]
    for method, path in FHIR_GENERIC:
        for resource_type in [*FHIR_DATA_TYPES, *FHIR_STATIC_TYPES]:
            if (method, path) == ("GET", "/fhir/{resource_type}") and resource_type == "Questionnaire":
                continue  # served by GET /fhir/Questionnaire
            if (method, path) == ("GET", "/fhir/{resource_type}/{resource_id}") and resource_type == "Questionnaire":
                continue  # served by GET /fhir/Questionnaire/{resource_id}
            cases.append((method, path, resource_type, fhir_entry(resource_type, method, path)))
    return cases


# ---- the inventory -----------------------------------------------------------------------------------------


def test_every_served_route_has_a_matrix_entry(client: TestClient) -> None:
    served = served_routes(client.app)  # type: ignore[arg-type]
    specified = set(MATRIX) | set(FHIR_GENERIC)
    unspecified = sorted(served - specified)
    gone = sorted(specified - served)
    assert not unspecified, (
        f"routes served without an authorization-matrix entry: {unspecified}. "
        "Add each to MATRIX in tests/security/test_authorization_matrix.py: who may call it, what they get, "
        "and whether it names a tenant's records (another tenant then gets 404)."
    )
    assert not gone, f"matrix entries for routes the app no longer serves: {gone}"
    served_types = set(FHIR_TYPES) | set(STATIC_TYPES)
    assert served_types == set(FHIR_DATA_TYPES) | set(FHIR_STATIC_TYPES), (
        "the FHIR facade serves a different set of resource types than FHIR_DATA_TYPES/FHIR_STATIC_TYPES: "
        f"served {sorted(served_types)}"
    )
    print(f"\n[authorization matrix] {len(served)} routes served, all in the matrix")


# Routes on /api/v1 that touch no clinical data: role only (scopes=None). Everything else names FHIR types.
ROLE_ONLY_PREFIXES = (f"{API}/sync/",)


def test_every_api_route_declares_its_scopes(client: TestClient) -> None:
    declared = declared_scopes(client.app)  # type: ignore[arg-type]
    api_routes = sorted(r for r in served_routes(client.app) if r[1].startswith(f"{API}/"))  # type: ignore[arg-type]
    undeclared = [r for r in api_routes if r not in declared]
    assert not undeclared, f"/api routes without a SMART scope declaration (context_for(..., scopes=)): {undeclared}"
    role_only = [r for r in api_routes if declared[r] is None]
    unexpected = [r for r in role_only if not r[1].startswith(ROLE_ONLY_PREFIXES)]
    assert not unexpected, f"/api routes on clinical data declared role-only (scopes=None): {unexpected}"
    scoped = [r for r in api_routes if declared[r] is not None and r[1].startswith(ROLE_ONLY_PREFIXES)]
    assert not scoped, f"administration routes expected to be role-only: {scoped}"
    print(f"\n[authorization matrix] {len(api_routes)} /api routes, {len(role_only)} role-only, the rest scoped")


# ---- requests ----------------------------------------------------------------------------------------------


@dataclass
class Probe:
    """Sends one route's request as someone; builds fresh bodies and the ids of the world it names."""

    client: TestClient
    settings: Settings
    world: World
    tried: Counter[str] = field(default_factory=Counter)
    world_subscription: str | None = None

    def url(self, method: str, path: str, resource_type: str | None, *, owner: bool) -> str:
        w = self.world
        values: dict[str, str] = {
            "patient_id": w.ids["patients"],
            "key": "phq-9",
            "target_id": w.ids["sync/targets"],
            "outbox_id": str(w.outbox_ids[0]),
            "grant_id": MISSING_ID,
            "task_id": MISSING_ID,
            "note_id": MISSING_ID,
            "service_id": "tandem-plan-status",
            "invitation_id": MISSING_ID,
            "token": "A" * 43,  # a well-formed link token no invitation has
            "session_id": self.world.ids["ketamine-administrations"],
            "message_id": str(w.outbox_ids[-1]),
            "patient_message_id": str(MISSING_INT_ID),
            "version_id": "1",
            "resource_type": resource_type or "",
            "basic_id": "topic-urgent-reason-raised",
        }
        if "{subscription_id}" in path:
            values["subscription_id"] = self.subscription_id()
        if path.startswith(f"{API}/") and "{record_id}" in path:
            kind = path.removeprefix(f"{API}/").removesuffix("/received").removesuffix("/{record_id}")
            values["record_id"] = w.ids[kind]
        if owner and path.endswith(("/dry-run", "/pull", "/connection-test")):
            values["target_id"] = MISSING_ID  # never call the EHR from a test
        if "{resource_id}" in path:
            measure = path.startswith("/fhir/Measure/")
            values["resource_id"] = self._fhir_id(resource_type or ("Measure" if measure else "Questionnaire"))
        # the facade's catch-all: a path under /fhir that no interaction serves
        return path.replace("{path:path}", "Patient/no/such/interaction").format(**values)

    def subscription_id(self) -> str:
        """The world's subscription, made once (ended already: nothing is ever sent for it)."""
        if self.world_subscription is None:
            headers = {**role_headers(self.settings, self.world.tenant_id, "ehr-system"), "Accept": FHIR_JSON}
            response = self.client.post("/fhir/Subscription", json=subscription_body(), headers=headers)
            assert response.status_code == 201, response.text
            self.world_subscription = str(response.json()["id"])
        return self.world_subscription

    def _fhir_id(self, resource_type: str) -> str:
        if resource_type == "Questionnaire":
            return "phq-9"
        if resource_type in ("StructureDefinition", "CodeSystem"):
            definitions = fm.published_definitions(self.settings.canonical_base)
            return next(d["id"] for d in definitions if d["resourceType"] == resource_type)
        if resource_type == "Measure":
            return "phq9-response-12-weeks"
        if resource_type == "SearchParameter":
            return str(search_definitions(self.settings.canonical_base)[0]["id"])
        return self.world.fhir_ids[resource_type]

    def body(self, method: str, path: str, resource_type: str | None, role: Role | None) -> dict[str, Any]:
        """Keyword arguments for the request: a valid body for this route (so an allowed caller succeeds)."""
        w = self.world
        if path.startswith("/fhir"):
            return self._fhir_body(method, path, resource_type)
        if not path.startswith(f"{API}/"):
            return {}  # pages and public routes: their forms are added by the caller
        if method == "POST":
            kind = path.removeprefix(f"{API}/")
            if kind == "patients":
                return {"json": patient_body()}
            if kind == "practitioners":
                return {"json": practitioner_body()}
            if kind == "sync/targets":
                return {"json": sync_target_body()}
            if kind in PATIENT_RECORD_BODIES:
                return {"json": PATIENT_RECORD_BODIES[kind](self._fresh_patient())}
            if kind == "questionnaires":
                return {"json": registration_body(f"urn:test:questionnaire:{uuid.uuid4().hex}")}
            if kind == "protocols":
                return {"json": protocol_body(f"sec-protocol-{uuid.uuid4().hex[:8]}")}
            if path.endswith("/flag-acknowledgements"):
                code, occurrence = w.open_flags[0] if w.open_flags else ("none", "none")
                note = {"enrollment_id": w.enrollment_id, "code": code, "occurrence_id": occurrence}
                return {"json": {**note, "note": "called the patient; safety plan reviewed"}}
            if path.endswith("/notes"):
                return {"json": {"text": "called the patient; no answer"}}
            if path.endswith("/sign"):
                return {"headers": {"If-Match": 'W/"1"'}}
            if path.endswith("/invitations"):
                return {"json": {"instrument": "phq-9", "channel": "none"}}
            if path.endswith("/rems-form/submission"):
                return {"json": {"submitted_at": "2026-10-08T09:00:00+00:00"}}
            if path.endswith("/break-the-glass"):
                return {"json": {"reason": "admitted unconscious; the on-call psychiatrist needs the history"}}
            if path.endswith("/dry-run"):
                return {"json": {"record_kind": "patients", "record_id": w.ids["patients"]}}
            if path.endswith("/pull"):
                return {"json": {}}
            return {"json": {}}
        if method == "PUT" and path.endswith("/credential"):
            return {"json": {"token": "matrix-token-0123456789"}}
        if method == "PATCH" and "/notes/" in path:
            return {"json": {"text": "called the patient; reached"}, "headers": {"If-Match": 'W/"1"'}}
        if method == "PATCH":
            kind = path.removeprefix(f"{API}/").removesuffix("/received").removesuffix("/{record_id}")
            return {"json": {}, "headers": {"If-Match": self._etag(kind)}}
        return {}

    def fresh_fhir_record(self, resource_type: str) -> str:
        """The URL of a new record of the world's tenant, for one request that changes or corrects it."""
        kind = FHIR_RECORD_KINDS[resource_type]
        if kind == "patients":
            record_id = self._fresh_patient()
        else:
            driver = ApiDriver(self.client, role_headers(self.settings, self.world.tenant_id, "ehr-system"))
            record_id = driver.create(kind, PATIENT_RECORD_BODIES[kind](self._fresh_patient()))["id"]
        return f"/fhir/{resource_type}/{record_id}"

    def put_body(self, url: str) -> dict[str, Any]:
        headers = role_headers(self.settings, self.world.tenant_id, "ehr-system")
        stored: dict[str, Any] = self.client.get(url, headers=headers).json()
        version = (stored.get("meta") or {}).get("versionId", "1")
        fhir = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "If-Match": f'W/"{version}"'}
        return {"json": stored, "headers": fhir}

    def _fresh_patient(self) -> str:
        driver = ApiDriver(self.client, role_headers(self.settings, self.world.tenant_id, "ehr-system"))
        return driver.patient()

    def _etag(self, kind: str) -> str:
        reader: Role = "admin" if kind == "sync/targets" else "ehr-system"
        headers = role_headers(self.settings, self.world.tenant_id, reader)
        response = self.client.get(f"{API}/{kind}/{self.world.ids[kind]}", headers=headers)
        return response.headers.get("etag", 'W/"1"')

    def _fhir_body(self, method: str, path: str, resource_type: str | None) -> dict[str, Any]:
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        if path in ("/fhir", "/fhir/"):
            return {"json": {"resourceType": "Bundle", "type": "batch", "entry": []}, "headers": headers}
        if path.endswith("/_search"):
            return {"headers": {"Accept": FHIR_JSON}}
        if (method, path) == ("POST", "/fhir/Subscription"):
            return {"json": subscription_body(), "headers": headers}
        if method == "POST" and resource_type is not None:
            return {"json": self._stored(resource_type, strip=True), "headers": headers}
        if method == "PUT" and resource_type is not None:
            stored = self._stored(resource_type, strip=False)
            version = (stored.get("meta") or {}).get("versionId", "1")
            return {"json": stored, "headers": {**headers, "If-Match": f'W/"{version}"'}}
        return {"headers": {"Accept": FHIR_JSON}}

    def _stored(self, resource_type: str, *, strip: bool) -> dict[str, Any]:
        """The world's own resource of this type (a valid body); stripped of id/meta for a create."""
        if resource_type == "Patient" and strip:
            return patient_resource()
        if resource_type in self.world.fhir_ids:
            headers = role_headers(self.settings, self.world.tenant_id, "ehr-system")
            stored: dict[str, Any] = self.client.get(
                f"/fhir/{resource_type}/{self.world.fhir_ids[resource_type]}", headers=headers
            ).json()
            if strip:
                stored = {k: v for k, v in stored.items() if k not in ("id", "meta", "text")}
            return stored
        return {"resourceType": resource_type, "status": "active"}

    def send(
        self,
        variant: str,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        cookie: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Response:
        self.tried[variant] += 1
        sent_headers = {**kwargs.pop("headers", {}), **(headers or {})}
        if cookie:
            sent_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookie.items())
        return self.client.request(method, url, headers=sent_headers, follow_redirects=False, **kwargs)


def _form(kwargs: dict[str, Any], csrf: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    return {"data": {"csrf_token": csrf, **(extra or {})}}


def sends_to_sign_in(response: Response) -> bool:
    return response.status_code == 303 and response.headers.get("location", "").startswith("/sign-in")


# ---- the checks --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(client: TestClient, settings: Settings, engine: Engine) -> World:
    return build_world(client, settings, engine)


@pytest.fixture(scope="module")
def other_tenant(engine: Engine) -> str:
    return new_tenant_id(engine)


def _run_matrix(
    client: TestClient, settings: Settings, world: World, other_tenant: str
) -> tuple[list[str], Counter[str], int]:
    probe = Probe(client, settings, world)
    failures: list[str] = []
    cases = all_route_cases()

    def check(label: str, response: Response, expected: frozenset[int] | Callable[[Response], bool]) -> None:
        passed = expected(response) if callable(expected) else response.status_code in expected
        if not passed:
            want = "a redirect to /sign-in" if callable(expected) else sorted(expected)
            failures.append(f"{label}: got {response.status_code}, want {want}: {response.text[:200]}")

    for method, path, resource_type, entry in cases:
        name = f"{method} {path}" + (f" [{resource_type}]" if resource_type else "")
        own_url = probe.url(method, path, resource_type, owner=True)
        foreign_url = probe.url(method, path, resource_type, owner=False)
        for variant, label, response_of, expected in _variants(probe, entry, method, path, resource_type, own_url):
            check(f"{name} — {label}", response_of(), expected)
            del variant
        # another tenant's caller, with a role allowed here, naming this tenant's records
        if entry.names_records and entry.surface in ("api", "fhir", "page") and entry.allowed:
            role = _first_allowed(entry)
            if entry.surface == "page":
                cookie, csrf = page_cookie(settings, other_tenant, role)
                kwargs = _form({}, csrf) if method == "POST" else {}
                response = probe.send("another tenant", method, foreign_url, cookie=cookie, **kwargs)
            else:
                kwargs = probe.body(method, path, resource_type, role)
                kwargs["headers"] = {**kwargs.get("headers", {}), **role_headers(settings, other_tenant, role)}
                response = probe.send("another tenant", method, foreign_url, **kwargs)
            expected_foreign = frozenset({405}) if entry.ok == frozenset({405}) else frozenset({404})
            check(f"{name} — another tenant ({role})", response, expected_foreign)
            if method in ("PUT", "PATCH", "DELETE"):  # and the owner's record is untouched
                reread = own_url.replace("/_search", "").removesuffix("/credential")
                reader: Role = "admin" if "sync" in path else "ehr-system"
                if "/notes/" in path:  # the note named is missing: the owner's patient's notes still read
                    reread, reader = reread.split("/notes/")[0] + "/notes", "clinician"
                owner = probe.send(
                    "owner re-read", "GET", reread, headers=role_headers(settings, world.tenant_id, reader)
                )
                check(f"{name} — owner still reads its record after another tenant's {method}", owner, frozenset({200}))
    return failures, probe.tried, len(cases)


def _first_allowed(entry: Entry) -> Role:
    for role in ("clinician", "coordinator", "ehr-system", "admin"):
        if role in entry.allowed and (entry.surface != "page" or role in WEB_ROLES):
            return role
    raise AssertionError("no allowed role")


Variant = tuple[str, str, Callable[[], Response], "frozenset[int] | Callable[[Response], bool]"]


def _variants(
    probe: Probe, entry: Entry, method: str, path: str, resource_type: str | None, url: str
) -> Iterator[Variant]:
    settings, world = probe.settings, probe.world

    def request(variant: str, role: Role | None, **extra: Any) -> Callable[[], Response]:
        def go() -> Response:
            if path.startswith(f"{API}/sync/dead-letters") or path.startswith("/sync/dead-letters"):
                world.kill_letters()
            kwargs = probe.body(method, path, resource_type, role)
            target = url
            if method in ("PUT", "DELETE") and role is not None and resource_type in FHIR_RECORD_KINDS:
                # each correction consumes its record, and a PUT round trip may change derived resources:
                # the world's own records stay as built
                target = probe.fresh_fhir_record(resource_type)
                if method == "PUT":
                    kwargs = probe.put_body(target)
            if "headers" in extra:
                kwargs["headers"] = {**kwargs.get("headers", {}), **extra.pop("headers")}
            return probe.send(variant, method, target, **kwargs, **extra)

        return go

    if entry.surface in ("public", "link"):
        csrf_form: dict[str, Any] = {}
        if method == "POST":
            cookie, csrf = page_cookie(settings, world.tenant_id, "coordinator")
            csrf_form = {"cookie": cookie, **_form({}, csrf, {"role": "admin"})}
        for label, headers in bad_credentials(settings, world.tenant_id).items():
            yield label, f"public with {label}", request(label, None, headers=headers, **csrf_form), entry.ok
        for role in ROLES:
            headers = role_headers(settings, world.tenant_id, role)
            yield role, f"public as {role}", request(role, None, headers=headers, **csrf_form), entry.ok
        return

    if entry.surface == "cds-jwt":
        body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "context": {"patientId": "e1"}}
        for label, headers in bad_credentials(settings, world.tenant_id).items():
            yield label, f"CDS call with {label}", request(label, None, headers=headers, json=body), frozenset({401})
        for role in ROLES:
            headers = role_headers(settings, world.tenant_id, role)
            yield (
                role,
                f"CDS call with a Tandem {role} token",
                request(role, None, headers=headers, json=body),
                (frozenset({401})),
            )
        return

    if entry.surface == "sign-in":
        cookie, csrf = page_cookie(settings, world.tenant_id, "coordinator")
        anonymous_cookie, anonymous_csrf = bad_page_sessions(settings, world.tenant_id)["anonymous session"]
        for label, headers in bad_credentials(settings, world.tenant_id).items():
            token = headers.get("Authorization", "").removeprefix("Bearer ").removeprefix("Basic ")
            form = {"data": {"csrf_token": anonymous_csrf, "token": token, "next": "/"}}
            yield (
                label,
                f"sign-in with {label}",
                request(label, None, cookie=anonymous_cookie, **form),
                # an oversized token is refused by the form's length limit (400) before it is verified
                frozenset({400}) if label == "oversized" else frozenset({401}),
            )
        unregistered_token = role_headers(settings, "no-such-hospital", "coordinator")["Authorization"].split()[1]
        form = {"data": {"csrf_token": anonymous_csrf, "token": unregistered_token, "next": "/"}}
        yield (
            "unregistered tenant",
            "sign-in for an unregistered tenant",
            request("unregistered tenant", None, cookie=anonymous_cookie, **form),
            frozenset({403}),
        )
        for role in ROLES:
            token = role_headers(settings, world.tenant_id, role)["Authorization"].split()[1]
            form = {"data": {"csrf_token": anonymous_csrf, "token": token, "next": "/"}}
            want = frozenset({403}) if role == "ehr-system" else frozenset({303})
            yield role, f"sign-in as {role}", request(role, None, cookie=anonymous_cookie, **form), want
        form = {"data": {"csrf_token": "forged", "token": token, "next": "/"}}
        yield (
            "no CSRF",
            "sign-in without the form token",
            request("no CSRF", None, cookie=anonymous_cookie, **form),
            frozenset({403}),
        )
        del cookie, csrf
        return

    if entry.surface == "page":
        for label, (cookie, csrf) in bad_page_sessions(settings, world.tenant_id).items():
            form = _form({}, csrf) if method == "POST" else {}
            yield label, f"page with {label}", request(label, None, cookie=cookie, **form), sends_to_sign_in
        bearer_only = role_headers(settings, world.tenant_id, "admin")
        yield (
            "bearer instead of cookie",
            "page with a bearer token",
            request("bearer instead of cookie", None, headers=bearer_only),
            sends_to_sign_in,
        )
        cookie, csrf = page_cookie(settings, "no-such-hospital", "admin" if entry.allowed == ADMIN else "coordinator")
        yield (
            "unregistered tenant",
            "page for an unregistered tenant",
            request("unregistered tenant", None, cookie=cookie, **(_form({}, csrf) if method == "POST" else {})),
            frozenset({403}),
        )
        for role in WEB_ROLES:
            cookie, csrf = page_cookie(settings, world.tenant_id, role)
            form = _form({}, csrf) if method == "POST" else {}
            yield role, f"page as {role}", request(role, role, cookie=cookie, **form), entry.expected_for(role)
        if method == "POST":
            cookie, _ = page_cookie(settings, world.tenant_id, _first_allowed(entry))
            yield (
                "no CSRF",
                "form without its CSRF token",
                request("no CSRF", None, cookie=cookie, data={"csrf_token": "forged"}),
                frozenset({403}),
            )
        return

    # api and fhir: bearer tokens
    for label, headers in bad_credentials(settings, world.tenant_id).items():
        yield label, label, request(label, None, headers=headers), frozenset({401})
    unregistered = role_headers(settings, "no-such-hospital", "admin")
    yield (
        "unregistered tenant",
        "unregistered tenant",
        request("unregistered tenant", None, headers=unregistered),
        frozenset({403}),
    )
    for role in ROLES:
        yield (
            role,
            f"as {role}",
            request(role, role, headers=role_headers(settings, world.tenant_id, role)),
            entry.expected_for(role),
        )
    if entry.surface == "fhir" and entry.scoped and (resource_type or entry.scope_type):
        role = _first_allowed(entry)
        interaction = FHIR_GENERIC[(method, path)] if resource_type else entry.scope_interaction
        resource_type = resource_type or entry.scope_type
        assert resource_type is not None
        letters = {"search": "s", "read": "r", "create": "c", "update": "u", "delete": "d"}[interaction]
        other_letters = "".join(c for c in "cruds" if c != letters)
        for scope in (
            "",
            "patient/*.rs",
            "user/Goal.cruds" if resource_type != "Goal" else "user/Patient.cruds",
            f"user/{resource_type}.{other_letters}",
            f"launch/{resource_type}.cruds",
        ):
            headers = role_headers(settings, world.tenant_id, role, scope=scope)
            yield (
                "missing scope",
                f"{role} with scope {scope!r}",
                request("missing scope", None, headers=headers),
                frozenset({403}),
            )
    if entry.surface == "api" and entry.allowed:
        yield from _api_scope_variants(probe, entry, method, path, request)


def _api_scope_variants(
    probe: Probe, entry: Entry, method: str, path: str, request: Callable[..., Callable[[], Response]]
) -> Iterator[Variant]:
    """From the route's declaration: its own scopes pass; without one of its letters, or with none, 403.
    A role-only route answers a scoped token as any other."""
    declared = declared_scopes(probe.client.app)[(method, path)]  # type: ignore[arg-type]
    role = _first_allowed(entry)
    settings, tenant = probe.settings, probe.world.tenant_id
    if declared is None:
        headers = role_headers(settings, tenant, role, scope="")
        yield "api scope", f"{role} with scope '' (role-only)", request("api scope", role, headers=headers), entry.ok
        return
    prefix = "system" if role == "ehr-system" else "user"
    exact = " ".join(f"{prefix}/{n.resource_type}.{n.letters}" for n in declared)
    passes: Callable[[Response], bool] = lambda r: r.status_code != 403  # noqa: E731 (past the scope check)
    headers = role_headers(settings, tenant, role, scope=exact)
    yield "api scope", f"{role} with scope {exact!r}", request("api scope", role, headers=headers), passes
    first = declared[0]
    others = "".join(c for c in "cruds" if c not in first.letters)
    narrowed = " ".join([f"{prefix}/{first.resource_type}.{others}", *exact.split()[1:]])
    for scope in ("", narrowed, f"patient/{first.resource_type}.cruds"):
        headers = role_headers(settings, tenant, role, scope=scope)
        label = f"{role} with scope {scope!r}"
        yield "api missing scope", label, request("api missing scope", None, headers=headers), frozenset({403})


def test_authorization_matrix(client: TestClient, settings: Settings, world: World, other_tenant: str) -> None:
    failures, tried, routes = _run_matrix(client, settings, world, other_tenant)
    total = sum(tried.values())
    print(f"\n[authorization matrix] {routes} routes (generic FHIR routes once per type) x variants: {total} requests")
    for variant, count in sorted(tried.items()):
        print(f"    {variant:<45} {count}")
    assert not failures, f"{len(failures)} of {total} answers differ from the matrix:\n" + "\n".join(failures)


# ---- bundle entries: a batch is authorized entry by entry, like the requests sent alone ------------------------


def test_bundle_entries_are_authorized_one_by_one(client: TestClient, settings: Settings, world: World) -> None:
    failures: list[str] = []
    tried = 0
    for role in ROLES:
        for scope in (None, "user/Goal.rs", "patient/*.rs"):
            headers = {**role_headers(settings, world.tenant_id, role, scope=scope), "Content-Type": FHIR_JSON}
            entries = []
            expected = []
            for resource_type, (readers, _) in FHIR_DATA_TYPES.items():
                may = role in readers and (scope is None or (scope == "user/Goal.rs" and resource_type == "Goal"))
                for url in (f"{resource_type}/{world.fhir_ids[resource_type]}", f"{resource_type}?_count=1"):
                    entries.append({"request": {"method": "GET", "url": url}})
                    expected.append((url, "200" if may else "403"))
            bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
            response = client.post("/fhir", json=bundle, headers=headers)
            assert response.status_code == 200, response.text
            tried += len(entries)
            for (url, want), answer in zip(expected, response.json()["entry"], strict=True):
                got = answer["response"]["status"].split()[0]
                if got != want:
                    failures.append(f"{role} scope={scope!r} GET {url}: entry status {got}, want {want}")
    print(f"\n[authorization matrix] bundle entries tried: {tried}")
    assert not failures, "\n".join(failures)


# ---- the FHIR tables above are what the CapabilityStatement serves ----------------------------------------------

# CapabilityStatement interaction code -> the generic route that carries it.
CAPABILITY_ROUTES = {
    "search-type": {("GET", "/fhir/{resource_type}"), ("POST", "/fhir/{resource_type}/_search")},
    "read": {("GET", "/fhir/{resource_type}/{resource_id}")},
    "vread": {("GET", "/fhir/{resource_type}/{resource_id}/_history/{version_id}")},
    "history-instance": {("GET", "/fhir/{resource_type}/{resource_id}/_history")},
    "create": {("POST", "/fhir/{resource_type}")},
    "update": {("PUT", "/fhir/{resource_type}/{resource_id}")},
    "delete": {("DELETE", "/fhir/{resource_type}/{resource_id}")},
}


def test_the_fhir_tables_cover_every_type_and_interaction_the_capability_statement_serves(
    client: TestClient,
) -> None:
    """A type or interaction added to the CapabilityStatement fails here until the matrix says who may use it."""
    rest = client.get("/fhir/metadata").json()["rest"][0]
    served = {r["type"]: {i["code"] for i in r.get("interaction", [])} for r in rest["resource"]}
    # their own routes and matrix entries: admins read the trail; the EHR system subscribes, and reads the topics
    own_routes = {"AuditEvent", "Subscription", "Basic"}
    assert set(served) - own_routes == {*FHIR_DATA_TYPES, *FHIR_STATIC_TYPES}
    for resource_type in ("Subscription", "Basic"):
        declared = {(m, p) for code in served[resource_type] for m, p in CAPABILITY_ROUTES[code]}
        own = {(m, p.replace("{resource_type}", resource_type)) for m, p in declared if "_search" not in p}
        own = {
            (m, p.replace("{resource_id}", "{subscription_id}" if resource_type == "Subscription" else "{basic_id}"))
            for m, p in own
            if "_history" not in p
        }
        assert own <= set(MATRIX), f"{resource_type}: interactions without their own matrix entry: {own - set(MATRIX)}"
    served = {t: codes for t, codes in served.items() if t not in ("Subscription", "Basic")}
    unknown = {(t, code) for t, codes in served.items() for code in codes if code not in CAPABILITY_ROUTES}
    assert not unknown, f"interactions the matrix does not know how to try: {sorted(unknown)}"
    routes = {route for codes in served.values() for code in codes for route in CAPABILITY_ROUTES[code]}
    assert routes <= set(FHIR_GENERIC) | {("GET", "/fhir/AuditEvent"), ("GET", "/fhir/AuditEvent/{resource_id}")}
    assert {i["code"] for i in rest.get("interaction", [])} <= {"batch", "transaction"}  # both tried entry by entry
