"""The log record factory scrubs query strings, identifiers and names from every logger (issue #16, finding 6)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from service.observability.logging import JsonFormatter
from service.observability.redaction import install_log_redaction, redact


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger that does not propagate, with its own JSON handler: redaction must not depend on the root."""
    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("some.library.that.does.not.propagate")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("line", "gone", "kept"),
    [
        (
            'HTTP Request: GET https://ehr.example/fhir/Patient?identifier=urn:oid:1.2%7CMRN-77&_count=1 "200 OK"',
            ["MRN-77", "identifier=", "_count"],
            ["https://ehr.example/fhir/Patient?[redacted]", "200"],
        ),
        ("POST /fhir/Patient/_search?name=Qwertz&birthdate=1961-02-03", ["Qwertz", "1961"], ["/fhir/Patient/_search"]),
        ("no match for urn:test:mrn|MRN-LOG-1 at the target", ["MRN-LOG-1"], ["[identifier]", "at the target"]),
        (
            '{"family": "Qwertz", "given": ["Ysolde"], "birthDate": "1961-02-03", "status": "final"}',
            ["Qwertz", "Ysolde", "1961"],
            ['"status": "final"'],
        ),
        ("family_name='Qwertz' refused", ["Qwertz"], ["refused"]),
        ("outbox row 42 sent to target 7 in 12:30:01.5 ms", [], ["outbox row 42 sent to target 7 in 12:30:01.5 ms"]),
    ],
)
def test_redact(line: str, gone: list[str], kept: list[str]) -> None:
    scrubbed = redact(line)
    for text in gone:
        assert text not in scrubbed, scrubbed
    for text in kept:
        assert text in scrubbed, scrubbed


def test_arguments_and_tracebacks_are_scrubbed_on_any_logger(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("GET %s", "https://ehr.example/fhir/Patient?identifier=urn:x|MRN-ARG")
    try:
        raise ValueError("lookup failed for https://ehr.example/fhir/Patient?name=Qwertz")
    except ValueError:
        logger.exception("delivery failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    text = stream.getvalue()
    assert "MRN-ARG" not in text and "Qwertz" not in text and "identifier=" not in text
    assert lines[0]["message"] == "GET https://ehr.example/fhir/Patient?[redacted]"
    assert "ValueError" in lines[1]["traceback"]


def test_a_malformed_format_string_keeps_the_template_not_the_arguments(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning("%d rows for %s", "MRN-BAD")
    assert "MRN-BAD" not in stream.getvalue()


def test_the_http_clients_request_trace_is_quiet() -> None:
    install_log_redaction()
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() == logging.WARNING
