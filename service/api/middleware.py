"""ASGI middleware: request ids and security headers (the body cap: body_limit.py; the rate limit: rate_limit.py).

Plain ASGI rather than BaseHTTPMiddleware: it streams.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import TandemError

REQUEST_ID_HEADER = b"x-request-id"
NUL = b"%00"
# A caller's id is echoed only when it looks like an id, so it can never smuggle content into our logs.
SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        request_id = given.decode() if SAFE_REQUEST_ID.match(given) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class RefuseNul:
    """PostgreSQL cannot store or compare text with NUL characters: refuse them in the URL up front (bodies are
    checked by the request models)."""

    def __init__(self, app: ASGIApp, *, render: Callable[[Scope, TandemError], Response]) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (NUL in scope.get("query_string", b"") or "\x00" in scope.get("path", "")):
            response = self.render(scope, TandemError("the URL contains a NUL character"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Headers every response gets; a route that sets its own Cache-Control (public metadata) keeps it."""

    DEFAULTS = (
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if _states_its_framing(headers):
                    present.add(b"x-frame-options")  # a page's CSP frame-ancestors decides (page_headers.py)
                headers += [(name, value) for name, value in self.DEFAULTS if name not in present]
                if b"cache-control" not in present:
                    # Patient data must never sit in a shared cache; anything public says so itself.
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _states_its_framing(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"content-security-policy" and b"frame-ancestors" in value for name, value in headers)
