"""The connection test's failures in words against real sockets on loopback (a TLS handshake with a server that
speaks plain HTTP, a server that accepts and never answers), and the outbox's stored errors in words."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync.connection_check import check_connection
from service.sync.failure_words import stored_error_words
from tests.conftest import make_settings
from tests.live_server import serve


@pytest.fixture(scope="module")
def loopback() -> Settings:
    return make_settings("sqlite://", sync_allowed_hosts=["127.0.0.1"], sync_require_https=False)


def _target(base_url: str) -> SyncTarget:
    return SyncTarget(
        tenant_id="t", name="peer", base_url=base_url, auth={"kind": "none"}, source_system="", source_id=""
    )


@pytest.fixture(scope="module")
def plain_http() -> Iterator[str]:
    with serve(FastAPI()) as base_url:
        yield base_url


def test_a_tls_handshake_with_a_plain_http_server_is_said_tls(loopback: Settings, plain_http: str) -> None:
    port = plain_http.rsplit(":", 1)[1]
    report = check_connection(_target(f"https://127.0.0.1:{port}/fhir"), loopback)
    [metadata, token] = report.steps
    assert not metadata.ok and metadata.words.startswith(f"the TLS handshake with 127.0.0.1:{port} failed"), metadata
    assert token.ok and report.verdicts == [] and not report.ok


def test_a_server_that_never_answers_is_said_timeout(loopback: Settings) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # connections complete in the backlog; nothing ever answers
        port = silent.getsockname()[1]
        with httpx.Client(timeout=httpx.Timeout(0.5)) as http:
            report = check_connection(_target(f"http://127.0.0.1:{port}/fhir"), loopback, http=http)
    words = report.steps[0].words
    assert words == f"127.0.0.1:{port} accepted the connection but did not answer within the time allowed (timeout)"


def test_a_host_tandem_may_not_contact_is_said_so(loopback: Settings) -> None:
    report = check_connection(_target("http://10.9.8.7/fhir"), loopback)
    assert report.steps[0].words.startswith("Tandem did not contact 10.9.8.7:80: "), report.steps[0]


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (
            {"message": "Patient create: ConnectError", "retryable": True},
            None,
            "Patient create: ehr.example:443: could not connect (refused, unreachable or a failed TLS handshake)",
        ),
        (
            {"message": "Patient search: ReadTimeout (outcome unknown: resolved by a search on the retry)"},
            None,
            "Patient search: ehr.example:443: connected, but no answer within the time allowed (timeout)",
        ),
        (
            {
                "message": "Observation create: HTTP 400",
                "operation_outcome": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"diagnostics": "Observation.code: required"}],
                },
            },
            400,
            "Observation create: ehr.example:443 answered HTTP 400 Bad Request. "
            "The EHR said: Observation.code: required",
        ),
        (
            {"resourceType": "OperationOutcome", "issue": [{"code": "invalid"}]},
            422,
            "answered HTTP 422 Unprocessable Entity. The EHR said: invalid",
        ),
    ],
)
def test_stored_errors_are_said_in_words(error: dict[str, object], status: int | None, words: str) -> None:
    assert words in stored_error_words(error, status, "https://ehr.example/fhir")
