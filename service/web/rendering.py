"""Templates, security headers, and the one place where errors on the pages become HTML.

Every route of the web router uses `WebRoute`: whatever it returns or raises leaves with the security headers,
and an error becomes an error page (a failed attempt on patient data is audited like on the API). The pages are a
surface of their own (service/api/surfaces.py): their handlers run after the route's dependencies have exited,
so the request's work is rolled back first; a refusal before routing (a body over the cap, the rate limit) on a
page's path is an error page too.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from service.api.page_headers import page_security_headers
from service.api.surfaces import Surface, SurfaceRoute
from service.errors import PatientRestricted, TandemError
from service.web import labels
from service.web.session_cookie import WebSession, csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


class SignInRequired(Exception):
    """No valid session: a page sends the browser to sign in, and back afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path


class CsrfRefused(TandemError):
    status_code = 403
    title = "Form expired or not from this site"

    def __init__(self) -> None:
        super().__init__(
            "This form could not be accepted: its security token is missing or does not match your session "
            "(the page may be old, or you signed in again elsewhere). Nothing was changed. "
            "Go back, reload the page and try again."
        )


@pass_context
def _when(context: Context, value: datetime | None, with_time: bool = True) -> str:
    """An instant in the hospital's zone, with the zone's abbreviation (a 14:00 UTC session in Oslo reads 15:00 CET)."""
    if value is None:
        return "—"
    local = value.astimezone(context.get("zone") or UTC)
    return local.strftime("%d %b %Y %H:%M %Z" if with_time else "%d %b %Y")


@pass_context
def _when_in_zone(context: Context, value: datetime) -> str:
    """An instant with the zone's name, where it is read alone: "3 Dec 2026 09:12 (Europe/London)"."""
    zone = context.get("zone") or ZoneInfo("UTC")
    local = value.astimezone(zone)
    return f"{local.day} {local:%b %Y %H:%M} ({zone})"


@pass_context
def _clock(context: Context, value: datetime) -> str:
    return value.astimezone(context.get("zone") or UTC).strftime("%H:%M")


environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["when"] = _when
environment.filters["date"] = pass_context(lambda context, value: _when(context, value, with_time=False))
environment.filters["clock"] = _clock
environment.filters["when_in_zone"] = _when_in_zone
environment.globals["status_look"] = labels.status_look
environment.globals["flag_label"] = labels.flag_label
environment.globals["phase_label"] = labels.phase_label
environment.globals["due_label"] = labels.due_label
environment.globals["severity_looks"] = labels.SEVERITY_LOOKS


def render(
    request: Request,
    template: str,
    values: Mapping[str, Any],
    *,
    status_code: int = 200,
    web_session: WebSession | None = None,
) -> HTMLResponse:
    session = web_session or getattr(request.state, "web_session", None)
    settings = request.app.state.settings
    body = environment.get_template(template).render(
        **values,
        session=session if session is not None and session.signed_in else None,
        csrf=csrf_token(session, settings) if session is not None else "",
        request_path=request.url.path,
        zone=getattr(request.state, "reading_zone", None) or ZoneInfo("UTC"),
        hospital_zone=getattr(request.state, "hospital_zone", None) or ZoneInfo("UTC"),
    )
    return HTMLResponse(body, status_code=status_code)


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "message": message}, status_code=status_code)


def restricted_page(request: Request, patient_id: str, *, problem: str | None = None, reason: str = "") -> HTMLResponse:
    """A restricted patient: what it means, and for a clinician the form to break the glass."""
    settings = request.app.state.settings
    values = {
        "title": "Restricted patient",
        "patient_id": patient_id,
        "problem": problem,
        "reason": reason,
        "default_minutes": settings.break_glass_default_minutes,
        "max_minutes": settings.break_glass_max_minutes,
    }
    return render(request, "restricted.html", values, status_code=422 if problem else 403)


def sign_in_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/sign-in?next={quote(next_path, safe='/')}", status_code=303)


def framing_origins(request: Request) -> tuple[str, ...]:
    """The EHR origins that may frame this answer: those of an EHR-launched session, else none."""
    session = getattr(request.state, "web_session", None)
    return session.frame_origins if isinstance(session, WebSession) and session.signed_in else ()


def with_security_headers(response: Response, frame_origins: tuple[str, ...] = ()) -> Response:
    for name, value in page_security_headers(frame_origins).items():
        response.headers.setdefault(name, value)
    # Every page may show patient data or a form token: never stored by the browser or a proxy
    # (only the stylesheet says otherwise).
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Pragma", "no-cache")
    return response


def _error_page(request: Request, error: TandemError) -> Response:
    response = (
        restricted_page(request, error.patient_id)
        if isinstance(error, PatientRestricted)
        else error_page(request, error.status_code, error.title, error.message)
    )
    # A refused SMART launch from a registered EHR names that EHR's origins (service/smart_launch/refusals.py).
    origins = framing_origins(request) or tuple(getattr(error, "frame_origins", ()))
    return with_security_headers(response, origins)


WEB_SURFACE = Surface("web", _error_page)


def _to_sign_in(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    return with_security_headers(sign_in_redirect(error.next_path), framing_origins(request))


def _bad_address(request: Request, error: Exception) -> Response:
    # The page's own words: the field names of a query or path parameter mean nothing to a coordinator.
    return WEB_SURFACE.answer(request, TandemError("The address has a value this page cannot use."))


class WebRoute(SurfaceRoute):
    surface = WEB_SURFACE

    def exception_handlers(self) -> Mapping[Any, Callable[[Request, Exception], Response]]:
        return {**super().exception_handlers(), SignInRequired: _to_sign_in, RequestValidationError: _bad_address}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response = await handler(request)
            return with_security_headers(response, framing_origins(request))

        return route
