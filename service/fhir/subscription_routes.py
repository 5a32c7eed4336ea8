"""The /fhir routes of FHIR Subscriptions (R4 Backport IG): Subscription create/read/search/delete, $status and
$events, and the topics as Basic. Thin: service/fhir/subscriptions.py does the work.

Only the EHR system role manages subscriptions (a subscription pushes patient data, restricted patients' too, as
the EHR system itself may read them), with the SMART scopes of the interaction on `Subscription`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from service.api.deps import PrincipalDep, SessionDep
from service.api.fhir_formats import parse_body
from service.audit_trail import RequestContext
from service.auth.scopes import require_scope
from service.errors import NotPermitted
from service.fhir import subscriptions
from service.fhir.router import _context, _respond, fhir_base
from service.fhir.search_parameters import check_parameters
from service.fhir.surface import FhirRoute

router = APIRouter(prefix="/fhir", include_in_schema=False, route_class=FhirRoute)
MANAGERS = frozenset({"ehr-system"})


def _subscription_context(interaction: str):  # type: ignore[no-untyped-def]
    def dependency(request: Request, principal: PrincipalDep, session: SessionDep) -> RequestContext:
        ctx = _context(request, principal, session, "Subscription", interaction)
        if principal.role not in MANAGERS:
            raise NotPermitted(f"role {principal.role} may not {interaction} Subscription: the EHR system subscribes")
        require_scope(principal.scopes, "Subscription", interaction)
        return ctx

    return Depends(dependency)


def _topic_context(request: Request, principal: PrincipalDep, session: SessionDep) -> RequestContext:
    return _context(request, principal, session, "Basic", "read")


TopicReading = Annotated[RequestContext, Depends(_topic_context)]
Creating = Annotated[RequestContext, _subscription_context("create")]
Reading = Annotated[RequestContext, _subscription_context("read")]
Searching = Annotated[RequestContext, _subscription_context("search")]
Deleting = Annotated[RequestContext, _subscription_context("delete")]


@router.post("/Subscription")
async def create_subscription(request: Request, session: SessionDep, ctx: Creating) -> Response:
    resource = parse_body(await request.body(), request.headers.get("content-type"))
    body = subscriptions.create(session, ctx, resource, fhir_base(request))
    return _respond(request, body, 201, {"Location": f"{fhir_base(request)}/Subscription/{body['id']}"})


@router.get("/Subscription")
def search_subscriptions(request: Request, session: SessionDep, ctx: Searching) -> Response:
    params = list(request.query_params.multi_items())
    return _respond(request, subscriptions.search(session, ctx, params, fhir_base(request)))


@router.get("/Subscription/{subscription_id}/$status")
def subscription_status(subscription_id: str, request: Request, session: SessionDep, ctx: Reading) -> Response:
    return _respond(request, subscriptions.status(session, ctx, subscription_id))


@router.get("/Subscription/{subscription_id}/$events")
def subscription_events(subscription_id: str, request: Request, session: SessionDep, ctx: Reading) -> Response:
    return _respond(request, subscriptions.events(session, ctx, subscription_id, dict(request.query_params)))


@router.get("/Subscription/{subscription_id}")
def read_subscription(subscription_id: str, request: Request, session: SessionDep, ctx: Reading) -> Response:
    return _respond(request, subscriptions.read(session, ctx, subscription_id))


@router.delete("/Subscription/{subscription_id}")
def delete_subscription(subscription_id: str, request: Request, session: SessionDep, ctx: Deleting) -> Response:
    subscriptions.delete(session, ctx, subscription_id)
    note = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "information",
                "code": "informational",
                "diagnostics": f"Subscription/{subscription_id} is off: nothing more is sent",
            }
        ],
    }
    return _respond(request, note)


@router.get("/Basic")
def search_topics(request: Request, ctx: TopicReading) -> Response:
    """The subscription topics (published definitions, no patient data): any signed-in caller reads them."""
    params = list(request.query_params.multi_items())
    check_parameters("Basic", params)
    body = subscriptions.topics(request.app.state.settings.canonical_base, params)
    base = fhir_base(request)
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(body),
        "entry": [{"fullUrl": f"{base}/Basic/{b['id']}", "resource": b, "search": {"mode": "match"}} for b in body],
    }
    return _respond(request, bundle)


@router.get("/Basic/{basic_id}")
def read_topic(basic_id: str, request: Request, ctx: TopicReading) -> Response:
    return _respond(request, subscriptions.topic(request.app.state.settings.canonical_base, basic_id))
