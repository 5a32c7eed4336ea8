"""The FHIR facade's OpenAPI document, generated from its CapabilityStatement (as HAPI FHIR's OpenAPI support
does): one operation per declared interaction, at the address FHIR R4's RESTful API gives it (http.html), a
search with its declared parameters as query parameters. Nothing is declared here that the CapabilityStatement
does not declare, so the two cannot disagree; served at /fhir/openapi.json and exported to openapi/.

Each operation names the interactions it serves in `x-fhir-interaction` (a batch and a transaction share
`POST /`), so a client or a test can go from the CapabilityStatement to the operation and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.fhir.capability import capability_statement

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
SPEC = "https://hl7.org/fhir/R4"
# Served relative to the document, so the export is the same wherever the service runs.
SERVER_URL = "/fhir"
DOCS_LINK = "Browsable at [/docs/fhir](/docs/fhir); the JSON API is at [/docs](/docs)."


@dataclass(frozen=True)
class Address:
    """Where FHIR R4 puts an interaction (http.html), and how this document words it."""

    method: str
    path: str  # {type} is the resource type; {id} and {vid} are path parameters
    verb: str  # the start of the operation id: read, vread, search, ...
    summary: str
    body: bool = False


TYPE_INTERACTIONS: dict[str, Address] = {
    "read": Address("get", "/{type}/{id}", "read", "Read {a type}"),
    "vread": Address("get", "/{type}/{id}/_history/{vid}", "vread", "Read one version of {a type}"),
    "update": Address("put", "/{type}/{id}", "update", "Update {a type}", body=True),
    "patch": Address("patch", "/{type}/{id}", "patch", "Patch {a type}", body=True),
    "delete": Address("delete", "/{type}/{id}", "delete", "Delete {a type}"),
    "history-instance": Address("get", "/{type}/{id}/_history", "history", "The versions of {a type}"),
    "history-type": Address("get", "/{type}/_history", "historyType", "The changes to every {type}"),
    "create": Address("post", "/{type}", "create", "Create {a type}", body=True),
    "search-type": Address("get", "/{type}", "search", "Search {type} resources"),
}
SYSTEM_INTERACTIONS: dict[str, Address] = {
    "transaction": Address("post", "/", "batchOrTransaction", "Process a batch or transaction Bundle", body=True),
    "batch": Address("post", "/", "batchOrTransaction", "Process a batch or transaction Bundle", body=True),
    "search-system": Address("get", "/", "searchAll", "Search every resource type"),
    "history-system": Address("get", "/_history", "historyAll", "The changes to every resource"),
}
# FHIR's result parameters (search.html): the CapabilityStatement's rest.documentation says how each behaves.
RESULT_PARAMETERS = {
    "_count": "Matches per page",
    "_sort": "Sort order, e.g. -_lastUpdated",
    "_summary": "count: only Bundle.total",
    "_total": "none | estimate | accurate",
    "_format": "json or xml (instead of Accept)",
}
SEARCH_VALUE_FORMS = {
    "token": "[system]|[code], or a code alone",
    "reference": "[type]/[id], or an id",
    "date": "a date or instant, with a prefix eq, ne, lt, le, gt, ge, sa or eb (e.g. ge2026-01-01)",
    "string": "the start of the value; case and accents ignored",
    "uri": "the whole URI",
    "number": "a number, with a prefix as for dates",
    "quantity": "[prefix][number]|[system]|[code]",
}
# The resources every FHIR server document names besides the served types.
SHARED_SCHEMAS = ("Bundle", "CapabilityStatement", "MeasureReport", "OperationOutcome", "Parameters", "Resource")
ERRORS = {
    "400": "The request cannot be read, or names a search parameter this server does not support",
    "401": "Missing, malformed, expired or untrusted bearer token",
    "403": "The token's role or scopes do not allow this",
    "404": "No such resource in the caller's tenant",
    "422": "The resource is invalid; each issue names the element",
}


def with_article(resource_type: str) -> str:
    """FHIR's resource names are English words, said as spelled: "an Appointment", "a Patient"."""
    return f"{'an' if resource_type[0] in 'AEIOU' else 'a'} {resource_type}"


def fhir_openapi(capability: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of what `capability` declares (a CapabilityStatement, as a dict)."""
    rest = next(r for r in capability["rest"] if r.get("mode") == "server")
    paths: dict[str, dict[str, Any]] = {}
    metadata = {
        "tags": ["CapabilityStatement"],
        "operationId": "readCapabilityStatement",
        "summary": "What this server does (the CapabilityStatement this document is generated from)",
        "security": [],
        "x-fhir-interaction": [{"code": "capabilities"}],
        "responses": {"200": _resource_answer("CapabilityStatement", "The CapabilityStatement")},
    }
    paths["/metadata"] = {"get": metadata}
    for resource in rest.get("resource", []):
        for interaction in resource.get("interaction", []):
            code = interaction["code"]
            address = TYPE_INTERACTIONS.get(code)
            if address is None:
                continue
            _add(paths, address, resource, code)
        for operation in resource.get("operation", []):
            _add_operation(paths, operation, resource["type"])
    for interaction in rest.get("interaction", []):
        address = SYSTEM_INTERACTIONS.get(interaction["code"])
        if address is not None:
            _add(paths, address, None, interaction["code"])
    for operation in rest.get("operation", []):
        _add_operation(paths, operation, None)
    security = rest.get("security", {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{capability['software']['name']} FHIR R4 facade",
            "version": capability["software"]["version"],
            "description": f"{rest.get('documentation', '')}\n\n"
            f"Generated from the CapabilityStatement (`GET /fhir/metadata`), FHIR {capability['fhirVersion']}. "
            f"{DOCS_LINK}",
        },
        "servers": [{"url": SERVER_URL}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": security.get("description", ""),
                }
            },
            "responses": {f"Refused{status}": _outcome_answer(text) for status, text in ERRORS.items()},
            "schemas": {
                name: _resource_schema(name)
                for name in sorted({*SHARED_SCHEMAS, *(r["type"] for r in rest.get("resource", []))})
            },
        },
        "paths": dict(sorted(paths.items())),
    }


def _add(paths: dict[str, dict[str, Any]], address: Address, resource: dict[str, Any] | None, code: str) -> None:
    resource_type = resource["type"] if resource is not None else None
    path = address.path.replace("{type}", resource_type or "")
    item = paths.setdefault(path, {})
    existing = item.get(address.method)
    served = {"code": code, **_typed(resource_type)}
    if existing is not None:  # batch and transaction: one address
        existing["x-fhir-interaction"].append(served)
        return
    subject = resource_type or "Bundle"
    operation: dict[str, Any] = {
        "tags": [subject],
        "operationId": f"{address.verb}{resource_type or ''}",
        "summary": address.summary.replace("{a type}", with_article(subject)).replace("{type}", subject),
        "x-fhir-interaction": [served],
    }
    if resource is not None and resource.get("documentation"):
        operation["description"] = resource["documentation"]
    parameters = _path_parameters(address.path) + _header_parameters(code, resource)
    if code == "search-type" and resource is not None:
        parameters += _search_parameters(resource)
    if parameters:
        operation["parameters"] = parameters
    if address.body:
        operation["requestBody"] = _resource_body(subject)
    operation["responses"] = _responses(code, subject)
    item[address.method] = operation


# Operations that change nothing, served as GET with their parameters in the query (FHIR R4 operations.html
# allows GET when affectsState is false); each with its query parameters and the resource type it returns.
GET_OPERATIONS: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "evaluate-measure": (
        (
            ("measure", "The Measure's id or canonical url (at the type; the instance address names it in the path)"),
            ("periodStart", "First day of the period (YYYY-MM-DD): enrolments that started from it"),
            ("periodEnd", "Last day of the period (YYYY-MM-DD)"),
            ("reportType", "summary (the only one produced)"),
        ),
        "MeasureReport",
    )
}
# Operations invoked on one resource by GET (the Subscriptions Backport IG's $status and $events).
INSTANCE_OPERATIONS = {("Subscription", "status"), ("Subscription", "events")}


def _add_operation(paths: dict[str, dict[str, Any]], declared: dict[str, Any], resource_type: str | None) -> None:
    name = declared["name"]
    if (resource_type, name) in INSTANCE_OPERATIONS:
        paths.setdefault(f"/{resource_type}/{{id}}/${name}", {})["get"] = {
            "tags": [resource_type],
            "operationId": f"operation{resource_type}{name.title()}",
            "summary": f"${name}",
            "description": f"Defined by {declared.get('definition', 'its OperationDefinition')}",
            "x-fhir-interaction": [{"code": "operation", "name": name, **_typed(resource_type)}],
            "parameters": _path_parameters("{id}"),
            "responses": {"200": _resource_answer("Bundle", "The operation's result"), **_error_answers()},
        }
        return
    path = f"/{resource_type}/${name}" if resource_type else f"/${name}"
    operation: dict[str, Any] = {
        "tags": [resource_type or "Operations"],
        "operationId": f"operation{resource_type or ''}{''.join(p.title() for p in name.split('-'))}",
        "summary": f"${name}",
        "description": f"Defined by {declared.get('definition', 'its OperationDefinition')}",
        "x-fhir-interaction": [{"code": "operation", "name": name, **_typed(resource_type)}],
    }
    if name in GET_OPERATIONS:
        query, returns = GET_OPERATIONS[name]
        operation["parameters"] = [_parameter(p, "query", text) for p, text in query]
        operation["responses"] = {"200": _resource_answer(returns, "The operation's result"), **_error_answers()}
        paths.setdefault(path, {})["get"] = operation
        return
    operation["requestBody"] = _resource_body("Parameters", required=False)
    operation["responses"] = {"200": _resource_answer("Resource", "The operation's result"), **_error_answers()}
    paths.setdefault(path, {})["post"] = operation


def _path_parameters(template: str) -> list[dict[str, Any]]:
    described = {"id": "The resource's logical id", "vid": 'The version id (ETag W/"n" names n)'}
    named = [(name, text) for name, text in described.items() if f"{{{name}}}" in template]
    return [_parameter(name, "path", text, required=True) for name, text in named]


def _header_parameters(code: str, resource: dict[str, Any] | None) -> list[dict[str, Any]]:
    headers: list[dict[str, Any]] = []
    if code == "create" and resource is not None and resource.get("conditionalCreate"):
        headers.append(_header("If-None-Exist", "Conditional create: a search; a match is returned, not duplicated"))
    if code == "update" and resource is not None:
        required = resource.get("versioning") == "versioned-update"
        headers.append(_header("If-Match", 'The ETag last read (W/"n"); a stale one gets 412', required=required))
    if code in ("create", "update"):
        headers.append(_header("Prefer", "return=minimal | representation | OperationOutcome"))
    return headers


def _header(name: str, description: str, *, required: bool = False) -> dict[str, Any]:
    return _parameter(name, "header", description, required=required)


def _parameter(
    name: str, where: str, description: str, *, required: bool = False, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required,
        "schema": schema or {"type": "string"},
        "description": description,
    }


def _typed(resource_type: str | None) -> dict[str, str]:
    return {"type": resource_type} if resource_type else {}


def _search_parameters(resource: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = []
    for declared in resource.get("searchParam", []):
        text = f"{declared['type']}: {SEARCH_VALUE_FORMS.get(declared['type'], declared['type'])}"
        if declared.get("documentation"):
            text += f". {declared['documentation']}"
        parameters.append(_parameter(declared["name"], "query", text))
    includes = resource.get("searchInclude") or []
    if includes:
        schema = {"type": "string", "enum": includes}
        parameters.append(_parameter("_include", "query", "Also return the patients named", schema=schema))
    parameters += [_parameter(name, "query", text) for name, text in RESULT_PARAMETERS.items()]
    return parameters


def _responses(code: str, subject: str) -> dict[str, Any]:
    if code in ("search-type", "search-system"):
        ok = _resource_answer("Bundle", f"A searchset Bundle of {subject} resources")
    elif code.startswith("history"):
        ok = _resource_answer("Bundle", "A history Bundle")
    elif code in ("batch", "transaction"):
        ok = _resource_answer("Bundle", "The batch-response or transaction-response Bundle")
    elif code == "delete":
        ok = _resource_answer("OperationOutcome", "Marked entered in error (a correction): reads now answer 410")
    else:
        ok = _resource_answer(subject, f"The {subject}")
    answers: dict[str, Any] = {"200": ok}
    if code == "create":
        answers["201"] = _resource_answer(subject, f"The {subject} created (Location names it)")
    if code in ("read", "vread"):
        answers["410"] = _outcome_answer("Deleted (a correction: entered in error)")
    if code == "update":
        answers["412"] = _outcome_answer("If-Match is not the current version")
    return {**answers, **_error_answers()}


def _error_answers() -> dict[str, Any]:
    return {status: {"$ref": f"#/components/responses/Refused{status}"} for status in ERRORS}


def _outcome_answer(description: str) -> dict[str, Any]:
    schema = _ref("OperationOutcome")
    return {"description": description, "content": {FHIR_JSON: {"schema": schema}, FHIR_XML: {"schema": schema}}}


def _resource_answer(resource_type: str, description: str) -> dict[str, Any]:
    schema = _ref(resource_type)
    return {"description": description, "content": {FHIR_JSON: {"schema": schema}, FHIR_XML: {"schema": schema}}}


def _resource_body(resource_type: str, *, required: bool = True) -> dict[str, Any]:
    schema = _ref(resource_type)
    return {"required": required, "content": {FHIR_JSON: {"schema": schema}, FHIR_XML: {"schema": schema}}}


def _ref(resource_type: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{resource_type}"}


def _resource_schema(resource_type: str) -> dict[str, Any]:
    """A FHIR resource by its type; its elements are FHIR R4's (linked), not repeated here."""
    page = resource_type.lower()
    if resource_type == "Resource":
        return {"type": "object", "required": ["resourceType"], "description": f"Any resource ({SPEC}/resource.html)"}
    return {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"const": resource_type}},
        "description": f"FHIR R4 {resource_type} ({SPEC}/{page}.html)",
    }


router = APIRouter(prefix="/fhir", include_in_schema=False)


@router.get("/openapi.json")
def fhir_openapi_document(request: Request) -> JSONResponse:
    """Public like /openapi.json (and only when the docs are served): it describes, and holds no patient data."""
    settings = request.app.state.settings
    capability = capability_statement(SERVER_URL, settings.canonical_base, request.app.version)
    return JSONResponse(fhir_openapi(capability), headers={"Cache-Control": "public, max-age=300"})
