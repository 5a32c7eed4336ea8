"""Signing in (a bearer token from the identity provider, or one click as a demo user in development) and out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from service.auth.principal import Principal, Role
from service.auth.tokens import TokenVerifier
from service.errors import NotAuthenticated
from service.records.tenant import Tenant
from service.web.deps import WEB_ROLES, SessionDep, browser_session, require_sign_in_form_token, settings_of
from service.web.rendering import WebRoute, render
from service.web.session_cookie import (
    COOKIE_NAME,
    MAX_SCOPE_CHARS,
    WebSession,
    anonymous_session,
    encode_session,
    signed_in_session,
)

DEMO_TENANT = "demo"
DEMO_ROLES: tuple[Role, ...] = ("coordinator", "clinician", "admin")
router = APIRouter(route_class=WebRoute, include_in_schema=False)


def safe_next(value: str | None) -> str:
    """Only a path on this site: never another origin (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 2000:
        return "/"
    return value


def set_session_cookie(
    request: Request, response: Response, web_session: WebSession, *, embedded: bool | None = None
) -> None:
    remaining = int((web_session.expires_at - datetime.now(UTC)).total_seconds())
    # A session launched from an EHR lives inside the EHR's frame, a cross-site context: a SameSite=Lax cookie is
    # neither stored nor sent there, so that one (and only that one) is SameSite=None, which browsers accept only
    # with Secure, and Partitioned (CHIPS): kept under the EHR's top-level site, so it never replaces or is sent
    # as the same user's first-party Tandem session, and no other site that frames Tandem ever sees it. Every
    # other session stays SameSite=Lax. Forms carry CSRF tokens either way (session_cookie.py).
    embedded = web_session.embedded if embedded is None else embedded
    response.set_cookie(
        COOKIE_NAME,
        encode_session(web_session, settings_of(request)),
        max_age=max(0, remaining),
        path="/",
        httponly=True,
        secure=embedded or request.url.scheme == "https",
        samesite="none" if embedded else "lax",
    )
    if embedded:
        mark_partitioned(response, COOKIE_NAME)


def mark_partitioned(response: Response, name: str) -> None:
    """Add `Partitioned` (CHIPS) to the cookie just set: Starlette writes it only on Python 3.14+ (http.cookies)."""
    prefix = f"{name}=".encode()
    for index in range(len(response.raw_headers) - 1, -1, -1):
        header, value = response.raw_headers[index]
        if header == b"set-cookie" and value.startswith(prefix):
            response.raw_headers[index] = (header, value + b"; Partitioned")
            return


def home_for(role: Role | None) -> str:
    return "/sync" if role == "admin" else "/"


def _sign_in_page(
    request: Request, web_session: WebSession, next_path: str, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    settings = settings_of(request)
    values: dict[str, Any] = {
        "title": "Sign in",
        "next_path": next_path,
        "error": error,
        "demo_roles": DEMO_ROLES if settings.development else (),
        "signed_out": request.query_params.get("signed_out") == "1",
    }
    response = render(request, "sign_in.html", values, status_code=status_code, web_session=web_session)
    set_session_cookie(request, response, web_session)
    return response


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    current = browser_session(request)
    if current is not None and current.signed_in and current.role in WEB_ROLES:
        return RedirectResponse(safe_next(next) if next else home_for(current.role), status_code=303)
    return _sign_in_page(request, current or anonymous_session(), safe_next(next))


@router.post("/sign-in")
def sign_in_with_token(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form(max_length=8192)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "/",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    current = browser_session(request)
    require_sign_in_form_token(request, current, session, csrf_token, "create")
    assert current is not None
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = verifier.verify(token.strip())
    except NotAuthenticated as refused:
        return _sign_in_page(request, current, safe_next(next_path), error=refused.message, status_code=401)
    problem = _refusal(session, principal) or _scope_refusal(principal)
    if problem is not None:
        return _sign_in_page(request, current, safe_next(next_path), error=problem, status_code=403)
    return _start(request, principal, safe_next(next_path), not_after=_token_expiry(token.strip()))


@router.post("/sign-in/demo")
def sign_in_as_demo_user(
    request: Request,
    session: SessionDep,
    role: Annotated[str, Form(max_length=32)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    settings = settings_of(request)
    current = browser_session(request)
    require_sign_in_form_token(request, current, session, csrf_token, "create")
    assert current is not None
    if not settings.development:
        return _sign_in_page(request, current, "/", error="Demo sign-in exists only in development.", status_code=404)
    chosen = next((r for r in DEMO_ROLES if r == role), None)
    if chosen is None:
        return _sign_in_page(request, current, "/", error="Choose one of the demo roles.", status_code=400)
    principal = Principal(subject=f"demo-{chosen}", tenant_id=DEMO_TENANT, role=chosen, scopes=None)
    problem = _refusal(session, principal)
    if problem is not None:
        problem += " Load the demo data first: `tandem demo load`."
        return _sign_in_page(request, current, "/", error=problem, status_code=403)
    return _start(request, principal, home_for(principal.role), not_after=None)


@router.post("/sign-out")
def sign_out(request: Request, session: SessionDep, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    current = browser_session(request)
    require_sign_in_form_token(request, current, session, csrf_token, "delete")
    response = RedirectResponse("/sign-in?signed_out=1", status_code=303)
    # Inside the EHR's frame only a cookie of the embedded kind replaces the embedded one (a Lax one is refused).
    set_session_cookie(request, response, anonymous_session(), embedded=current is not None and current.embedded)
    return response


def _refusal(session: Session, principal: Principal) -> str | None:
    if principal.role not in WEB_ROLES:
        return f"The role {principal.role} cannot use these pages (EHR systems use the API)."
    tenant = session.get(Tenant, principal.tenant_id)
    session.rollback()
    if tenant is None:
        return f"The hospital {principal.tenant_id!r} is not registered on this service."
    return None


def _scope_refusal(principal: Principal) -> str | None:
    # The session keeps the token's scopes (the pages hold it to them): they must fit in the cookie.
    if principal.scopes is not None and len(" ".join(principal.scopes)) > MAX_SCOPE_CHARS:
        return f"The token carries more scopes than a page session holds ({MAX_SCOPE_CHARS} characters)."
    return None


def _token_expiry(token: str) -> datetime | None:
    # Already verified; read only its expiry, so the session never outlives the token.
    claims = jwt.decode(token, options={"verify_signature": False})
    expires = claims.get("exp")
    return datetime.fromtimestamp(expires, tz=UTC) if isinstance(expires, int | float) else None


def _start(request: Request, principal: Principal, next_path: str, *, not_after: datetime | None) -> Response:
    response = RedirectResponse(next_path if next_path != "/" else home_for(principal.role), status_code=303)
    set_session_cookie(request, response, signed_in_session(principal, not_after=not_after))
    return response
