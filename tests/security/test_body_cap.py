"""The body cap holds however the body is framed (issue #16, finding 3), against a real uvicorn server.

A raw socket sends a 100 MB chunked body with no token; the server must answer 413 and close, having handed the
application no more than the cap plus the one message that passed it - before any authentication or handler
work. The figures (bytes the application was handed, bytes the client got into the socket before the refusal)
are printed for docs/security.md.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.app import create_app
from service.settings import Settings
from tests.builders import API, patient_body
from tests.live_server import serve
from tests.security.support import new_tenant_id, role_headers

HUNDRED_MB = 100 * 1000 * 1000
CHUNK = 64 * 1024


class CountingApp:
    """Outside everything: counts the body bytes the server hands the application."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.messages: list[int] = []  # body bytes of each message the server handed over

    @property
    def body_bytes(self) -> int:
        return sum(self.messages)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.messages.append(len(message.get("body", b"")))
            return message

        await self.app(scope, counted, send)


class Server:
    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.counting = CountingApp(self.app)
        self.verified = 0
        verifier = self.app.state.token_verifier
        original = verifier.verify

        def counting_verify(token: str) -> Any:
            self.verified += 1
            return original(token)

        verifier.verify = counting_verify


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[Server, str]]:
    running = Server(settings)
    with serve(running.counting) as base_url:  # type: ignore[arg-type]
        yield running, base_url


def _chunked_flood(base_url: str, headers: dict[str, str], total: int) -> tuple[bytes, int]:
    """Sends a chunked body of `total` bytes while reading the answer; returns (answer, bytes the client sent)."""
    parts = urlsplit(base_url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = [f"POST {API}/patients HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append("Transfer-Encoding: chunked")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = 0
    chunk = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"

    def flood() -> None:
        nonlocal sent
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += CHUNK
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection: what the test wants

    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except OSError:
        pass  # reset after the answer arrived
    sender.join(timeout=60)
    sock.close()
    return answer, sent


def test_a_100_mb_chunked_body_without_a_token_is_refused_at_the_cap(
    server: tuple[Server, str], settings: Settings
) -> None:
    running, base_url = server
    answer, client_sent = _chunked_flood(base_url, {}, HUNDRED_MB)
    status_line, _, rest = answer.partition(b"\r\n")
    head = rest.partition(b"\r\n\r\n")[0].lower()
    handed = running.counting.messages
    print(
        f"\n[body cap] 100 MB chunked, no token: answer {status_line.decode()!r}; application handed "
        f"{sum(handed):,} bytes (cap {settings.max_body_bytes:,}, the last message {handed[-1]:,}); "
        f"the client got {client_sent:,} bytes into the socket before the refusal"
    )
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:500]
    assert b"connection: close" in head
    # Reading stopped at the message that passed the cap: everything before it fits under the cap.
    assert sum(running.counting.messages[:-1]) <= settings.max_body_bytes
    assert client_sent < HUNDRED_MB  # the server stopped reading; the flood did not all go in


def test_an_oversized_chunked_body_is_refused_before_a_valid_token_is_checked(
    server: tuple[Server, str], settings: Settings
) -> None:
    running, base_url = server
    headers = role_headers(settings, new_tenant_id(running.app.state.engine), "ehr-system")
    answer, _ = _chunked_flood(base_url, headers, 4 * settings.max_body_bytes)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:500]
    assert running.verified == 0  # no authentication work was done for it


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read(
    server: tuple[Server, str], settings: Settings
) -> None:
    running, base_url = server
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(
            f"POST {API}/patients HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {HUNDRED_MB}\r\n\r\n".encode()
        )
        answer = sock.recv(65536)  # the answer comes without a body byte sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:500]
    assert running.counting.body_bytes == 0


def test_a_chunked_body_under_the_cap_is_served(server: tuple[Server, str], settings: Settings) -> None:
    running, base_url = server
    headers = role_headers(settings, new_tenant_id(running.app.state.engine), "ehr-system")
    body = httpx.Request("POST", "/", json=patient_body()).content

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    with httpx.Client(base_url=base_url, timeout=30) as http:
        created = http.post(
            f"{API}/patients", content=chunks(), headers={**headers, "Content-Type": "application/json"}
        )
    assert created.status_code == 201, created.text
    assert created.request.headers.get("transfer-encoding") == "chunked"
