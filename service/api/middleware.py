"""ASGI middleware: a request id on every request and response, and a cap on request body size.

Plain ASGI rather than BaseHTTPMiddleware: it streams, and the size cap must hold for chunked bodies too. The cap
raises an HTTPException from `receive`, the one exception FastAPI lets through its body parsing untouched, so
the edge's error translator renders it like any other error.
"""

from __future__ import annotations

import re
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is echoed only when it looks like an id, so it can never smuggle content into our logs.
SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdAndBodyLimit:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(REQUEST_ID_HEADER, b"")
        request_id = given.decode() if SAFE_REQUEST_ID.match(given) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        declared = headers.get(b"content-length", b"0")
        received = int(declared) if declared.isdigit() else 0

        def refuse_if_too_large() -> None:
            if received > self.max_body_bytes:
                raise HTTPException(
                    413,
                    f"request body is larger than {self.max_body_bytes} bytes; split it into smaller requests",
                )

        async def limited_receive() -> Message:
            nonlocal received
            refuse_if_too_large()
            message = await receive()
            if message["type"] == "http.request" and not declared.isdigit():
                received += len(message.get("body", b""))
                refuse_if_too_large()
            return message

        await self.app(scope, limited_receive, send_with_id)
