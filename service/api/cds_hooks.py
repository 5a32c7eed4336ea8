"""CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/): discovery and the plan-status services.

The services are called by EHRs, authenticated by the EHR's own signed JWT (service/cds_hooks/auth.py), never a
Tandem bearer token. Discovery holds no patient data and is public, like /fhir/metadata.

(No `from __future__ import annotations`: FastAPI reads the annotations at run time.)
"""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request

from service.api.deps import SessionDep, get_settings
from service.api.problems import WRITE_ERROR_RESPONSES
from service.cds_hooks.auth import CdsRefusal, verify_cds_jwt
from service.cds_hooks.discovery import discovery_document
from service.cds_hooks.hooks import CdsLinks, HookRequest, answer_hook, caller_context
from service.cds_hooks.jwks import JwksCache

router = APIRouter(tags=["cds-hooks"])
logger = logging.getLogger("tandem.cds_hooks")
ServiceId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9\-]+$", description="A service id from discovery")]
REFUSED_JWT = (
    "The CDS JWT is missing, malformed, expired, replayed, for another endpoint, or not signed by a registered "
    "EHR's key"
)
CDS_RESPONSES = {**WRITE_ERROR_RESPONSES, 401: {**WRITE_ERROR_RESPONSES[401], "description": REFUSED_JWT}}


@router.get(
    "/cds-services",
    operation_id="discoverCdsServices",
    summary="CDS Hooks discovery: the services, their hooks and prefetch templates (public: no patient data)",
)
def discovery() -> dict[str, Any]:
    return discovery_document()


class CdsCaller:
    """The EHR that signed this call's JWT, as the request's caller (its refusals are audited in its hospital)."""

    def __init__(
        self,
        request: Request,
        session: SessionDep,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> None:
        # The service id as sent, not yet validated: the JWT is checked first, so a caller without a valid one
        # learns nothing about the request's shape (a wrong id is then a 401 too: the JWT's aud cannot match).
        service_id = str(request.path_params.get("service_id", ""))[:64]
        settings = get_settings(request)
        audience = f"{settings.public_base_url.rstrip('/')}/cds-services/{service_id}"
        jwks: JwksCache = request.app.state.cds_jwks
        try:
            client = verify_cds_jwt(
                session, jwks, authorization, audience, leeway_seconds=settings.token_leeway_seconds
            )
        except CdsRefusal as refused:
            if refused.client is not None:  # audited in the hospital the EHR is registered for
                request.state.ctx = caller_context(refused.client, settings, request.state.request_id, service_id)
            else:
                logger.warning("CDS call refused: %s", refused, extra={"request_id": request.state.request_id})
            raise
        self.client = client
        self.ctx = caller_context(client, settings, request.state.request_id, service_id)
        request.state.ctx = self.ctx  # from here on, a refusal is audited as a failed attempt


@router.post(
    "/cds-services/{service_id}",
    operation_id="callCdsService",
    summary="Call a CDS service: the plan status card for the patient in view (no card for an unknown patient)",
    responses=CDS_RESPONSES,
)
def call_service(
    service_id: ServiceId,
    body: HookRequest,
    request: Request,
    session: SessionDep,
    caller: Annotated[CdsCaller, Depends()],
) -> dict[str, Any]:
    settings = get_settings(request)
    links = CdsLinks(public_base_url=settings.public_base_url, smart_launch_url=smart_launch_url(request))
    return answer_hook(session, caller.ctx, caller.client, service_id, body, links)


SMART_LAUNCH_PATH = "/smart/launch"


def smart_launch_url(request: Request) -> str | None:
    """The cards' `smart` link: TANDEM_CDS_SMART_LAUNCH_URL, else this service's own SMART launch of the patient
    page when it serves one (the EHR adds `launch` and `iss`, CDS Hooks 2.0 §Link), else none."""
    settings = get_settings(request)
    if settings.cds_smart_launch_url:
        return settings.cds_smart_launch_url
    served = any(getattr(route, "path", None) == SMART_LAUNCH_PATH for route in request.app.routes)
    return f"{settings.public_base_url.rstrip('/')}{SMART_LAUNCH_PATH}" if served else None
