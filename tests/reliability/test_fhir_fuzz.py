"""Property-based fuzzing of the FHIR surface for depth, size and oddness (schemathesis covers /api only: the
facade is described by its CapabilityStatement, not by OpenAPI). Issue #16, finding 7.

For every resource type the CapabilityStatement declares, hypothesis generates search parameters (declared
names with and without modifiers, chains, result parameters, unknown names; values huge, deep, in other scripts'
digits, out-of-range dates) sent by GET and by POST _search and as batch entries, and bodies (deeply nested,
large, NaN/Infinity, wrong shapes) sent to create, update and the batch endpoint. Required: no 5xx, and every
4xx is an OperationOutcome.

Budget: TANDEM_FHIR_FUZZ_EXAMPLES examples per type and interaction (default 15).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import hypothesis
import pytest
from fastapi.testclient import TestClient
from hypothesis import strategies as st

from service.fhir.capability import capability_statement
from tests.fhir.support import FHIR_JSON, patient_resource

EXAMPLES = int(os.environ.get("TANDEM_FHIR_FUZZ_EXAMPLES", "15"))
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=os.environ.get("TANDEM_FHIR_FUZZ_RANDOM") != "1",  # reproducible in CI; random on demand
)
RESULT = ["_count", "_offset", "_sort", "_include", "_summary", "_total", "_cursor", "_elements", "_format"]
MODIFIERS = ["", ":Patient", ":exact", ":missing", ":text", ":not", ":identifier", ":above", ":of-type", ":"]
ODD_TEXT = st.sampled_from(
    [
        "9" * 5000,
        "\u00b2",
        "\u0663\u0660",
        "-1",
        "1e9",
        "0x10",
        " 1",
        "2026-13-45",
        "9999",
        "0000-01-01",
        "2026-01-01T10:00:00+99:99",
        "gt2026-01-01T25:61:00Z",
        "ne2026",
        "|",
        "||",
        "Patient/",
        "Observation/x",
        "a" * 20_000,
        "%00",
        "\ud7ff\ue000\U0010ffff",
        "{" * 500,
        "*",
    ]
)
VALUES = st.one_of(ODD_TEXT, st.text(max_size=50), st.from_regex(r"[0-9]{1,40}", fullmatch=True))


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = {"extension": [value], "url": "http://example.org/n"} if i % 2 else [value]
    return value


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.just("x" * 100_000),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
DEEP = st.builds(nested, st.sampled_from([10, 63, 64, 65, 100, 400, 3000]), JSON_LEAVES)


def bodies(resource_type: str) -> st.SearchStrategy[Any]:
    field_names = st.sampled_from(["extension", "identifier", "name", "subject", "item", "contained", "meta", "id"])
    shaped = st.builds(
        lambda extra: {"resourceType": resource_type, **extra},
        st.dictionaries(field_names | st.text(max_size=10), JSON_VALUES | DEEP, max_size=4),
    )
    patient_like = st.builds(lambda deep: patient_resource(extension=[deep]), DEEP)
    return st.one_of(shaped, patient_like, JSON_VALUES, DEEP)


def parameters(declared: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    names = st.one_of(
        st.builds(lambda n, m: n + m, st.sampled_from(declared or ["_id"]), st.sampled_from(MODIFIERS)),
        st.builds(lambda n: f"{n}.identifier", st.sampled_from(declared or ["_id"])),
        st.sampled_from(RESULT),
        st.text(min_size=1, max_size=20),
    )
    return st.lists(st.tuples(names, VALUES), max_size=4)


def _dumps(body: Any) -> bytes:
    try:
        return json.dumps(body).encode()  # NaN and Infinity as Python writes them: not JSON, but sent anyway
    except (RecursionError, ValueError):
        return b"[" * 10_000


def _check(response: Any, what: str) -> None:
    assert response.status_code < 500, (what[:300], response.status_code, response.text[:500])
    if 400 <= response.status_code < 500:
        outcome = response.json()
        assert outcome.get("resourceType") == "OperationOutcome", (what[:300], outcome)
        assert outcome.get("issue"), outcome


# Every type the CapabilityStatement declares (the same function serves GET /fhir/metadata).
DECLARED = capability_statement("http://testserver/fhir", "http://testserver", "0")["rest"][0]["resource"]


@pytest.fixture
def headers(tenant: str, auth: Callable[..., dict[str, str]]) -> Callable[[str], dict[str, str]]:
    def for_type(resource_type: str) -> dict[str, str]:
        role = "admin" if resource_type == "AuditEvent" else "ehr-system"
        return {**auth(tenant, role), "Accept": FHIR_JSON, "Content-Type": FHIR_JSON}

    return for_type


@pytest.mark.parametrize("declared", DECLARED, ids=[d["type"] for d in DECLARED])
def test_search_parameters(
    client: TestClient, declared: dict[str, Any], headers: Callable[[str], dict[str, str]]
) -> None:
    resource_type = declared["type"]
    names = [p["name"] for p in declared.get("searchParam", [])]
    h = headers(resource_type)
    sent = 0

    @SETTINGS
    @hypothesis.given(params=parameters(names), lenient=st.booleans())
    def run(params: list[tuple[str, str]], lenient: bool) -> None:
        nonlocal sent
        prefer = {"Prefer": "handling=lenient" if lenient else "handling=strict"}
        query = urlencode(params)
        _check(client.get(f"/fhir/{resource_type}?{query}", headers={**h, **prefer}), f"GET {query}")
        sent += 1
        if resource_type == "AuditEvent":
            return  # search-type only, by GET
        form = {**h, **prefer, "Content-Type": "application/x-www-form-urlencoded"}
        _check(client.post(f"/fhir/{resource_type}/_search", content=query, headers=form), f"_search {query}")
        entry = {"request": {"method": "GET", "url": f"{resource_type}?{query}"}}
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
        _check(client.post("/fhir", json=bundle, headers=h), f"batch {query}")
        sent += 2

    run()
    print(f"\nFHIR fuzz, {resource_type}: {sent} searches, no 5xx, every 4xx an OperationOutcome")


WITH_BODIES = [d for d in DECLARED if d["type"] != "AuditEvent"]  # AuditEvent: search by GET only, no body


@pytest.mark.parametrize("declared", WITH_BODIES, ids=[d["type"] for d in WITH_BODIES])
def test_bodies(client: TestClient, declared: dict[str, Any], headers: Callable[[str], dict[str, str]]) -> None:
    """Bodies to create, update and batch of every type (a read-only type must refuse them with a 4xx too)."""
    resource_type = declared["type"]
    h = headers(resource_type)
    sent = 0

    @SETTINGS
    @hypothesis.given(body=bodies(resource_type), xml=st.booleans())
    def run(body: Any, xml: bool) -> None:
        nonlocal sent
        content = _dumps(body)
        sent_headers = h
        if xml:  # nesting as XML: elements in elements
            depth = min(len(content), 3000) // 10
            content = b'<Patient xmlns="http://hl7.org/fhir">' + b"<extension>" * depth
            content += b"</extension>" * depth + b"</Patient>"
            sent_headers = {**h, "Content-Type": "application/fhir+xml"}
        _check(client.post(f"/fhir/{resource_type}", content=content, headers=sent_headers), f"POST {body!r}")
        _check(client.put(f"/fhir/{resource_type}/x1", content=content, headers=sent_headers), f"PUT {body!r}")
        entry = {"resource": body, "request": {"method": "POST", "url": resource_type}}
        wrapped = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
        _check(client.post("/fhir", content=_dumps(wrapped), headers=h), f"batch {body!r}")
        sent += 3

    run()
    print(f"\nFHIR fuzz, {resource_type}: {sent} bodies, no 5xx, every 4xx an OperationOutcome")
