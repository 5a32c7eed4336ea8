"""HTTP to one target: host checked before every request, authenticated, rate limited, every request logged.

Only the target's own origin is ever contacted (and its token endpoint): a `next` link or Location pointing
elsewhere is refused. Redirects are not followed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from service.errors import InvalidRequest
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync import auth as sync_auth
from service.sync.url_safety import check_host_is_public, check_target_url

FHIR_JSON = "application/fhir+json"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class UnsafeUrl(Exception):
    """A URL we refuse to contact (not the target's origin, or a non-public host not allowed by the operator)."""


@dataclass
class RequestLog:
    method: str
    url: str
    status_code: int | None
    outcome: str
    duration_ms: int


@dataclass
class Exchange:
    """A completed HTTP exchange (a response arrived)."""

    status_code: int
    headers: httpx.Headers
    body: Any  # parsed JSON, or None
    content: bytes = b""  # the raw body (an NDJSON file of a Bulk Data export is not one JSON document)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class RateLimiter:
    """At most `per_second` requests per second from this process to a target (a simple spacing limiter)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


_LIMITERS: dict[tuple[str, float], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(target_id: str, per_second: float) -> RateLimiter:
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault((target_id, per_second), RateLimiter(per_second))


@dataclass
class FhirClient:
    target: SyncTarget
    settings: Settings
    correlation_id: str | None = None
    tokens: sync_auth.TokenCache = field(default_factory=lambda: sync_auth.TOKENS)
    on_request: Callable[[RequestLog], None] | None = None
    http: httpx.Client = field(
        default_factory=lambda: httpx.Client(timeout=DEFAULT_TIMEOUT, follow_redirects=False, trust_env=False)
    )
    rate_limit: bool = True

    def __post_init__(self) -> None:
        parts = urlsplit(self.target.base_url)
        self.origin = (parts.scheme, parts.hostname, parts.port)
        self.base = self.target.base_url.rstrip("/")

    def close(self) -> None:
        self.http.close()

    # ---- safety -----------------------------------------------------------------------------------------------

    def check_url(self, url: str, *, same_origin: bool = True) -> None:
        settings = self.settings
        try:
            check_target_url(
                url.split("?", 1)[0],
                allowed_hosts=settings.sync_allowed_hosts,
                require_https=settings.sync_require_https,
            )
        except InvalidRequest as error:
            raise UnsafeUrl(str(error.problems[0].message if error.problems else error)) from None
        parts = urlsplit(url)
        if same_origin and (parts.scheme, parts.hostname, parts.port) != self.origin:
            raise UnsafeUrl(f"{parts.scheme}://{parts.netloc} is not the target's origin")
        host = (parts.hostname or "").lower()
        if host not in {h.lower() for h in settings.sync_allowed_hosts}:
            try:
                check_host_is_public(host)  # again, right before connecting: DNS may have changed
            except InvalidRequest as error:
                raise UnsafeUrl(str(error)) from None

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base}/{path.lstrip('/')}"

    # ---- auth -------------------------------------------------------------------------------------------------

    def _token(self) -> str | None:
        config = self.target.auth or {}
        kind = config.get("kind", "none")
        target = self.target
        if kind == "bearer":
            return sync_auth.bearer_token(
                self.settings,
                tenant_id=target.tenant_id,
                target_id=target.id,
                base_url=target.base_url,
                sealed=target.credential,
            )
        if kind == "smart-backend":

            def fetch() -> tuple[str, float]:
                return sync_auth.request_smart_token(
                    self.http, self.settings, config, lambda u: self.check_url(u, same_origin=False)
                )

            return self.tokens.get(self.token_key, fetch)
        return None

    def access_token(self) -> str | None:
        """The token the next request would carry (None without auth); raises AuthError when none can be had."""
        return self._token()

    @property
    def token_key(self) -> str:
        return sync_auth.smart_cache_key(self.target.id, self.target.base_url, self.target.auth or {})

    # ---- requests ---------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        outcome_label: str | None = None,
    ) -> Exchange:
        """One request (renewing the token once on a 401). Raises httpx.HTTPError when no response arrived."""
        url = self.url(path)
        self.check_url(url)
        renewed = False
        while True:
            sent_headers = {"Accept": FHIR_JSON, **(headers or {})}
            if json_body is not None:
                sent_headers["Content-Type"] = FHIR_JSON
            if self.correlation_id:
                sent_headers["X-Request-Id"] = self.correlation_id
            token = self._token()
            if token:
                sent_headers["Authorization"] = f"Bearer {token}"
            if self.rate_limit:
                limiter_for(self.target.id, self.target.requests_per_second).wait()
            started = time.monotonic()
            logged_url = str(httpx.URL(url, params=params)) if params else url
            try:
                response = self.http.request(method, url, params=params, json=json_body, headers=sent_headers)
            except httpx.HTTPError as error:
                self._log(method, logged_url, None, _transport_outcome(error), started)
                raise
            exchange = Exchange(response.status_code, response.headers, _json(response), response.content)
            if response.status_code == 401 and not renewed and self.target.auth.get("kind") == "smart-backend":
                self._log(method, logged_url, 401, "token-renewal", started)
                self.tokens.invalidate(self.token_key)
                renewed = True
                continue
            self._log(
                method, logged_url, response.status_code, outcome_label or _outcome(response.status_code), started
            )
            return exchange

    def _log(self, method: str, url: str, status: int | None, outcome: str, started: float) -> None:
        if self.on_request is not None:
            duration = int((time.monotonic() - started) * 1000)
            self.on_request(RequestLog(method, url[:2048], status, outcome, duration))


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return {"text": response.text[:500]}


def _outcome(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "throttled"
    return "client-error" if status < 500 else "server-error"


def _transport_outcome(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.ConnectError):
        return "connect-error"
    return "no-response"
