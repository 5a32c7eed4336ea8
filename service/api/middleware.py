"""ASGI middleware: request ids, security headers and a per-client rate limit (the body cap: body_limit.py).

Plain ASGI rather than BaseHTTPMiddleware: it streams.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import uuid
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import TandemError, TooManyRequests

REQUEST_ID_HEADER = b"x-request-id"
MAX_TRACKED_CLIENTS = 10_000
# An address's bucket is this many times a client's: a hospital's interface engine may front several clients.
ADDRESS_BUCKET_SIZE = 4.0
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
                headers += [(name, value) for name, value in self.DEFAULTS if name not in present]
                if b"cache-control" not in present:
                    # Patient data must never sit in a shared cache; anything public says so itself.
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimit:
    """A token bucket per client (its bearer token, or its address when it has none), in this process.

    Each API replica limits on its own: behind N replicas a client gets up to N times the rate. The answer to
    a client over its rate is 429 with Retry-After, in the same error format as every other refusal.
    """

    def __init__(self, app: ASGIApp, *, per_minute: int, render: Callable[[Scope, TandemError], Response]) -> None:
        self.app = app
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.render = render
        self.buckets: dict[str, tuple[float, float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rate <= 0:
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        # The token is unchecked here, so an address has a bucket of its own too (several clients may share
        # one, hence the larger size): a stream of made-up tokens cannot dodge the limit.
        buckets = self._buckets_of(scope)
        wait = self._take(buckets, now, 1)
        if wait:
            response = self.render(
                scope, TooManyRequests(f"too many requests from this client; retry after {wait} s", wait)
            )
            await response(scope, receive, send)
            return
        if len(self.buckets) > MAX_TRACKED_CLIENTS:
            self._forget_idle(now)
        # A Bundle's entries are requests too: the FHIR batch route charges them here (issue #16, finding 8).
        scope.setdefault("state", {})["charge_requests"] = lambda n: self._charge(buckets, n)
        await self.app(scope, receive, send)

    def _charge(self, buckets: list[tuple[str, float]], n: int) -> None:
        allowance = int(self.capacity * min(size for _, size in buckets))
        if n + 1 > allowance:
            raise TooManyRequests(
                f"a Bundle of {n + 1} entries counts as {n + 1} requests; this client may send {allowance} a "
                "minute: split it",
                60,
            )
        wait = self._take(buckets, time.monotonic(), n)
        if wait:
            raise TooManyRequests(
                f"a Bundle of {n + 1} entries counts as {n + 1} requests, more than this client has left; "
                f"retry after {wait} s",
                wait,
            )

    def _take(self, buckets: list[tuple[str, float]], now: float, n: int) -> int:
        """Take n tokens from every bucket, or none; the seconds to wait when one is short (0 when taken)."""
        levels: dict[str, float] = {}
        wait = 0
        for key, size in buckets:
            rate = self.rate * size
            tokens, last = self.buckets.get(key, (self.capacity * size, now))
            levels[key] = min(self.capacity * size, tokens + (now - last) * rate)
            if levels[key] < n:
                wait = max(wait, math.ceil((n - levels[key]) / rate))
        for key, tokens in levels.items():
            self.buckets[key] = (tokens if wait else tokens - n, now)
        return wait

    @staticmethod
    def _buckets_of(scope: Scope) -> list[tuple[str, float]]:
        client = scope.get("client") or ("unknown", 0)
        found = [(f"address:{client[0]}", ADDRESS_BUCKET_SIZE)]
        authorization = dict(scope["headers"]).get(b"authorization")
        if authorization:
            found.append(("token:" + hashlib.sha256(authorization).hexdigest(), 1.0))
        return found

    def _forget_idle(self, now: float) -> None:
        """A full bucket holds no state worth keeping: drop those, so the table cannot grow without bound."""
        self.buckets = {
            key: (tokens, last)
            for key, (tokens, last) in self.buckets.items()
            if tokens + (now - last) * self.rate
            < self.capacity * (ADDRESS_BUCKET_SIZE if key.startswith("address:") else 1)
        }
