"""BodyLimit: no request body larger than the cap gets past the edge, however it is framed.

It counts the bytes actually received - Content-Length, chunked, or no length at all - and reads the whole body
(up to the cap) before anything else runs: rate limiting, authentication and the handlers only ever see a body
that fits. A declared Content-Length over the cap is refused before a byte is read. The refusal is a 413 with
`Connection: close`, so the server stops reading the rest instead of draining it.

Buffering costs at most the cap per request in flight, which the handlers would hold anyway (every body is
parsed whole).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import TandemError, TooCostly


class BodyTooLarge(TooCostly):
    title = "Request Entity Too Large"


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, render: Callable[[Scope, TandemError], Response]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and self._over_cap(declared):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-body: there is no one to answer
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _over_cap(self, declared: bytes) -> bool:
        # Digits only (the server checked the framing); a length too long to be a number is over any cap.
        return len(declared) > 18 or int(declared or b"0") > self.max_body_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.render(
            scope,
            BodyTooLarge(f"request body is larger than {self.max_body_bytes} bytes; split it into smaller requests"),
        )
        response.headers["connection"] = "close"
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then the server's own messages (a disconnect, for streaming responses)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
