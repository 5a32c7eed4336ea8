"""`install_observability(app)`: the metrics/access-log middleware and GET /metrics.

/metrics and authentication: the metrics carry no patient data, but they do name tenants and EHR targets and
show volumes, and each scrape runs a few COUNT queries - not something to hand to the internet. So /metrics
answers only a bearer token equal to the `metrics_token` setting (TANDEM_METRICS_TOKEN), compared in constant
time; Prometheus sends it with `authorization: {credentials_file: ...}`. Without it /metrics is off (404): a fresh
deployment exposes nothing by accident.
"""

from __future__ import annotations

import hmac
import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability.metrics import UNMATCHED_ROUTE, DatabaseCollector, HttpMetrics

access_logger = logging.getLogger("tandem.access")
METRICS_PATH = "/metrics"


def route_template(scope: Scope) -> str:
    """The matched route's template, e.g. /api/v1/patients/{record_id}; never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return str(scope.get("root_path", "")) + path
    return UNMATCHED_ROUTE


class ObservabilityMiddleware:
    """Times each HTTP request and records it by route template; writes one access line (no path, no query)."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        status = 500  # if the app fails before it starts a response
        started = time.perf_counter()

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_progress.labels(method).inc()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.in_progress.labels(method).dec()
            route = route_template(scope)
            self.metrics.observe(method, route, status, elapsed)
            request_id = scope.get("state", {}).get("request_id")
            access_logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )


def install_observability(app: FastAPI, *, metrics_token: str | None = None) -> CollectorRegistry:
    """Call after the error handlers, RequestId and BodyLimit are installed (this middleware wraps them, so
    it also times refusals of oversized bodies). Returns the app's metric registry."""
    registry = CollectorRegistry()
    http_metrics = HttpMetrics(registry)
    registry.register(DatabaseCollector(app.state.engine))
    settings = getattr(app.state, "settings", None)
    token = metrics_token if metrics_token is not None else (settings.metrics_token if settings else None) or None
    app.state.metrics_registry = registry
    app.state.metrics_token = token  # read per request, so a test (or a key rotation hook) can set it
    app.add_middleware(ObservabilityMiddleware, metrics=http_metrics)

    def metrics(request: Request) -> Response:
        token: str | None = getattr(request.app.state, "metrics_token", None)
        if not token:
            return Response(status_code=404)
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return Response(
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
            )
        return Response(
            generate_latest(registry), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
        )

    app.add_api_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)
    return registry
