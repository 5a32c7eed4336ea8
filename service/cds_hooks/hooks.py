"""Answering a CDS service call: the EHR's patient found in Tandem, its plan status read by the one read the
patient page uses (`read_plan_status`), and one card per enrolment that is running or at risk. Audited."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.auth.principal import Principal
from service.cds_hooks.cards import CardLink, plan_card
from service.cds_hooks.discovery import SERVICES
from service.cds_hooks.patients import FhirServerRefused, fetch_patient, linked_patient, patient_by_identifiers
from service.cds_hooks.tables import CdsClient
from service.errors import RecordNotFound, invalid
from service.patient_status import read_plan_status
from service.plan_status import PlanStatus
from service.records.patient import Patient
from service.records.tenant import Tenant
from service.settings import Settings

AUDIT_KIND = "cds-hooks"
FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
ENDED = ("completed", "discontinued")


class FhirAuthorization(BaseModel):
    model_config = ConfigDict(extra="allow")

    access_token: str = Field(max_length=8192)
    token_type: str = Field(max_length=32)
    expires_in: int | None = None
    scope: str = Field(max_length=4096)
    subject: str = Field(max_length=1024)


class HookContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    patient_id: str = Field(alias="patientId", pattern=FHIR_ID, description="The EHR's FHIR id of the patient in view")
    user_id: str | None = Field(default=None, alias="userId", max_length=1024)


class HookRequest(BaseModel):
    """A CDS Hooks 2.0 request body (§Calling a CDS Service); unknown fields (extensions) are allowed."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "hook": "patient-view",
                    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                    "context": {"userId": "Practitioner/example", "patientId": "eX1pVLL3"},
                    "prefetch": {
                        "patient": {
                            "resourceType": "Patient",
                            "id": "eX1pVLL3",
                            "identifier": [
                                {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14", "value": "203713"}
                            ],
                        }
                    },
                }
            ]
        },
    )

    hook: str = Field(max_length=128)
    hook_instance: str = Field(alias="hookInstance", max_length=128)
    fhir_server: str | None = Field(default=None, alias="fhirServer", max_length=1024)
    fhir_authorization: FhirAuthorization | None = Field(default=None, alias="fhirAuthorization")
    context: HookContext
    prefetch: dict[str, Any] | None = None


class CdsLinks(BaseModel):
    """Where a card's link goes: the patient page (absolute), and the SMART launch URL when one is set."""

    public_base_url: str
    smart_launch_url: str | None = None


def caller_context(client: CdsClient, settings: Settings, request_id: str, service_id: str) -> RequestContext:
    """The EHR as the caller of this request: its issuer is the audited actor, in its hospital."""
    principal = Principal(
        subject=client.issuer[:255], tenant_id=client.tenant_id, role="ehr-system", scopes=None,
        client_id=client.issuer[:255],
    )  # fmt: skip
    ctx = RequestContext(principal=principal, request_id=request_id, settings=settings)
    ctx.intent = AuditIntent("read", AUDIT_KIND, record_id=service_id)
    return ctx


def answer_hook(
    session: Session,
    ctx: RequestContext,
    client: CdsClient,
    service_id: str,
    request: HookRequest,
    links: CdsLinks,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """{"cards": [...]}: empty for a patient Tandem does not follow in this hospital."""
    service = SERVICES.get(service_id)
    if service is None:
        raise RecordNotFound("CDS service", service_id)
    if request.hook != service.hook:
        raise invalid("hook", f"service {service_id!r} answers the {service.hook!r} hook, not {request.hook!r}")
    patient = _patient(session, ctx.settings, client, request, transport)
    if patient is None:
        record_success(session, ctx, status_code=200)
        return {"cards": []}
    plan = read_plan_status(session, ctx, patient.id, None)  # audited as a read of the patient's plan status
    ctx.intent = AuditIntent("read", AUDIT_KIND, record_id=service_id, patient_id=patient.id)
    record_success(session, ctx, status_code=200)
    tenant = session.get(Tenant, client.tenant_id)
    zone = ZoneInfo(tenant.time_zone if tenant is not None else "UTC")
    card_links = _links(links, patient.id)
    return {"cards": [plan_card(status, zone, card_links) for status in _shown(list(plan.statuses))]}


def _patient(
    session: Session, settings: Settings, client: CdsClient, request: HookRequest, transport: httpx.BaseTransport | None
) -> Patient | None:
    ehr_id = request.context.patient_id
    found = linked_patient(session, client, ehr_id)
    if found is not None:
        return found
    prefetched = (request.prefetch or {}).get("patient")
    if prefetched is None and request.fhir_authorization is not None:
        if request.fhir_server is None:
            raise invalid("fhirServer", "is required with fhirAuthorization (CDS Hooks 2.0)")
        try:
            prefetched = fetch_patient(
                session, settings, client, request.fhir_server, request.fhir_authorization.access_token, ehr_id,
                transport,
            )  # fmt: skip
        except FhirServerRefused as refused:
            raise invalid("fhirServer", str(refused)) from None
    return patient_by_identifiers(session, client, prefetched, ehr_id) if prefetched is not None else None


def _shown(statuses: list[PlanStatus]) -> list[PlanStatus]:
    """The enrolments that are running or at risk (latest first); only the latest when every one has ended."""
    running = [s for s in statuses if s.status not in ENDED or s.status == "at_risk"]
    return running or statuses[:1]


def _links(links: CdsLinks, patient_id: str) -> list[CardLink]:
    page = f"{links.public_base_url.rstrip('/')}/patients/{patient_id}"
    found = [CardLink("Open the plan in Tandem", page, "absolute")]
    if links.smart_launch_url:
        context = json.dumps({"patient": patient_id})  # Tandem's id, handed to the launched app (appContext)
        found.insert(0, CardLink("Open the plan in Tandem (in the EHR)", links.smart_launch_url, "smart", context))
    return found
