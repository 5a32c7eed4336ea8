"""The FHIR facade's OpenAPI document (/fhir/openapi.json, openapi/fhir-openapi.json) lists every interaction the
CapabilityStatement declares, at FHIR R4's address for it, with the declared search parameters, and nothing the
CapabilityStatement does not declare (issue #24 part 1).

The expectations are read from the CapabilityStatement the app serves at run time; only FHIR's own table of
where each interaction lives (http.html) is written here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.core.result import Err

from service.app import create_app
from service.openapi_export import fhir_openapi_document
from tests.conftest import make_settings, project_root

COMMITTED = project_root() / "openapi" / "fhir-openapi.json"
# FHIR R4 http.html: interaction code -> (method, path) with [type] for the resource type.
FHIR_ADDRESSES = {
    "read": ("get", "/[type]/{id}"),
    "vread": ("get", "/[type]/{id}/_history/{vid}"),
    "update": ("put", "/[type]/{id}"),
    "patch": ("patch", "/[type]/{id}"),
    "delete": ("delete", "/[type]/{id}"),
    "history-instance": ("get", "/[type]/{id}/_history"),
    "history-type": ("get", "/[type]/_history"),
    "create": ("post", "/[type]"),
    "search-type": ("get", "/[type]"),
    "transaction": ("post", "/"),
    "batch": ("post", "/"),
    "search-system": ("get", "/"),
    "history-system": ("get", "/_history"),
}


def _app(**overrides: Any) -> TestClient:
    # No database: the documents and the CapabilityStatement read none.
    return TestClient(create_app(make_settings("sqlite://", **overrides)))


@pytest.fixture(scope="module")
def served() -> tuple[dict[str, Any], dict[str, Any]]:
    """(the CapabilityStatement, the OpenAPI document), both as the app serves them, without a token."""
    client = _app()
    metadata = client.get("/fhir/metadata", headers={"Accept": "application/fhir+json"})
    document = client.get("/fhir/openapi.json")
    assert metadata.status_code == 200, metadata.text
    assert document.status_code == 200, document.text
    assert document.headers["content-type"].startswith("application/json")
    return metadata.json(), document.json()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, item in document["paths"].items() for method, operation in item.items()]


def _declared(capability: dict[str, Any]) -> set[tuple[str, str | None]]:
    rest = capability["rest"][0]
    declared: set[tuple[str, str | None]] = {("capabilities", None)}
    for resource in rest["resource"]:
        declared |= {(i["code"], resource["type"]) for i in resource["interaction"]}
        declared |= {(f"operation:{o['name']}", resource["type"]) for o in resource.get("operation", [])}
    declared |= {(i["code"], None) for i in rest.get("interaction", [])}
    declared |= {(f"operation:{o['name']}", None) for o in rest.get("operation", [])}
    return declared


def _served_by(operation: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {
        (f"operation:{i['name']}" if i["code"] == "operation" else i["code"], i.get("type"))
        for i in operation["x-fhir-interaction"]
    }


# The Subscriptions Backport IG defines these on one resource: [base]/Subscription/[id]/$status and …/$events.
INSTANCE_OPERATIONS = {("Subscription", "status"), ("Subscription", "events")}


def test_every_declared_interaction_has_its_operation_at_the_fhir_address(
    served: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    capability, document = served
    found: dict[tuple[str, str | None], tuple[str, str]] = {}
    for method, path, operation in _operations(document):
        for interaction in _served_by(operation):
            found[interaction] = (method, path)
    declared = _declared(capability)
    assert len(declared) > 60  # every type's read, search, ... and the batch/transaction
    missing = sorted(str(d) for d in declared - set(found))
    assert not missing, f"declared in the CapabilityStatement, absent from the OpenAPI document: {missing}"
    extra = sorted(str(f) for f in set(found) - declared)
    assert not extra, f"in the OpenAPI document, not declared in the CapabilityStatement: {extra}"
    for (code, resource_type), where in found.items():
        if code in FHIR_ADDRESSES:
            method, template = FHIR_ADDRESSES[code]
            assert where == (method, template.replace("[type]", resource_type or "")), (code, resource_type, where)
        elif code.startswith("operation:"):
            name = code.split(":", 1)[1]
            if (resource_type, name) in INSTANCE_OPERATIONS:
                assert where == ("get", f"/{resource_type}/{{id}}/${name}"), (code, where)
                continue
            assert where[1] == (f"/{resource_type}/${name}" if resource_type else f"/${name}")
    assert found[("capabilities", None)] == ("get", "/metadata")


def test_each_search_takes_the_declared_search_parameters_as_query_parameters(
    served: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    capability, document = served
    for resource in capability["rest"][0]["resource"]:
        if not any(i["code"] == "search-type" for i in resource["interaction"]):
            continue
        search = document["paths"][f"/{resource['type']}"]["get"]
        query = {p["name"]: p for p in search["parameters"] if p["in"] == "query"}
        for declared in resource.get("searchParam", []):
            assert declared["name"] in query, (resource["type"], declared["name"])
            assert query[declared["name"]]["description"].startswith(declared["type"])
        if resource.get("searchInclude"):
            assert query["_include"]["schema"]["enum"] == resource["searchInclude"]


def test_update_and_create_document_their_headers(served: tuple[dict[str, Any], dict[str, Any]]) -> None:
    capability, document = served
    for resource in capability["rest"][0]["resource"]:
        codes = {i["code"] for i in resource["interaction"]}
        if "update" in codes:
            headers = {p["name"]: p for p in document["paths"][f"/{resource['type']}/{{id}}"]["put"]["parameters"]}
            assert headers["If-Match"]["required"] == (resource.get("versioning") == "versioned-update")
        if "create" in codes and resource.get("conditionalCreate"):
            create = document["paths"][f"/{resource['type']}"]["post"]
            assert "If-None-Exist" in {p["name"] for p in create["parameters"]}


def test_operation_ids_are_unique_and_summaries_read_well(served: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, document = served
    operations = _operations(document)
    ids = [operation["operationId"] for _, _, operation in operations]
    assert len(ids) == len(set(ids))
    summaries = {operation["operationId"]: operation["summary"] for _, _, operation in operations}
    assert summaries["createAppointment"] == "Create an Appointment"
    assert summaries["readPatient"] == "Read a Patient"


def test_only_metadata_is_open_without_a_token(served: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, document = served
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    open_operations = [path for method, path, operation in _operations(document) if operation.get("security") == []]
    assert open_operations == ["/metadata"]


def test_the_served_document_is_the_committed_export(served: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, document = served
    assert document == fhir_openapi_document()
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == document, "openapi/fhir-openapi.json is stale: run `make openapi` and commit it"


def test_the_json_api_document_links_the_fhir_one() -> None:
    description = _app().get("/openapi.json").json()["info"]["description"]
    assert "(/fhir/openapi.json)" in description
    assert "(/docs/fhir)" in description


def test_not_served_when_the_docs_are_off() -> None:
    client = _app(docs_enabled=False)
    assert client.get("/openapi.json").status_code == 404
    assert client.get("/docs").status_code == 404
    assert client.get("/docs/fhir").status_code == 404
    # The path is then what it would be without the docs: a FHIR request, which needs a token.
    assert client.get("/fhir/openapi.json").status_code == 401


def test_an_openapi_tool_reads_every_operation(served: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, document = served
    loaded = schemathesis.openapi.from_dict(document)
    results = list(loaded.get_all_operations())
    assert len(results) == len(_operations(document))
    broken = [str(result.err()) for result in results if isinstance(result, Err)]
    assert not broken, broken
