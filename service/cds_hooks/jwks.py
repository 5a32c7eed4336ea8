"""The EHRs' public keys: a registered JWKS URL fetched with httpx (that URL only, its host checked before every
fetch as for EHR targets, no redirects), cached, and fetched again when a JWT names a key it does not hold."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from service.errors import InvalidRequest
from service.settings import Settings
from service.sync.url_safety import check_target_url

FRESH_SECONDS = 300.0  # a cached JWKS is used this long without asking again
REFETCH_AFTER_SECONDS = 30.0  # an unknown kid fetches again, but not more often than this (a flood of bad kids)
MAX_JWKS_BYTES = 64 * 1024
TIMEOUT = httpx.Timeout(5.0, connect=3.0)  # a CDS call should answer in about 500 ms: never wait long on keys


class JwksUnavailable(Exception):
    """The registered JWKS could not be fetched or read."""


@dataclass
class _Cached:
    keys: jwt.PyJWKSet
    fetched_at: float


def key_set(document: Any) -> jwt.PyJWKSet:
    """A JWKS document's signing keys; raises JwksUnavailable when it is not one."""
    try:
        return jwt.PyJWKSet.from_dict(document)
    except (jwt.PyJWTError, TypeError, KeyError, AttributeError) as error:
        raise JwksUnavailable(f"not a usable JWK Set: {error}") from None


class JwksCache:
    """One per app: JWKS URL -> its keys, shared by the requests (threads) of the process."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self._settings = settings
        self._transport = transport
        self._cached: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def key(self, url: str, kid: str) -> jwt.PyJWK | None:
        """The key `kid` of the JWKS at `url`, or None when the EHR does not publish it."""
        cached = self._get(url, max_age=FRESH_SECONDS)
        found = _find(cached.keys, kid)
        if found is None and time.monotonic() - cached.fetched_at > REFETCH_AFTER_SECONDS:
            found = _find(self._fetch(url).keys, kid)  # the EHR may have rotated its keys
        return found

    def _get(self, url: str, *, max_age: float) -> _Cached:
        with self._lock:
            cached = self._cached.get(url)
        if cached is not None and time.monotonic() - cached.fetched_at <= max_age:
            return cached
        return self._fetch(url)

    def _fetch(self, url: str) -> _Cached:
        try:
            check_target_url(
                url,
                field="jwks_url",
                allowed_hosts=self._settings.sync_allowed_hosts,
                require_https=self._settings.sync_require_https,
            )
        except InvalidRequest as refused:
            raise JwksUnavailable(f"the JWKS URL is refused: {refused}") from None
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=False, transport=self._transport) as client:
                response = client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise JwksUnavailable(f"the JWKS could not be fetched ({type(error).__name__})") from None
        if response.status_code != 200:
            raise JwksUnavailable(f"the JWKS URL answered {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise JwksUnavailable("the JWKS is larger than 64 KiB")
        try:
            document = response.json()
        except ValueError:
            raise JwksUnavailable("the JWKS is not JSON") from None
        cached = _Cached(key_set(document), time.monotonic())
        with self._lock:
            self._cached[url] = cached
        return cached


def _find(keys: jwt.PyJWKSet, kid: str) -> jwt.PyJWK | None:
    return next((k for k in keys.keys if k.key_id == kid), None)
