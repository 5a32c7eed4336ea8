"""SMART App Launch of the patient page: `/smart/launch` (from the EHR, or standalone) and `/smart/callback`.

Both are entry points before anyone is signed in, like /sign-in: the launch is refused unless its `iss` is a
registered EHR, and the callback signs in only the browser that started the launch (the state cookie), once. The
work is service/smart_launch/flow.py; here the browser is redirected and the page session started the sign-in
page's way (sign_in.set_session_cookie).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from service.smart_launch.flow import LAUNCH_MINUTES, finish_launch, start_launch
from service.web.deps import settings_of
from service.web.rendering import WebRoute
from service.web.session_cookie import signed_in_session
from service.web.sign_in import mark_partitioned, set_session_cookie

router = APIRouter(route_class=WebRoute, include_in_schema=False)
STATE_COOKIE = "tandem_smart_state"
CALLBACK = "/smart/callback"


@router.get("/smart/launch")
def smart_launch(request: Request, iss: str | None = None, launch: str | None = None) -> Response:
    started = start_launch(request.app.state.engine, settings_of(request), iss=iss, launch=launch)
    response = RedirectResponse(started.authorize_url, status_code=302)
    # Binds the callback to this browser (no one can finish their launch in someone else's browser). The flow may
    # run inside the EHR's frame (a cross-site context), hence SameSite=None (with Secure) and Partitioned: the
    # cookie is kept under the EHR's top-level site and sent only back to the callback.
    response.set_cookie(
        STATE_COOKIE,
        started.state,
        max_age=LAUNCH_MINUTES * 60,
        path=CALLBACK,
        httponly=True,
        secure=True,
        samesite="none",
    )
    mark_partitioned(response, STATE_COOKIE)
    return response


@router.get(CALLBACK)
def smart_callback(
    request: Request, state: str | None = None, code: str | None = None, error: str | None = None
) -> Response:
    signed_in = finish_launch(
        request.app.state.engine,
        settings_of(request),
        state=state,
        code=code,
        error=error,
        browser_state=request.cookies.get(STATE_COOKIE),
        request_id=str(getattr(request.state, "request_id", "") or "smart-callback"),
    )
    response = RedirectResponse(f"/patients/{signed_in.patient_id}", status_code=303)
    web_session = signed_in_session(
        signed_in.principal,
        not_after=signed_in.not_after,
        frame_origins=signed_in.frame_origins,
        launch_id=signed_in.launch_id,
    )
    set_session_cookie(request, response, web_session)
    response.delete_cookie(STATE_COOKIE, path=CALLBACK, secure=True, httponly=True, samesite="none")
    return response
