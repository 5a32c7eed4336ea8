"""HTTP for the FHIR facade: content negotiation, ETags, Prefer, and the routes; behaviour is in interactions.

The facade is described by its CapabilityStatement (GET /fhir/metadata), not by the JSON API's OpenAPI document
(service/fhir/openapi.py generates the facade's own from the CapabilityStatement). Its routes
are `FhirRoute`s: every error they raise leaves as an OperationOutcome (service/fhir/surface.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

import fhir_mappings as fm
from service.api.deps import PrincipalDep, SessionDep, context_for
from service.api.fhir_formats import MEDIA_TYPES, parse_body, render, response_format
from service.api.refusals import HTTP_METHODS
from service.audit_trail import RequestContext
from service.auth.principal import Principal, Role
from service.auth.scopes import includes_patient, require_scope
from service.errors import InteractionNotImplemented, NoSuchRoute, NotPermitted, NotSupported, RecordNotFound, invalid
from service.fhir import audit_export, bundles, interactions, smart_discovery
from service.fhir.capability import STATIC_TYPES, capability_statement
from service.fhir.interactions import Outcome
from service.fhir.search_definitions import search_definitions
from service.fhir.search_parameters import check_parameters
from service.fhir.surface import FhirRoute, UnknownInteraction, unknown_interaction
from service.fhir.types import FHIR_TYPES
from service.instruments import INSTRUMENTS, questionnaire_resource
from service.outcome_reports import measures

router = APIRouter(prefix="/fhir", include_in_schema=False, route_class=FhirRoute)
PATIENT_DATA_HEADERS = {"Cache-Control": "no-store"}


def fhir_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _respond(
    request: Request, body: dict[str, Any] | None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    fmt = response_format(request.headers.get("accept"), request.query_params.get("_format"))
    content = render(body, fmt) if body is not None else b""
    return Response(
        content, status_code=status, media_type=MEDIA_TYPES[fmt], headers={**PATIENT_DATA_HEADERS, **(headers or {})}
    )


def _resource_response(request: Request, outcome: Outcome, *, prefer: str | None = None) -> Response:
    headers: dict[str, str] = {}
    if outcome.version_id is not None:
        headers["ETag"] = f'W/"{outcome.version_id}"'
    if outcome.last_updated is not None:
        headers["Last-Modified"] = bundles.http_date(outcome.last_updated)
    if outcome.location is not None and (outcome.status == 201 or outcome.matched):
        headers["Location"] = f"{fhir_base(request)}/{outcome.location}"
    returning = (prefer or "").replace(" ", "")
    if "return=minimal" in returning:
        return _respond(request, None, outcome.status, headers)
    if "return=OperationOutcome" in returning or outcome.notice is not None:
        return _respond(
            request, bundles.informational(outcome.notice or "done", outcome.not_used), outcome.status, headers
        )
    return _respond(request, outcome.resource, outcome.status, headers)


# ---- who may do what ----------------------------------------------------------------------------------------

ACTIONS = {"GET": "read", "POST": "create", "PUT": "update", "DELETE": "delete"}


def authorize(principal: Principal, resource_type: str, interaction: str) -> None:
    """The role must be allowed on the type's records, and a SMART scope must grant the interaction."""
    fhir_type = FHIR_TYPES.get(resource_type)
    if fhir_type is None:
        raise RecordNotFound("resource type", resource_type)
    reading = interaction in ("read", "search")
    if not reading and not fhir_type.writable:
        raise NotSupported(f"{resource_type} is derived from other records and cannot be written here")
    allowed = fhir_type.readers if reading or fhir_type.kind is None else fhir_type.kind.writers
    if principal.role not in allowed:
        raise NotPermitted(f"role {principal.role} may not {interaction} {resource_type}")
    require_scope(principal.scopes, resource_type, interaction)


def _context(
    request: Request, principal: Principal, session: Any, resource_type: str, interaction: str
) -> RequestContext:
    everyone: frozenset[Role] = frozenset(get_args(Role))
    # scopes=None here: the facade checks them itself, per type and interaction (none claimed: refused)
    return context_for(
        "list" if interaction == "search" else interaction,  # type: ignore[arg-type]
        f"fhir/{resource_type}",
        everyone,
        scopes=None,
    )(request, principal, session)


def fhir_context(request: Request, principal: PrincipalDep, session: SessionDep) -> RequestContext:
    """The interaction is the route's: its method, and whether its path names a resource id."""
    resource_type = request.path_params.get("resource_type", "Bundle")
    action = ACTIONS.get(request.method, "read")
    interaction = "search" if request.method == "GET" and "resource_id" not in request.path_params else action
    ctx = _context(request, principal, session, resource_type, interaction)
    _authorize_interaction(principal, resource_type, interaction)
    return ctx


def search_context(request: Request, principal: PrincipalDep, session: SessionDep) -> RequestContext:
    """POST {type}/_search: a search, whatever its method."""
    resource_type = request.path_params["resource_type"]
    ctx = _context(request, principal, session, resource_type, "search")
    _authorize_interaction(principal, resource_type, "search")
    return ctx


def audit_context(request: Request, principal: PrincipalDep, session: SessionDep) -> RequestContext:
    ctx = _context(request, principal, session, "AuditEvent", "search")
    if principal.role != "admin":
        raise NotPermitted("only administrators read the audit trail")
    require_scope(principal.scopes, "AuditEvent", "search")
    return ctx


# Served by routes of their own (service/fhir/subscription_routes.py); what those do not serve is refused here.
OWN_ROUTES = {
    "Basic": "the subscription topics are published by the service, not written",
    "Subscription": "a subscription is not updated: DELETE it and create another",
}


def _authorize_interaction(principal: Principal, resource_type: str, interaction: str) -> None:
    if resource_type in OWN_ROUTES and interaction not in ("read", "search"):
        raise NotSupported(OWN_ROUTES[resource_type])
    if resource_type in STATIC_TYPES:
        if interaction not in ("read", "search"):
            raise NotSupported(f"{resource_type} resources are published by the service, not written")
    elif resource_type != "Bundle":
        authorize(principal, resource_type, interaction)


FhirContext = Annotated[RequestContext, Depends(fhir_context)]
SearchContext = Annotated[RequestContext, Depends(search_context)]
AuditContext = Annotated[RequestContext, Depends(audit_context)]


# ---- routes -------------------------------------------------------------------------------------------------


@router.get("/metadata")
def metadata(request: Request) -> Response:
    """Public, as SMART clients read it before they have a token; it holds no patient data."""
    settings = request.app.state.settings
    body = capability_statement(fhir_base(request), settings.canonical_base, request.app.version)
    return _respond(request, body, headers={"Cache-Control": "public, max-age=300"})


@router.get("/.well-known/smart-configuration")
def smart_configuration(request: Request) -> Response:
    """Public, as SMART discovery is: clients read it to learn where to get a token. It holds no patient data."""
    document = smart_discovery.smart_configuration(request.app.state.settings)
    if document is None:
        raise NoSuchRoute(
            "no SMART configuration: tokens come from the hospital's authorization server, and none is configured "
            "(set TANDEM_SMART_TOKEN_ENDPOINT, and TANDEM_SMART_AUTHORIZATION_ENDPOINT for user sign-in)"
        )
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})


@router.get("/_history")
@router.get("/{resource_type}/_history")
def history_of_many(request: Request, ctx: FhirContext) -> Response:
    """Declared by no CapabilityStatement entry: history is per resource (history-instance)."""
    whole = request.path_params.get("resource_type")
    raise InteractionNotImplemented(
        f"the history of {'every ' + whole if whole else 'the whole server'} is not supported: read one "
        f"resource's history at {whole or '<type>'}/<id>/_history, or search "
        f"{whole or '<type>'}?_lastUpdated=ge<instant> for what changed since then"
    )


@router.get("/AuditEvent")
def search_audit_events(request: Request, session: SessionDep, ctx: AuditContext) -> Response:
    """Administrators export the audit trail (IHE BALP); reading it is itself audited."""
    bundle = audit_export.search_audit(session, ctx, list(request.query_params.multi_items()), fhir_base(request))
    return _respond(request, bundle)


@router.get("/Questionnaire")
def search_questionnaires(request: Request, ctx: FhirContext) -> Response:
    check_parameters("Questionnaire", list(request.query_params.multi_items()))
    return _questionnaires(request, request.query_params.get("url") or request.query_params.get("_id"))


def _questionnaires(request: Request, wanted: str | None) -> Response:
    found = [questionnaire_resource(i) for i in INSTRUMENTS.values()]
    matches = [q for q in found if wanted in (None, q.get("url"), q.get("id"))]
    return _respond(request, _static_bundle(request, matches))


@router.get("/Questionnaire/{resource_id}")
def read_questionnaire(resource_id: str, request: Request, ctx: FhirContext) -> Response:
    for instrument in INSTRUMENTS.values():
        questionnaire = questionnaire_resource(instrument)
        if resource_id in (questionnaire.get("id"), instrument.key):
            return _respond(request, questionnaire)
    raise RecordNotFound("Questionnaire", resource_id)


# ---- quality measures (issue #23) ------------------------------------------------------------------------------


def measure_report_context(request: Request, principal: PrincipalDep, session: SessionDep) -> RequestContext:
    """$evaluate-measure reads the whole programme: admins and clinicians, with a MeasureReport scope."""
    ctx = _context(request, principal, session, "MeasureReport", "search")
    if principal.role not in ("admin", "clinician"):
        raise NotPermitted(f"role {principal.role} may not evaluate measures (admins and clinicians)")
    require_scope(principal.scopes, "MeasureReport", "search")
    return ctx


MeasureReportContext = Annotated[RequestContext, Depends(measure_report_context)]


@router.get("/Measure/$evaluate-measure")
def evaluate_measure_by_url(request: Request, session: SessionDep, ctx: MeasureReportContext) -> Response:
    """Type level: `measure` names the Measure by id or canonical url."""
    wanted = request.query_params.get("measure")
    if not wanted:
        raise invalid("measure", "name the Measure to evaluate (its id or canonical url)")
    return _evaluate(request, session, ctx, wanted.split("|")[0].rsplit("/", 1)[-1], allowed=("measure",))


@router.get("/Measure/{resource_id}/$evaluate-measure")
def evaluate_measure(resource_id: str, request: Request, session: SessionDep, ctx: MeasureReportContext) -> Response:
    return _evaluate(request, session, ctx, resource_id, allowed=())


def _evaluate(
    request: Request, session: SessionDep, ctx: RequestContext, measure_id: str, allowed: tuple[str, ...]
) -> Response:
    params = request.query_params
    for name in params:
        if name not in {"periodStart", "periodEnd", "reportType", "_format", *allowed}:
            raise invalid(name, f"{name} is not a parameter of $evaluate-measure here", issue_code="not-supported")
    if params.get("reportType", "summary") != "summary":
        raise invalid("reportType", "only summary reports are produced", issue_code="not-supported")
    period = {name: _fhir_date(name, params.get(name)) for name in ("periodStart", "periodEnd")}
    report = measures.evaluate_measure(
        session, ctx, measure_id, period_start=period["periodStart"], period_end=period["periodEnd"]
    )
    return _respond(request, report)


def _fhir_date(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise invalid(name, f"{value!r} is not a date (YYYY-MM-DD)", issue_code="value") from None


PUBLISHED_DEFINITIONS = ("StructureDefinition", "CodeSystem", "SearchParameter", "Measure")


def _definitions(request: Request, resource_type: str) -> list[dict[str, Any]]:
    base = request.app.state.settings.canonical_base
    published = [*fm.published_definitions(base), *search_definitions(base), *measures.published_measures(base)]
    return [d for d in published if d["resourceType"] == resource_type]


@router.get("/{resource_type}/{resource_id}/_history/{version_id}")
def vread(
    resource_type: str, resource_id: str, version_id: str, request: Request, session: SessionDep, ctx: FhirContext
) -> Response:
    return _resource_response(request, interactions.vread(session, ctx, resource_type, resource_id, version_id))


@router.get("/{resource_type}/{resource_id}/_history")
def history(resource_type: str, resource_id: str, request: Request, session: SessionDep, ctx: FhirContext) -> Response:
    rows = interactions.history(session, ctx, resource_type, resource_id)
    return _respond(request, bundles.history_bundle(rows, fhir_base(request)))


@router.get("/{resource_type}/{resource_id}")
def read(resource_type: str, resource_id: str, request: Request, session: SessionDep, ctx: FhirContext) -> Response:
    if resource_type in PUBLISHED_DEFINITIONS:
        found = [d for d in _definitions(request, resource_type) if d.get("id") == resource_id]
        if not found:
            raise RecordNotFound(resource_type, resource_id)
        return _respond(request, found[0])
    outcome = interactions.read(session, ctx, resource_type, resource_id)
    if request.headers.get("if-none-match", "").strip() == f'W/"{outcome.version_id}"':
        return Response(status_code=304, headers={"ETag": f'W/"{outcome.version_id}"', **PATIENT_DATA_HEADERS})
    return _resource_response(request, outcome)


def _search(
    resource_type: str, params: list[tuple[str, str]], request: Request, session: Any, ctx: RequestContext
) -> Response:
    if resource_type in STATIC_TYPES:
        check_parameters(resource_type, params)
    if resource_type == "Questionnaire":
        return _questionnaires(request, dict(params).get("url") or dict(params).get("_id"))
    if resource_type in PUBLISHED_DEFINITIONS:
        wanted = dict(params).get("url") or dict(params).get("_id")
        found = [d for d in _definitions(request, resource_type) if wanted in (None, d.get("url"), d.get("id"))]
        return _respond(request, _static_bundle(request, found))
    if includes_patient(params):
        authorize(ctx.principal, "Patient", "read")
    strict = "handling=strict" in (request.headers.get("prefer") or "").replace(" ", "")
    params = [(k, v) for k, v in params if k != "_format"]
    result = interactions.search(session, ctx, resource_type, params, strict=strict)
    return _respond(request, bundles.searchset(result, fhir_base(request), resource_type))


@router.get("/{resource_type}")
def search(resource_type: str, request: Request, session: SessionDep, ctx: FhirContext) -> Response:
    return _search(resource_type, list(request.query_params.multi_items()), request, session, ctx)


@router.post("/{resource_type}/_search")
async def search_by_post(resource_type: str, request: Request, session: SessionDep, ctx: SearchContext) -> Response:
    form = await request.form()
    params = [*request.query_params.multi_items(), *((k, str(v)) for k, v in form.multi_items())]
    response: Response = await _in_thread(_search, resource_type, params, request, session, ctx)
    return response


@router.post("/{resource_type}")
async def create(resource_type: str, request: Request, session: SessionDep, ctx: FhirContext) -> Response:
    resource = parse_body(await request.body(), request.headers.get("content-type"))
    outcome = await _in_thread(
        interactions.create, session, ctx, resource_type, resource, if_none_exist=request.headers.get("if-none-exist")
    )
    return _resource_response(request, outcome, prefer=request.headers.get("prefer"))


@router.put("/{resource_type}/{resource_id}")
async def update(
    resource_type: str, resource_id: str, request: Request, session: SessionDep, ctx: FhirContext
) -> Response:
    resource = parse_body(await request.body(), request.headers.get("content-type"))
    outcome = await _in_thread(
        interactions.update,
        session,
        ctx,
        resource_type,
        resource_id,
        resource,
        if_match=request.headers.get("if-match"),
    )
    return _resource_response(request, outcome, prefer=request.headers.get("prefer"))


@router.delete("/{resource_type}/{resource_id}")
def delete(resource_type: str, resource_id: str, request: Request, session: SessionDep, ctx: FhirContext) -> Response:
    interactions.delete(session, ctx, resource_type, resource_id)
    note = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "information",
                "code": "informational",
                "diagnostics": f"{resource_type}/{resource_id} is marked entered-in-error; reads now answer 410",
            }
        ],
    }
    return _respond(request, note)


@router.post("")
@router.post("/", include_in_schema=False)
async def batch_or_transaction(request: Request, session: SessionDep, ctx: FhirContext) -> Response:
    bundle = parse_body(await request.body(), request.headers.get("content-type"))
    if bundle.get("resourceType") != "Bundle":
        raise invalid("resourceType", "POST /fhir takes a Bundle")
    settings = request.app.state.settings
    result = await _in_thread(
        bundles.process_bundle,
        session,
        ctx,
        bundle,
        max_entries=settings.max_bundle_entries,
        authorize=lambda resource_type, interaction: authorize(ctx.principal, resource_type, interaction),
        charge=getattr(request.state, "charge_requests", None),
    )
    return _respond(request, result)


def _static_bundle(request: Request, resources: list[dict[str, Any]]) -> dict[str, Any]:
    base = fhir_base(request)
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


async def _in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Database work runs in the thread pool: no blocking I/O inside async def."""
    result: Any = await run_in_threadpool(function, *args, **kwargs)
    return result


# Last: any other method or path under /fhir is the facade's own 404/405, answered as an OperationOutcome.
for catch_all in ("", "/{path:path}"):
    router.add_api_route(
        catch_all, unknown_interaction, methods=list(HTTP_METHODS), route_class_override=UnknownInteraction
    )
