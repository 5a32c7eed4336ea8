"""The FHIR facade's error surface: every error on a /fhir route leaves as an OperationOutcome.

`FhirRoute` is the route class of the FHIR router, so its routes render their errors here (service/api/surfaces.py
explains the mechanism). The facade also owns the paths under it that no interaction serves: `unknown_interaction`
is the router's last route and answers 404 (no such interaction) or 405 (the path takes other methods) as an
OperationOutcome, where Starlette's router would otherwise answer with the app's JSON API format.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from starlette.routing import Match

from service.api.fhir_formats import MEDIA_TYPES, NotAcceptable, render, response_format
from service.api.operation_outcome import operation_outcome
from service.api.refusals import HTTP_METHODS
from service.api.surfaces import Surface, SurfaceRoute
from service.errors import MethodNotAllowed, NoSuchRoute, TandemError


def outcome_response(request: Request, error: TandemError) -> Response:
    try:
        fmt = response_format(request.headers.get("accept"), request.query_params.get("_format"))
    except NotAcceptable:
        fmt = "json"  # the refusal itself must still be readable
    return Response(render(operation_outcome(error), fmt), status_code=error.status_code, media_type=MEDIA_TYPES[fmt])


FHIR_SURFACE = Surface("fhir", outcome_response)


class FhirRoute(SurfaceRoute):
    surface = FHIR_SURFACE


class UnknownInteraction(FhirRoute):
    """The catch-all: it matches any method at any path under the prefix, after every real interaction."""


def unknown_interaction(request: Request) -> Response:
    real = [
        context
        for context in iter_route_contexts(request.app.router.routes)
        if isinstance(context.original_route, FhirRoute) and not isinstance(context.original_route, UnknownInteraction)
    ]
    allowed = [
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in real)
    ]
    if allowed:
        raise MethodNotAllowed(f"{request.method} is not a FHIR interaction at this path", allowed)
    raise NoSuchRoute(
        "no FHIR interaction at this path; GET metadata (the CapabilityStatement) lists the types and interactions"
    )
