"""Each surface answers errors in its own format: problem+json on /api, OperationOutcome on /fhir, HTML on the pages.

The format belongs to the route, not to the path: a route class (`SurfaceRoute`) carries its surface and puts
the surface's exception handlers in the request scope for that route alone. Starlette's per-route wrapper calls
them after the route's dependencies have exited, so a unit of work sees the error and rolls back before the
answer is rendered. Routes of the plain `APIRoute` class, and paths no route matches, use the app's handlers
(the JSON API's).

What answers before routing (the body cap, the NUL check, the rate limit) asks the app's router which route
would have served the request (`surface_of`) and answers in that route's format: a 413 for a FHIR create is an
OperationOutcome because the FHIR router serves that path, not because the path starts with some string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from service.api.db_errors import UNAVAILABLE_TYPES
from service.api.refusals import audit_failure, refusal
from service.errors import TandemError

Handler = Callable[[Request, Exception], Response]


@dataclass(frozen=True)
class Surface:
    """A way of answering errors: `render` turns a TandemError into the surface's response."""

    name: str
    render: Callable[[Request, TandemError], Response]

    def answer(self, request: Request, error: Exception) -> Response:
        refused = refusal(request, error)
        audit_failure(request, refused.status_code)
        response = self.render(request, refused)
        for name, value in refused.headers().items():
            response.headers[name] = value
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def handlers(self) -> dict[Any, Handler]:
        """Every exception an edge can meet; each handler is sync (Starlette runs it in its thread pool), as
        auditing a failure touches the database."""
        return dict.fromkeys(
            (TandemError, RequestValidationError, StarletteHTTPException, *UNAVAILABLE_TYPES, Exception), self.answer
        )


def install_surface_handlers(app: FastAPI, surface: Surface) -> None:
    """The app's own handlers: the surface of every route that does not name one, and of unmatched paths."""
    for error_type, handler in surface.handlers().items():
        app.add_exception_handler(error_type, handler)


class SurfaceRoute(APIRoute):
    """A route whose errors answer in `surface`'s format. Subclasses set `surface` (and may add handlers)."""

    surface: ClassVar[Surface]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handlers: tuple[Mapping[Any, Handler], dict[int, Handler]] = (self.exception_handlers(), {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # FastAPI serves an included route through its own copy of the route's app, but always through the
        # original route's `handle`: the one place to give the request this route's handlers.
        scope["starlette.exception_handlers"] = self._handlers
        try:
            await super().handle(scope, receive, send)
        except StarletteHTTPException as error:
            # FastAPI's 405 for a path this route serves with other methods is raised before the route's own
            # handlers are in place; anything the handlers met was answered already.
            # (No request context exists yet, so nothing is audited and the answer touches no database.)
            await self.surface.answer(Request(scope), error)(scope, receive, send)

    def exception_handlers(self) -> Mapping[Any, Handler]:
        return self.surface.handlers()


def surface_of(scope: Scope, default: Surface) -> Surface:
    """The surface of the route that serves (or would serve, with another method) this request."""
    partial: Surface | None = None
    for context in iter_route_contexts(scope["app"].router.routes):
        match, _ = context.matches(scope)
        route = context.original_route
        surface = route.surface if isinstance(route, SurfaceRoute) else default
        if match == Match.FULL:
            return surface
        if match == Match.PARTIAL and partial is None:
            partial = surface
    return partial or default


def refusing(default: Surface) -> Callable[[Scope, TandemError], Response]:
    """The renderer middleware is configured with: a refusal in the format of the route the request was for."""

    def render(scope: Scope, error: TandemError) -> Response:
        return surface_of(scope, default).answer(Request(scope), error)

    return render
