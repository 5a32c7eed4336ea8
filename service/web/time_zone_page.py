"""Where a user chooses the zone the pages show times in: their own, or the hospital's (the default)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from service.audit_trail import record_success
from service.tenants import own_zone, set_user_zone
from service.web.deps import WEB_ROLES, SessionDep, SignedIn, context_for_form, context_for_page
from service.web.rendering import WebRoute, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
ZONES = sorted(available_timezones())


@router.get("/time-zone")
def time_zone_page(request: Request, session: SessionDep, web_session: SignedIn, saved: bool = False) -> Response:
    ctx = context_for_page(request, web_session, session, "read", "user-time-zones", WEB_ROLES, scopes=None)
    values = {
        "title": "Time zone",
        "zones": ZONES,
        "own": own_zone(session, ctx.tenant_id, ctx.principal.subject),
        "saved": saved,
    }
    return render(request, "time_zone.html", values)


@router.post("/time-zone")
def set_time_zone(
    request: Request,
    session: SessionDep,
    web_session: SignedIn,
    # Empty: no zone of one's own (the hospital's); a name the select does not offer is refused (an error page).
    time_zone: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx = context_for_form(
        request, web_session, session, csrf_token, "update", "user-time-zones", WEB_ROLES, scopes=None
    )
    set_user_zone(session, ctx.tenant_id, ctx.principal.subject, time_zone or None)
    record_success(session, ctx, status_code=303)
    return RedirectResponse("/time-zone?saved=true", status_code=303)
