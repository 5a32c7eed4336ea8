"""Every page form refused for its CSRF token or for the caller's role writes a failure audit row, like an API
refusal (issue #16, finding 10). Generated over the form routes the app serves: a new form route fails here until
it is listed with the roles it allows."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.auth.principal import Role
from service.records.audit import AuditEvent
from tests.builders import ApiDriver
from tests.web.conftest import Browser

# Each form route: a role that may post it, and one that may not (None: anyone may post it, e.g. sign-in).
FORM_ROUTES: dict[str, tuple[Role, Role | None]] = {
    "/sign-in": ("clinician", None),
    "/sign-in/demo": ("clinician", None),
    "/sign-out": ("clinician", None),
    "/patients/{patient_id}/acknowledgements": ("clinician", "coordinator"),
    "/patients/{patient_id}/break-the-glass": ("clinician", "coordinator"),
    "/patients/{patient_id}/notes": ("coordinator", "admin"),
    "/patients/{patient_id}/notes/{note_id}": ("clinician", "admin"),
    # recording the REMS form's submission: the clinician's (issue #23)
    "/patients/{patient_id}/sessions/{session_id}/rems-form/submission": ("clinician", "coordinator"),
    "/sync/dead-letters/{message_id}/replay": ("admin", "clinician"),
    "/sync/patient-messages/{patient_message_id}/replay": ("admin", "coordinator"),
    "/sync/targets/{target_id}/quarantine/retry": ("admin", "coordinator"),
    "/sync/targets": ("admin", "coordinator"),
    "/sync/targets/{target_id}": ("admin", "clinician"),
    "/sync/targets/{target_id}/enabled": ("admin", "coordinator"),
    "/sync/targets/{target_id}/connection-test": ("admin", "clinician"),
    "/sync/targets/{target_id}/backfill": ("admin", "coordinator"),
    "/sync/targets/{target_id}/replay": ("admin", "clinician"),
    "/time-zone": ("coordinator", None),  # every signed-in role sets its own
    # the worklist's actions: the care team's (an administrator is refused)
    "/worklist/outreach": ("coordinator", "admin"),
    "/worklist/snooze": ("coordinator", "admin"),
    "/worklist/escalation": ("coordinator", "admin"),
    "/worklist/done": ("clinician", "admin"),
    # sending a questionnaire from the patient page and the worklist: the care team's
    "/patients/{patient_id}/invitations": ("coordinator", "admin"),
    "/worklist/invitations": ("clinician", "admin"),
}
# The patient's questionnaire forms (/r/{token}) carry no CSRF token: the unguessable link token in their path is
# the credential, which a forging site does not have (tests/self_report/test_link_pages.py refuses bad links).
LINK_FORMS = "service.web.self_report_pages"
FORGED_TOKENS = ("", "forged-token")


def served_form_routes(app: FastAPI) -> list[str]:
    """Every POST the pages answer (the page routers' endpoints live in service.web)."""
    return sorted(
        str(route.path)
        for route in iter_route_contexts(app.routes)
        if "POST" in (route.methods or ())
        and route.endpoint.__module__.startswith("service.web.")
        and route.endpoint.__module__ != LINK_FORMS
    )


def test_every_form_route_is_listed(web_app: FastAPI) -> None:
    assert served_form_routes(web_app) == sorted(FORM_ROUTES)


def _failures(engine: Engine, response: httpx.Response) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(
            session.exec(select(AuditEvent).where(col(AuditEvent.request_id) == response.headers["x-request-id"]))
        )


def _path(template: str, patient_id: str) -> str:
    ids = r"\{(patient_message_id|message_id|target_id|note_id|session_id)\}"
    return re.sub(ids, "1", template.replace("{patient_id}", patient_id))


@pytest.mark.parametrize("template", sorted(FORM_ROUTES))
def test_a_forged_form_token_is_refused_and_audited(
    template: str,
    browser: Callable[..., Browser],
    api_as: Callable[..., ApiDriver],
    tenant: str,
    web_engine: Engine,
) -> None:
    allowed, _ = FORM_ROUTES[template]
    patient_id = api_as(tenant).patient()
    b = browser()
    b.sign_in(tenant, allowed, subject=f"forged-{allowed}")
    for token in FORGED_TOKENS:
        refused = b.post(_path(template, patient_id), {"note": "x", "reason": "x"}, csrf=token)
        assert refused.status_code == 403, (template, refused.text)
        assert "Nothing was changed" in refused.text
        (row,) = _failures(web_engine, refused)
        assert (row.outcome, row.status_code, row.actor, row.tenant_id) == (
            "failure",
            403,
            f"forged-{allowed}",
            tenant,
        )
        if "{patient_id}" in template:
            assert row.patient_id == patient_id


@pytest.mark.parametrize("template", sorted(t for t, (_, refused) in FORM_ROUTES.items() if refused is not None))
def test_a_role_that_may_not_post_the_form_is_refused_and_audited(
    template: str,
    browser: Callable[..., Browser],
    api_as: Callable[..., ApiDriver],
    tenant: str,
    web_engine: Engine,
) -> None:
    _, refused_role = FORM_ROUTES[template]
    assert refused_role is not None
    patient_id = api_as(tenant).patient()
    b = browser()
    b.sign_in(tenant, refused_role)
    b.get("/sync" if refused_role == "admin" else "/")  # an admin's home is the sync page
    refused = b.post(_path(template, patient_id), {"note": "x", "reason": "x"}, csrf=b.csrf())
    assert refused.status_code == 403, (template, refused.text)
    (row,) = _failures(web_engine, refused)
    assert (row.outcome, row.status_code, row.actor_role) == ("failure", 403, refused_role)


def test_an_anonymous_forged_sign_in_is_refused_without_an_audit_row(
    browser: Callable[..., Browser], web_engine: Engine
) -> None:
    """No one is signed in, so there is no one to record (like an API request without a token)."""
    b = browser()
    b.get("/sign-in")
    refused = b.post("/sign-in", {"token": "x"}, csrf="forged-token")
    assert refused.status_code == 403
    assert _failures(web_engine, refused) == []
