"""A fault-injecting HTTP/1.1 reverse proxy on 127.0.0.1, for putting between a sync client and a FHIR server.

    plan = FaultPlan([FaultRule(Fault.drop_after_forward(), method="POST", path=r"^/fhir/Observation$", times=1)])
    with FaultProxy(ehr.root_url, plan) as proxy:
        client = httpx.Client(base_url=proxy.url("/fhir"))
        ...
        assert proxy.count(fault="drop_after_forward") == 1

Faults (first matching rule that fires wins; rules are tried in order):
  * error       -> answer `status` (500) with an OperationOutcome; the upstream never sees the request
  * throttle    -> answer 429 with `Retry-After: N`; the upstream never sees the request
  * drop_after_forward  -> forward, let the upstream finish, then close the client socket without a response
                    ("outcome unknown": the write happened but the client cannot know)
  * drop_before_forward -> close the client socket without forwarding (nothing happened, client cannot know)
  * delay       -> forward, then hold the response N seconds (a client timeout shorter than N also sees
                    "outcome unknown")
A rule matches by method (exact, case-insensitive) and a regex searched in the path (no query string; `path_query`
to include it); `probability` < 1 draws from a random.Random(seed) so a plan is reproducible for sequential clients;
`skip` lets the first N matching requests through, `times` caps how often a rule fires.

Absolute URLs of the upstream in response headers/bodies (Location, Bundle.link, fullUrl) are rewritten to the
proxy so that a client following `next` links stays behind the proxy (`rewrite_urls=False` to turn off;
/.well-known/ answers are never rewritten, so a SMART client talks to the real token endpoint, whose URL is the
audience sekmet expects in client assertions).

The proxy runs its own asyncio loop in a daemon thread and shuts down when the context exits (in-flight
requests are cancelled and their connections closed).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

FaultKind = Literal["error", "throttle", "drop_after_forward", "drop_before_forward", "delay"]
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "accept-encoding",
    "content-encoding",
}
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
REASONS |= {412: "Precondition Failed", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}
REASONS |= {503: "Service Unavailable", 504: "Gateway Timeout"}
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 500
    retry_after: int = 1
    delay_s: float = 0.0
    reset: bool = False  # drop_*: send a TCP RST instead of a FIN

    @classmethod
    def error(cls, status: int = 500) -> Fault:
        return cls("error", status=status)

    @classmethod
    def throttle(cls, retry_after: int = 1) -> Fault:
        return cls("throttle", status=429, retry_after=retry_after)

    @classmethod
    def drop_after_forward(cls, reset: bool = False) -> Fault:
        return cls("drop_after_forward", reset=reset)

    @classmethod
    def drop_before_forward(cls, reset: bool = False) -> Fault:
        return cls("drop_before_forward", reset=reset)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls("delay", delay_s=seconds)


@dataclass
class FaultRule:
    fault: Fault
    method: str | None = None
    path: str | None = None  # regex, re.search on the path (or path?query with path_query=True)
    probability: float = 1.0
    skip: int = 0
    times: int | None = None
    path_query: bool = False
    matched: int = 0
    fired: int = 0

    def matches(self, method: str, path: str, query: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        target = f"{path}?{query}" if self.path_query and query else path
        return not self.path or re.search(self.path, target) is not None


@dataclass
class FaultPlan:
    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def choose(self, method: str, path: str, query: str) -> Fault | None:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path, query):
                    continue
                rule.matched += 1
                if rule.matched <= rule.skip or (rule.times is not None and rule.fired >= rule.times):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule.fault
        return None

    @classmethod
    def passthrough(cls) -> FaultPlan:
        return cls([])


@dataclass
class ProxyRecord:
    seq: int
    method: str
    path: str
    query: str
    fault: str | None
    forwarded: bool  # the upstream received the request
    upstream_status: int | None
    status: int | None  # what the client received; None when the connection was dropped
    started: float
    duration_ms: float = 0.0
    error: str | None = None
    authorization: str | None = None  # the credential the client sent (tests of what reaches a target)


class _Request:
    def __init__(self, method: str, target: str, version: str, headers: list[tuple[str, str]], body: bytes):
        self.method, self.target, self.version, self.headers, self.body = method, target, version, headers, body
        parts = urlsplit(target)
        self.path, self.query = parts.path or "/", parts.query

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        return "close" not in connection if self.version == "HTTP/1.1" else "keep-alive" in connection


class _BadRequest(Exception):
    pass


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial.strip():
            raise _BadRequest("truncated request head") from error
        return None
    except asyncio.LimitOverrunError as error:
        raise _BadRequest("request head too large") from error
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError as error:
        raise _BadRequest(f"bad request line {lines[0]!r}") from error
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    request = _Request(method, target, version, headers, b"")
    if (request.header("transfer-encoding") or "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        request.body = b"".join(chunks)
    elif request.header("content-length"):
        request.body = await reader.readexactly(int(request.header("content-length") or 0))
    return request


class FaultProxy:
    """Reverse proxy from http://127.0.0.1:<port>/… to `upstream` (a root URL such as http://127.0.0.1:8090)."""

    def __init__(
        self,
        upstream: str,
        plan: FaultPlan | None = None,
        *,
        rewrite_urls: bool = True,
        upstream_timeout: float = 30.0,
        max_delay_s: float = 30.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        parts = urlsplit(self.upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy only forwards to loopback upstreams")
        self.upstream_root = f"{parts.scheme}://{parts.netloc}"
        self.plan = plan or FaultPlan.passthrough()
        self.rewrite_urls = rewrite_urls
        self.upstream_timeout = upstream_timeout
        self.max_delay_s = max_delay_s
        self.records: list[ProxyRecord] = []
        self._records_lock = threading.Lock()
        self._seq = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._startup_error: BaseException | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- public API

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "") -> str:
        """The proxy URL for an upstream path, e.g. proxy.url('/fhir') is the FHIR base behind the proxy."""
        return f"{self.root_url}{path}"

    def set_plan(self, plan: FaultPlan) -> None:
        self.plan = plan

    def clear(self) -> None:
        with self._records_lock:
            self.records.clear()

    def snapshot(self) -> list[ProxyRecord]:
        with self._records_lock:
            return list(self.records)

    def count(
        self,
        *,
        fault: str | Literal[False] | None = False,
        method: str | None = None,
        path: str | None = None,
        status: int | Literal[False] | None = False,
        forwarded: bool | None = None,
    ) -> int:
        """Count records; `fault=None` counts requests with no fault (False: any), path is a regex."""
        out = 0
        for r in self.snapshot():
            if fault is not False and r.fault != fault:
                continue
            if status is not False and r.status != status:
                continue
            if method and r.method != method.upper():
                continue
            if path and not re.search(path, r.path):
                continue
            if forwarded is not None and r.forwarded != forwarded:
                continue
            out += 1
        return out

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start within 10 s")
        if self._startup_error:
            raise RuntimeError(f"fault proxy failed to start: {self._startup_error}")
        return self

    def stop(self) -> None:
        if self._loop and self._stop and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(timeout=self.max_delay_s + 10)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- event loop

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
            self._server = await asyncio.start_server(self._handle, sock=sock, limit=MAX_HEADER_BYTES)
            self._upstream = httpx.AsyncClient(
                timeout=self.upstream_timeout, follow_redirects=False, trust_env=False, http2=False
            )
        except BaseException as error:
            self._startup_error = error
            self._ready.set()
            return
        self._ready.set()
        tasks = self._tasks
        try:
            await self._stop.wait()
        finally:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()
            await self._upstream.aclose()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                try:
                    request = await _read_request(reader)
                except (_BadRequest, ValueError) as error:
                    await self._write(writer, 400, [("Content-Type", "text/plain")], str(error).encode(), False)
                    return
                if request is None:
                    return
                if not await self._serve_one(request, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _serve_one(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; returns whether the connection stays open."""
        fault = self.plan.choose(request.method, request.path, request.query)
        with self._records_lock:
            self._seq += 1
            record = ProxyRecord(
                self._seq,
                request.method.upper(),
                request.path,
                request.query,
                fault.kind if fault else None,
                False,
                None,
                None,
                time.monotonic(),
                authorization=request.header("authorization"),
            )
            self.records.append(record)
        try:
            return await self._apply(request, writer, fault, record)
        finally:
            record.duration_ms = (time.monotonic() - record.started) * 1000

    async def _apply(
        self, request: _Request, writer: asyncio.StreamWriter, fault: Fault | None, record: ProxyRecord
    ) -> bool:
        keep = request.keep_alive
        if fault and fault.kind == "error":
            body = _outcome("exception", f"Injected fault: HTTP {fault.status}")
            record.status = fault.status
            await self._write(writer, fault.status, [("Content-Type", "application/fhir+json")], body, keep)
            return keep
        if fault and fault.kind == "throttle":
            body = _outcome("throttled", f"Injected fault: too many requests, retry after {fault.retry_after} s")
            headers = [("Content-Type", "application/fhir+json"), ("Retry-After", str(fault.retry_after))]
            record.status = 429
            await self._write(writer, 429, headers, body, keep)
            return keep
        if fault and fault.kind == "drop_before_forward":
            self._drop(writer, fault)
            return False
        try:
            response = await self._forward(request)
        except httpx.HTTPError as error:
            record.error = repr(error)
            record.status = 502
            await self._write(
                writer, 502, [("Content-Type", "application/fhir+json")], _outcome("transient", str(error)), False
            )
            return False
        record.forwarded = True
        record.upstream_status = response.status_code
        if fault and fault.kind == "drop_after_forward":
            self._drop(writer, fault)
            return False
        if fault and fault.kind == "delay":
            await asyncio.sleep(min(fault.delay_s, self.max_delay_s))
        headers, body = self._rewrite(request, response)
        record.status = response.status_code
        await self._write(writer, response.status_code, headers, body, keep)
        return keep

    async def _forward(self, request: _Request) -> httpx.Response:
        headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP]
        headers.append(("Accept-Encoding", "identity"))
        url = f"{self.upstream_root}{request.target}"
        return await self._upstream.request(request.method, url, headers=headers, content=request.body or None)

    def _rewrite(self, request: _Request, response: httpx.Response) -> tuple[list[tuple[str, str]], bytes]:
        body = response.content
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in HOP_BY_HOP]
        if self.rewrite_urls and "/.well-known/" not in request.path:
            old, new = self.upstream_root, self.root_url
            body = body.replace(old.encode(), new.encode())
            headers = [(k, v.replace(old, new)) for k, v in headers]
        return headers, body

    @staticmethod
    def _drop(writer: asyncio.StreamWriter, fault: Fault) -> None:
        if fault.reset:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()

    @staticmethod
    async def _write(
        writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool
    ) -> None:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines += [f"Content-Length: {len(body)}", f"Connection: {'keep-alive' if keep_alive else 'close'}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()


def _outcome(code: str, text: str) -> bytes:
    outcome: dict[str, Any] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return json.dumps(outcome).encode()
