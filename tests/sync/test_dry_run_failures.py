"""Issue #16, finding 7: a dry run against a target that fails is a 502 problem saying what the target did and
what to do — not a 500. (A redirecting /metadata; a bearer target with no token written; a closed port.)"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.builders import administration_body
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.sync.sync_harness import SyncApp, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()
PROBLEM_JSON = "application/problem+json"


class Redirecting(BaseHTTPRequestHandler):
    """Every request answers 302 to another host, as a misconfigured or hostile target might."""

    seen: list[str] = []

    def do_GET(self) -> None:
        Redirecting.seen.append(self.path)
        self.send_response(302)
        self.send_header("Location", "https://elsewhere.example/fhir/metadata")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test output stays quiet


@pytest.fixture(scope="module")
def redirecting() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


def _dry_run(sync_app: SyncApp, tenant: str, target: str) -> tuple[int, str, dict[str, object]]:
    api = sync_app.driver(tenant)
    given = api.create("ketamine-administrations", administration_body(api.patient()))
    admin = sync_app.driver(tenant, "admin")
    answer = admin.client.post(
        f"/api/v1/sync/targets/{target}/dry-run",
        json={"record_kind": "ketamine-administrations", "record_id": given["id"]},
        headers=admin.headers,
    )
    return answer.status_code, answer.headers.get("content-type", ""), answer.json()


def test_a_redirecting_metadata_is_explained_and_not_followed(sync_app: SyncApp, redirecting: str) -> None:
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, redirecting, push=["ketamine-administrations"])
    before = len(Redirecting.seen)
    status, media_type, problem = _dry_run(sync_app, tenant, target)
    assert status == 502, problem
    assert media_type.startswith(PROBLEM_JSON)
    detail = str(problem["detail"])
    assert "302" in detail and "does not follow redirects" in detail and "base_url" in detail, detail
    assert Redirecting.seen[before:] == ["/fhir/metadata"]  # asked once, and elsewhere.example never


def test_a_bearer_target_without_a_written_token_says_how_to_write_it(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, sekmet.base_url, push=["ketamine-administrations"], auth={"kind": "bearer"})
    status, media_type, problem = _dry_run(sync_app, tenant, target)
    assert status == 502, problem
    assert media_type.startswith(PROBLEM_JSON)
    assert f"PUT /api/v1/sync/targets/{target}/credential" in str(problem["detail"]), problem


def test_a_target_that_does_not_answer_is_a_502(sync_app: SyncApp) -> None:
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, f"http://127.0.0.1:{_closed_port()}/fhir", push=["ketamine-administrations"])
    status, _, problem = _dry_run(sync_app, tenant, target)
    assert status == 502, problem
    assert "did not answer" in str(problem["detail"]) and "ConnectError" in str(problem["detail"]), problem
