"""The CapabilityStatement, generated from what the facade implements (a test exercises every declaration)."""

from __future__ import annotations

from typing import Any

import fhir_mappings as fm
from service.fhir.search_definitions import CUSTOM_PARAMETERS, definition_url
from service.fhir.search_parameters import CHAINS, STATIC_TYPES, supported_parameters
from service.fhir.types import FHIR_TYPES
from service.subscriptions.topics import TOPIC_CANONICAL_EXTENSION, TOPICS

BACKPORT_IG = "http://hl7.org/fhir/uv/subscriptions-backport"

__all__ = ["STATIC_TYPES", "capability_statement"]


# The quality measures Tandem publishes (issue #23) and the operation that reports them.
STATIC_EXTRAS: dict[str, dict[str, Any]] = {
    "Measure": {
        "documentation": "The programme's quality measures (PHQ-9 response and remission at 12 weeks, remission at "
        "12 months; proportion scoring, in the spirit of CMS159). $evaluate-measure (GET, at the type with "
        "measure=<id or url>, or at the instance /Measure/{id}/$evaluate-measure) returns a summary MeasureReport "
        "for periodStart..periodEnd (enrolments that started in it); admins and clinicians, with a MeasureReport "
        "read scope; counts of fewer patients than the cell size are masked (data-absent-reason).",
        "operation": [
            {
                "name": "evaluate-measure",
                "definition": "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure",
            }
        ],
    }
}


def search_params(resource_type: str, canonical_base: str) -> list[dict[str, Any]]:
    """Exactly the search table's parameters (search_parameters.SEARCH_PARAMETERS): what is declared is what
    is served, and everything else is refused. Those R4 does not define point at our SearchParameter."""
    declared: list[dict[str, Any]] = []
    for p in supported_parameters(resource_type):
        param: dict[str, Any] = {"name": p.name, "type": p.type}
        if (resource_type, p.name) in CUSTOM_PARAMETERS:
            param["definition"] = definition_url(canonical_base, resource_type, p.name)
        if p.name in CHAINS and p.type == "reference":
            # R4 CapabilityStatement has no element for chains (R5 adds searchParam chain): said in words.
            chained = ", ".join(sorted(CHAINS[p.name]))
            param["documentation"] = f"A Patient; chains: {p.name}:Patient.{chained} (also {p.name}.{chained})"
        declared.append(param)
    return declared


def capability_statement(base: str, canonical_base: str, software_version: str) -> dict[str, Any]:
    resources = []
    for fhir_type in FHIR_TYPES.values():
        interactions = ["read", "vread", "history-instance", "search-type"]
        if fhir_type.writable:
            interactions += ["create", "update"] if fhir_type.updatable else ["create"]
        if fhir_type.correctable:
            interactions.append("delete")
        entry: dict[str, Any] = {
            "type": fhir_type.name,
            "interaction": [{"code": code} for code in interactions],
            "versioning": "versioned-update" if fhir_type.writable and fhir_type.updatable else "versioned",
            "readHistory": True,
            "updateCreate": False,
            "conditionalCreate": fhir_type.writable,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            # DELETE is a correction: the record is kept as entered-in-error and its resources answer 410.
            "searchInclude": [f"{fhir_type.name}:patient", f"{fhir_type.name}:subject"]
            if fhir_type.name != "Patient"
            else [],
            "searchParam": search_params(fhir_type.name, canonical_base),
        }
        if fhir_type.documentation is not None:
            entry["documentation"] = fhir_type.documentation
        resources.append(entry)
    for name in STATIC_TYPES:
        resources.append(
            {
                "type": name,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": search_params(name, canonical_base),
                **STATIC_EXTRAS.get(name, {}),
            }
        )
    resources.append(
        {
            "type": "AuditEvent",
            "interaction": [{"code": "search-type"}],
            "documentation": "Administrators only: the audit trail, one event per patient (IHE BALP).",
            "searchParam": search_params("AuditEvent", canonical_base),
        }
    )
    resources += subscription_resources(canonical_base)
    return {
        "resourceType": "CapabilityStatement",
        "instantiates": [f"{BACKPORT_IG}/CapabilityStatement/backport-subscription-server-r4"],
        "status": "active",
        "date": "2026-11-26",
        "kind": "instance",
        "software": {"name": "Tandem", "version": software_version},
        "implementation": {"description": "Tandem combined ketamine/esketamine + CBT care service", "url": base},
        "fhirVersion": fm.FHIR_VERSION,
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Every interaction needs an OAuth2 bearer token (SMART v2 scopes, tenant-scoped). "
                "Updates (PUT, and PUT entries of a Bundle) need If-Match with the ETag of the version edited: "
                "without it the answer is 428, with a stale one 412. "
                "Searches take _count, _offset, _sort, _include, _summary=count and _total=none|estimate|accurate: "
                "Bundle.total is given with _total=accurate, _summary=count or _count=0 (which also has no next "
                "link), and otherwise only when the page "
                "shows it (the last page); the next link says whether more matches follow. Follow paging links "
                "as given: with the _lastUpdated sorts (and the default) they carry an opaque _cursor that starts "
                "the next page where the last one ended.",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer JWTs from the hospital's identity provider; scopes like "
                    "system/Observation.rs or user/*.cruds, on top of the roles ehr-system, clinician, coordinator.",
                },
                "resource": resources,
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
            }
        ],
    }


def subscription_resources(canonical_base: str) -> list[dict[str, Any]]:
    """FHIR Subscriptions (R4 Backport IG STU 1.1): the topics on the Subscription entry, and as Basic."""
    return [
        {
            "extension": [
                {"url": TOPIC_CANONICAL_EXTENSION, "valueCanonical": topic.url(canonical_base)} for topic in TOPICS
            ],
            "type": "Subscription",
            "supportedProfile": [f"{BACKPORT_IG}/StructureDefinition/backport-subscription"],
            "interaction": [{"code": c} for c in ("read", "search-type", "create", "delete")],
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
            "conditionalCreate": False,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "documentation": "Topic-based subscriptions (R4 Subscriptions Backport IG): rest-hook channel, "
            "payload application/fhir+json with content empty, id-only or full-resource, an optional "
            "patient=Patient/<id> filter, heartbeats; the EHR system role only. DELETE turns a subscription off.",
            "searchParam": search_params("Subscription", canonical_base),
            "operation": [
                {"name": "status", "definition": f"{BACKPORT_IG}/OperationDefinition/backport-subscription-status"},
                {"name": "events", "definition": f"{BACKPORT_IG}/OperationDefinition/backport-subscription-events"},
            ],
        },
        {
            "type": "Basic",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "documentation": "The subscription topics, as the Backport IG publishes a SubscriptionTopic in R4.",
            "searchParam": search_params("Basic", canonical_base),
        },
    ]
