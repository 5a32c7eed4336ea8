"""The FastAPI application: wiring only. Behaviour lives in the services and the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.api import (
    break_glass,
    caseload,
    cds_hooks,
    health,
    instruments,
    invitations,
    notes,
    outcomes,
    rems,
    sync_targets,
    well_known,
    worklist,
)
from service.api import sync as sync_routes
from service.api.body_depth import BodyDepthLimit
from service.api.body_limit import BodyLimit
from service.api.docs_page import install_docs
from service.api.middleware import RefuseNul, RequestId, SecurityHeaders
from service.api.openapi_schema import install_openapi
from service.api.problems import API_SURFACE
from service.api.rate_limit import RateLimit
from service.api.records import record_routers
from service.api.surfaces import install_surface_handlers, refusing
from service.auth.tokens import TokenVerifier
from service.cds_hooks.jwks import JwksCache
from service.db.engine import make_engine
from service.fhir import openapi as fhir_openapi
from service.fhir import router as fhir_router
from service.fhir import subscription_routes
from service.observability import install_observability
from service.settings import Settings, get_settings, software_version
from service.sweep import sweep_thread
from service.sync.worker import WorkerThread
from service.web import install_web

DESCRIPTION = """
Tandem keeps the three streams of a combined ketamine/esketamine + CBT programme together: drug sessions,
therapy sessions and symptom questionnaires.

Every route needs an OAuth2 bearer JWT (roles `ehr-system`, `clinician`, `coordinator`, `admin`; one tenant per
token). Errors are `application/problem+json` with an `errors` list naming each field. Creates are idempotent on
the record's `source` identifier; updates need `If-Match`.

The FHIR R4 facade (`/fhir`) has an OpenAPI document of its own, generated from its CapabilityStatement:
[/fhir/openapi.json](/fhir/openapi.json), browsable at [/docs/fhir](/docs/fhir).
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    sweeper = (
        sweep_thread(app.state.engine, settings.status_sweep_seconds, settings.canonical_base, settings)
        if settings.status_sweep_seconds
        else None
    )
    worker = WorkerThread(app.state.engine, settings) if settings.dev_worker else None
    app.state.dev_worker = worker
    if sweeper is not None:
        sweeper.start()
    if worker is not None:
        worker.start()
    yield
    if worker is not None:
        worker.stop()
    if sweeper is not None:
        sweeper.stop()
    app.state.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        lifespan=lifespan,
        title="Tandem",
        version=software_version(),
        description=DESCRIPTION,
        docs_url=None,  # service/api/docs_page.py: Swagger UI from the package, under the pages' CSP
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_served else None,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
    app.state.token_verifier = TokenVerifier(settings)
    app.state.cds_jwks = JwksCache(settings)  # the EHRs' CDS Hooks signing keys, fetched and cached
    install_surface_handlers(app, API_SURFACE)  # the FHIR router and the pages have their own
    refused = refusing(API_SURFACE)  # early refusals answer in the format of the route they were for
    # Added innermost first: the request id is outermost, so every answer (a 429 too) carries one.
    if settings.cors_allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Exist", "Prefer", "X-Request-ID"],
            expose_headers=["ETag", "Location", "X-Request-ID"],
        )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyDepthLimit)  # inside the size cap: it scans only what the cap let through
    app.add_middleware(RefuseNul, render=refused)
    app.add_middleware(
        RateLimit,
        per_minute=settings.rate_limit_per_minute,
        render=refused,
        storage_uri=settings.rate_limit_storage,
        key_prefix=settings.rate_limit_key_prefix,
    )
    # The body cap reads (at most the cap) before anything inside it runs; only the request id sits outside.
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes, render=refused)
    app.add_middleware(RequestId)
    install_observability(app)
    app.include_router(health.router)
    for router in record_routers():
        app.include_router(router)
    app.include_router(sync_targets.router)
    app.include_router(instruments.router)
    app.include_router(caseload.router)
    app.include_router(worklist.router)
    app.include_router(break_glass.router)
    app.include_router(notes.router)
    app.include_router(invitations.router)
    app.include_router(outcomes.router)
    app.include_router(rems.router)
    if settings.docs_served:
        install_docs(app, fhir_openapi_url="/fhir/openapi.json")
        app.include_router(fhir_openapi.router)  # before the facade's /fhir/{resource_type} would take the path
    app.include_router(subscription_routes.router)  # before the facade's /fhir/{resource_type} would take the path
    app.include_router(fhir_router.router)
    app.include_router(sync_routes.router)
    app.include_router(well_known.router)
    app.include_router(cds_hooks.router)
    install_web(app)
    install_openapi(app)
    return app
