"""A nesting limit on every request body, checked as it streams in, before anything parses it.

Parsers and models recurse: a Patient with `extension` nested ~400 deep parsed as JSON, then overflowed Python's
stack in model validation (a 500, and the connection dropped). No FHIR resource or API body we take nests
anywhere near MAX_BODY_DEPTH levels (a Bundle's QuestionnaireResponse with items five deep is about 20).

The scan keeps three numbers per request (depth, in-string, escape), never the body: JSON counts `{`/`[` outside
strings, XML counts open minus closed elements. A refusal is an HTTPException (the one error FastAPI's
body reader lets through unchanged) raised from `receive`, so the route reading the body renders it in its
surface's format (OperationOutcome on /fhir, problem+json on /api), with the issue code `too-long`.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_DEPTH = 64


class BodyTooDeep(HTTPException):
    issue_code = "too-long"  # R4 issue-type: content too long, a denial-of-service guard


class DepthScanner:
    """Incremental depth of a JSON or XML text; `feed` raises HTTPException(400) past the limit."""

    def __init__(self, kind: str, limit: int = MAX_BODY_DEPTH) -> None:
        self.kind = kind
        self.limit = limit
        self.depth = 0
        self.deepest = 0
        self.in_string = False  # JSON: inside "…"; XML: inside a quoted attribute value
        self.quote = 0
        self.escaped = False
        self.in_tag = False  # XML: between < and >
        self.tag_start = False  # XML: the byte right after <
        self.last = 0

    def feed(self, chunk: bytes) -> None:
        if self.kind == "json":
            self._json(chunk)
        else:
            self._xml(chunk)
        if self.deepest > self.limit:
            raise BodyTooDeep(
                400, f"the request body nests deeper than {self.limit} levels, which no resource here needs"
            )

    def _json(self, chunk: bytes) -> None:
        for byte in chunk:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif byte == 0x5C:  # backslash
                    self.escaped = True
                elif byte == 0x22:
                    self.in_string = False
            elif byte == 0x22:
                self.in_string = True
            elif byte in (0x7B, 0x5B):  # { [
                self.depth += 1
                self.deepest = max(self.deepest, self.depth)
                if self.deepest > self.limit:
                    return
            elif byte in (0x7D, 0x5D):
                self.depth -= 1

    def _xml(self, chunk: bytes) -> None:
        for byte in chunk:
            if self.in_string:
                if byte == self.quote:
                    self.in_string = False
            elif self.in_tag:
                if self.tag_start:
                    self.tag_start = False
                    if byte == 0x2F:  # </name>
                        self.depth -= 1
                    elif byte in (0x3F, 0x21):  # <? … ?> and <! … > open nothing
                        pass
                    else:
                        self.depth += 1
                        self.deepest = max(self.deepest, self.depth)
                        if self.deepest > self.limit:
                            return
                elif byte in (0x22, 0x27):
                    self.in_string, self.quote = True, byte
                elif byte == 0x3E:  # >
                    self.in_tag = False
                    if self.last == 0x2F:  # <name/> closed itself
                        self.depth -= 1
            elif byte == 0x3C:
                self.in_tag, self.tag_start = True, True
            self.last = byte


def body_kind(scope: Scope) -> str | None:
    """JSON (also when no type is given: the API and /fhir then read JSON), XML, or None for other bodies."""
    content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
    if not content_type or b"json" in content_type:
        return "json"
    if b"xml" in content_type:
        return "xml"
    return None


class BodyDepthLimit:
    def __init__(self, app: ASGIApp, *, max_depth: int = MAX_BODY_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = body_kind(scope) if scope["type"] == "http" else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        scanner = DepthScanner(kind, self.max_depth)

        async def scanned_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                scanner.feed(message.get("body", b""))
            return message

        await self.app(scope, scanned_receive, send)
