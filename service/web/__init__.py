"""Coordinator web pages: server-rendered HTML over the same service functions as the JSON API.

Wire it with `install_web(app)` (idempotent), or include `router` yourself.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from service.web import (
    caseload_page,
    invitation_forms,
    note_forms,
    outcomes_page,
    patient_page,
    rems_page,
    self_report_pages,
    sign_in,
    smart_launch_pages,
    sync_page,
    target_pages,
    time_zone_page,
    worklist_page,
)
from service.web.rendering import STATIC_DIR, WebRoute
from service.web.sync_admin import replay_dead_letter

__all__ = ["install_web", "replay_dead_letter", "router"]

STYLESHEET = "tandem.css"
router = APIRouter(route_class=WebRoute, include_in_schema=False)


@router.get("/static/tandem.css")
def stylesheet() -> Response:
    """The one stylesheet, from the package (no CDN, nothing fetched at run time)."""
    return Response(
        (STATIC_DIR / STYLESHEET).read_bytes(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


router.include_router(sign_in.router)
router.include_router(caseload_page.router)
router.include_router(patient_page.router)
router.include_router(note_forms.router)
router.include_router(rems_page.router)
router.include_router(sync_page.router)
router.include_router(target_pages.router)
router.include_router(time_zone_page.router)
router.include_router(worklist_page.router)
router.include_router(self_report_pages.router)
router.include_router(invitation_forms.router)
router.include_router(smart_launch_pages.router)
router.include_router(outcomes_page.router)


def install_web(app: FastAPI) -> None:
    """Mount the pages once; a second call (the app already wired) does nothing."""
    if getattr(app.state, "web_installed", False):
        return
    app.include_router(router)
    app.state.web_installed = True
