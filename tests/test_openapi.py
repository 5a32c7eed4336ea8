"""openapi/openapi.json is the app's spec, with stable operation ids, documented errors and examples."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from service.openapi_export import openapi_document
from tests.conftest import project_root

COMMITTED = project_root() / "openapi" / "openapi.json"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return openapi_document()


def test_committed_export_matches_the_app(spec: dict[str, Any]) -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == spec, "openapi/openapi.json is stale: run `make openapi` and commit it"


def test_operation_ids_are_explicit_and_unique(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert "createKetamineAdministration" in ids
    assert "listQuestionnaireResponses" in ids
    assert all("_" not in i for i in ids), "generated ids (with underscores) are unstable"


def test_every_protected_operation_documents_its_errors(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"401", "403", "422"} <= codes, (method, path)
            # Every PATCH names the version it changes (If-Match), and so does signing a draft note.
            if method == "patch" or path.endswith("/sign"):
                assert {"412", "428"} <= codes, path
            assert operation["responses"]["401"]["content"]["application/problem+json"]


def test_request_bodies_carry_examples(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        post = item.get("post")
        if post is None or "requestBody" not in post:
            continue  # actions without a body (replay) have nothing to exemplify
        schema = post["requestBody"]["content"]["application/json"]["schema"]
        if schema.get("examples"):
            continue
        for choice in schema.get("oneOf", [schema]):
            ref = choice["$ref"].rsplit("/", 1)[-1]
            assert schemas[ref].get("examples"), f"{ref} ({path}) has no example"


def test_fhir_bodies_are_documented_under_their_media_type(spec: dict[str, Any]) -> None:
    content = spec["paths"]["/api/v1/questionnaire-responses"]["post"]["requestBody"]["content"]
    assert content["application/fhir+json"]["schema"]["$ref"].endswith("/FhirResource")


def test_fhir_bodies_document_their_refusals_as_operation_outcomes(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/api/v1/questionnaire-responses"]["post"]["responses"]
    for status in ("400", "422"):
        schema = responses[status]["content"]["application/fhir+json"]["schema"]
        assert schema["properties"]["resourceType"] == {"const": "OperationOutcome"}
        assert "application/problem+json" in responses[status]["content"]
    plain = spec["paths"]["/api/v1/caseload"]["get"]["responses"]["422"]["content"]
    assert "application/fhir+json" not in plain  # no FHIR body, no FHIR answer


INDEFINITE_ARTICLE = re.compile(r"\b(a|an) (\w+)", re.IGNORECASE)
# Said with a vowel sound though spelled otherwise, or the reverse; extend when a label needs it.
SAID_WITH_A_VOWEL = {"ehr"}
SAID_WITH_A_CONSONANT = {"cbt", "questionnaire", "unique", "user"}


def _wants_an(word: str) -> bool:
    lower = word.lower()
    if lower in SAID_WITH_A_VOWEL:
        return True
    return lower not in SAID_WITH_A_CONSONANT and lower[0] in "aeiou"


def test_summaries_use_the_right_article(spec: dict[str, Any]) -> None:
    # Issue #24 part 6: "Record a enrollment", "Read a EHR sync target".
    wrong = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for text in (operation.get("summary", ""), operation.get("description", "")):
                for article, word in INDEFINITE_ARTICLE.findall(text):
                    if (article.lower() == "an") != _wants_an(word):
                        wrong.append(f"{method.upper()} {path}: {article} {word}")
    assert not wrong, wrong
    summaries = {op["operationId"]: op["summary"] for item in spec["paths"].values() for op in item.values()}
    assert summaries["createEnrollment"] == "Record an enrollment"
    assert summaries["readSyncTarget"] == "Read an EHR sync target"
    assert summaries["createCbtSession"] == "Record a CBT session"


def test_errors_document_the_415_for_a_body_not_sent_as_json(spec: dict[str, Any]) -> None:
    assert "415" in spec["paths"]["/api/v1/patients"]["post"]["responses"]
    assert "415" in spec["paths"]["/api/v1/patients/{record_id}"]["patch"]["responses"]
