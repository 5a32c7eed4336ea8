"""Who is asking, for the pages: the session cookie, CSRF on every form, and the request context for services."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import suppress
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlmodel import Session

from service.api.deps import get_engine
from service.audit_trail import AuditIntent, RequestContext
from service.auth.principal import Role
from service.auth.scopes import Needs, needs, require_needs
from service.db.unit_of_work import UnitOfWork, unit_of_work
from service.errors import NotPermitted
from service.records.audit import AuditAction
from service.records.tenant import Tenant
from service.settings import Settings
from service.tenants import reading_zone
from service.web.rendering import CsrfRefused, SignInRequired
from service.web.session_cookie import COOKIE_NAME, WebSession, csrf_valid, decode_session

# Who may use the pages at all; EHR systems use the API.
WEB_ROLES: frozenset[Role] = frozenset({"clinician", "coordinator", "admin"})
CARE_PAGES: frozenset[Role] = frozenset({"clinician", "coordinator"})
ADMIN_PAGES: frozenset[Role] = frozenset({"admin"})
# What the pages touch, in FHIR terms, for a session signed in with a scoped token (as on /api/v1).
CASELOAD_PAGE = needs("Patient.s", "CarePlan.s", "Flag.s")
PATIENT_PAGE = needs(
    "Patient.r", "CarePlan.r", "Flag.r", "MedicationAdministration.s", "Encounter.s", "QuestionnaireResponse.s"
)


def page_session(request: Request, engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[UnitOfWork]:
    """The page request's unit of work, like the API's (committed before the page or redirect is sent), but
    reachable from the error path: a refusal is audited in a transaction of its own, so this one must be rolled
    back first (SQLite holds its write lock until then)."""
    with unit_of_work(engine) as uow:
        request.state.page_session = uow
        yield uow


SessionDep = Annotated[UnitOfWork, Depends(page_session, scope="function")]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def browser_session(request: Request) -> WebSession | None:
    """The session in the request's cookie, if it is ours and current (signed in or not)."""
    session = decode_session(request.cookies.get(COOKIE_NAME), settings_of(request))
    request.state.web_session = session
    return session


def signed_in(request: Request) -> WebSession:
    session = browser_session(request)
    if session is None or not session.signed_in or session.role not in WEB_ROLES:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/")
    return session


SignedIn = Annotated[WebSession, Depends(signed_in)]


def context_for_page(
    request: Request,
    web_session: WebSession,
    session: Session,
    action: AuditAction,
    record_kind: str,
    allowed: frozenset[Role],
    *,
    scopes: Needs | None,
    patient_id: str | None = None,
) -> RequestContext:
    ctx = _declare(request, web_session, session, action, record_kind, patient_id)
    _require_role(ctx, allowed, scopes)
    return ctx


def context_for_form(
    request: Request,
    web_session: WebSession,
    session: Session,
    csrf_token: str,
    action: AuditAction,
    record_kind: str,
    allowed: frozenset[Role],
    *,
    scopes: Needs | None,
    patient_id: str | None = None,
) -> RequestContext:
    """Where every signed-in form post starts: the audit intent is declared before the form's token and the role
    are checked, so either refusal is audited as a failed attempt, like an API refusal."""
    ctx = _declare(request, web_session, session, action, record_kind, patient_id)
    if not csrf_valid(web_session, csrf_token, settings_of(request)):
        raise CsrfRefused()
    _require_role(ctx, allowed, scopes)
    return ctx


def require_sign_in_form_token(
    request: Request, current: WebSession | None, session: Session, csrf_token: str, action: AuditAction
) -> None:
    """The sign-in and sign-out forms, which anyone may post: a refused token is audited when the browser's
    session names someone; an anonymous one has no one to record, like an API request without a token."""
    if csrf_valid(current, csrf_token, settings_of(request)):
        return
    if current is not None and current.signed_in:
        with suppress(NotPermitted):  # a tenant no longer registered: nothing to attribute the attempt to
            _declare(request, current, session, action, "web-sessions", None)
    raise CsrfRefused()


def _declare(
    request: Request,
    web_session: WebSession,
    session: Session,
    action: AuditAction,
    record_kind: str,
    patient_id: str | None,
) -> RequestContext:
    """The caller and what it is about to do; from here on a refusal is audited (rendering.WebRoute)."""
    principal = web_session.principal()
    tenant = session.get(Tenant, principal.tenant_id)
    if tenant is None:
        raise NotPermitted(f"tenant {principal.tenant_id!r} is not registered on this service; sign in again")
    # Every time on the page is shown in the reader's zone: their own if they set one, else the hospital's.
    request.state.hospital_zone = ZoneInfo(tenant.time_zone)
    request.state.reading_zone = ZoneInfo(reading_zone(session, tenant, principal.subject))
    session.rollback()  # end the read transaction before the service's own unit of work (SQLite write lock)
    request_id = getattr(request.state, "request_id", None) or str(uuid.uuid4())
    ctx = RequestContext(principal=principal, request_id=request_id, settings=settings_of(request))
    ctx.intent = AuditIntent(action, record_kind, patient_id=patient_id)
    request.state.ctx = ctx
    return ctx


def page_zone(request: Request) -> ZoneInfo:
    """The zone the page shows times in (set once the caller is known, see _declare); UTC before that."""
    zone = getattr(request.state, "reading_zone", None)
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo("UTC")


def _require_role(ctx: RequestContext, allowed: frozenset[Role], scopes: Needs | None) -> None:
    if ctx.principal.role not in allowed:
        raise NotPermitted(f"a {ctx.principal.role} may not open this page")
    require_needs(ctx.principal.scopes, scopes)  # a session signed in with a scoped token is held to it
