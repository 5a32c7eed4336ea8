"""Dependencies every route uses: the database session, the caller, the request context."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from service.audit_trail import AuditIntent, RequestContext
from service.auth.principal import Principal, Role
from service.auth.scopes import Needs, require_needs
from service.auth.tokens import TokenVerifier
from service.db.unit_of_work import UnitOfWork, unit_of_work
from service.errors import NotAuthenticated, NotPermitted
from service.records.audit import AuditAction
from service.records.tenant import Tenant
from service.settings import Settings

bearer = HTTPBearer(auto_error=False, description="OAuth2 bearer JWT; `tandem dev-token` prints one in development")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[UnitOfWork]:
    """The request's unit of work: committed when the route returned, rolled back when it raised.

    scope="function": FastAPI runs this exit once the route's response is built and before it is sent (the
    default "request" scope runs it after the response went out, when a failed commit would already have been
    answered 201). So a failed commit is the answer: 503, and what it says is true (service/db/unit_of_work.py)."""
    with unit_of_work(engine) as uow:
        yield uow


SessionDep = Annotated[UnitOfWork, Depends(get_session, scope="function")]
# Row numbers in paths (outbox messages): beyond the database's integer is a 422, never a 500.
RowNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("send Authorization: Bearer <token>; in development `tandem dev-token` prints one")
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def context_for(
    action: AuditAction, record_kind: str, allowed: frozenset[Role], *, scopes: Needs | None
) -> Callable[..., RequestContext]:
    """The caller, checked against the roles allowed here, its SMART scopes and its tenant, with the audit intent
    declared. `scopes` is what the route touches in FHIR terms (`needs("QuestionnaireResponse.s")`); None only for
    administration that is no clinical data (sync targets): role only. The dependency carries its declaration,
    so the authorization matrix can check that every route has one."""

    def dependency(request: Request, principal: PrincipalDep, session: SessionDep) -> RequestContext:
        if session.get(Tenant, principal.tenant_id) is None:
            raise NotPermitted(f"tenant {principal.tenant_id!r} is not registered on this service")
        session.rollback()  # end the read transaction: on SQLite it holds the write lock until the service commits
        ctx = RequestContext(principal=principal, request_id=request.state.request_id, settings=get_settings(request))
        ctx.intent = AuditIntent(action, record_kind)
        request.state.ctx = ctx  # from here on, a refusal is audited as a failed attempt
        if principal.role not in allowed:
            raise NotPermitted(f"role {principal.role} may not {action} {record_kind}")
        require_needs(principal.scopes, scopes)
        return ctx

    dependency.scope_needs = scopes  # type: ignore[attr-defined]
    return dependency
