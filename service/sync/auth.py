"""How we authenticate to a target: none, the static bearer token written for it, or SMART Backend Services.

SMART Backend Services: `client_credentials` with a `private_key_jwt` client assertion (RS384 or ES384) signed by
one of our keys. Keys come from the environment (TANDEM_SMART_PRIVATE_KEYS: a JSON object kid -> PEM, oldest
first); every configured key is published in our JWKS and the newest signs unless a target names its key_id.
Access tokens are cached per target until shortly before they expire and renewed once on a 401.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.settings import Settings
from service.sync.credentials import CredentialError, open_token, origin_of

KEYS_ENV = "TANDEM_SMART_PRIVATE_KEYS"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Renew this long before the token's expiry, so a request never starts with a token about to lapse.
EXPIRY_MARGIN_SECONDS = 60
ASSERTION_LIFETIME_SECONDS = 240  # SMART: at most five minutes


class AuthError(Exception):
    """We could not obtain credentials for a target (no key or token written, token endpoint refused us)."""

    def __init__(self, message: str, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def configured_keys(settings: Settings) -> dict[str, PrivateKey]:
    """Our signing keys, kid -> private key, oldest first (TANDEM_SMART_PRIVATE_KEYS)."""
    raw = settings.smart_private_keys
    keys: dict[str, PrivateKey] = {}
    for kid, pem in dict(raw).items():
        key = serialization.load_pem_private_key(str(pem).encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError(f"key {kid!r}: only RSA and EC keys can sign RS384/ES384 assertions")
        keys[str(kid)] = key
    return keys


def public_jwk(kid: str, key: PrivateKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwk["alg"] = "RS384"
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        jwk["alg"] = "ES384"
    jwk.update({"kid": kid, "use": "sig", "key_ops": ["verify"]})
    return jwk


def jwks_document(settings: Settings) -> dict[str, Any]:
    """Our public keys for /.well-known/jwks.json: every configured key, so tokens signed before a rotation
    still verify."""
    return {"keys": [public_jwk(kid, key) for kid, key in configured_keys(settings).items()]}


def signing_key(settings: Settings, key_id: str | None) -> tuple[str, PrivateKey]:
    keys = configured_keys(settings)
    if not keys:
        raise AuthError(f"no SMART signing key configured ({KEYS_ENV})")
    if key_id and key_id in keys:
        return key_id, keys[key_id]
    newest = list(keys)[-1]
    return newest, keys[newest]


def client_assertion(settings: Settings, *, client_id: str, token_url: str, key_id: str | None, algorithm: str) -> str:
    kid, key = signing_key(settings, key_id)
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECONDS,
        "jti": secrets.token_hex(16),
    }
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid, "typ": "JWT"})


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Access tokens shared by the threads of one process, keyed by everything that decides where a token may go.

    The key names the target's origin and its token endpoint, client and key, so a target re-pointed at another
    host gets a new token instead of the one the EHR issued. Only the dictionary is locked; a fetch holds a lock of
    its own key, so one slow token endpoint never stalls the other targets (and one key is fetched once at a time).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[str, _Token] = {}
        self._fetching: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self.requests = 0  # token requests made (observable in tests)

    def invalidate(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def _fresh(self, key: str) -> str | None:
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and cached.expires_at - EXPIRY_MARGIN_SECONDS > self._clock():
            return cached.value
        return None

    def get(self, key: str, fetch: Callable[[], tuple[str, float]]) -> str:
        cached = self._fresh(key)
        if cached is not None:
            return cached
        with self._lock:
            fetching = self._fetching.setdefault(key, threading.Lock())
        with fetching:
            cached = self._fresh(key)  # another thread may have fetched it while we waited
            if cached is not None:
                return cached
            value, lifetime = fetch()
            with self._lock:
                self.requests += 1
                self._tokens[key] = _Token(value, self._clock() + lifetime)
            return value


def smart_cache_key(target_id: str, base_url: str, auth: dict[str, Any]) -> str:
    """Where a SMART access token was issued for and may be sent: target, origin, endpoint, client, key, scope."""
    parts = [target_id, origin_of(base_url)]
    parts += [str(auth.get(name) or "") for name in ("token_url", "client_id", "key_id", "algorithm", "scope")]
    return json.dumps(parts)


TOKENS = TokenCache()


def request_smart_token(
    http: httpx.Client, settings: Settings, auth: dict[str, Any], check_url: Callable[[str], None]
) -> tuple[str, float]:
    token_url = str(auth["token_url"])
    check_url(token_url)
    form = {
        "grant_type": "client_credentials",
        "scope": str(auth.get("scope") or "system/*.rs system/*.cu"),
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(
            settings,
            client_id=str(auth["client_id"]),
            token_url=token_url,
            key_id=auth.get("key_id"),
            algorithm=str(auth.get("algorithm") or "RS384"),
        ),
    }
    try:
        response = http.post(token_url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as error:
        raise AuthError(f"token endpoint unreachable: {type(error).__name__}") from error
    if response.status_code != 200:
        body = _json_or_text(response)
        raise AuthError(f"token endpoint answered {response.status_code}", response.status_code, body)
    body = response.json()
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthError("token endpoint answered without an access_token", response.status_code)
    return token, float(body.get("expires_in") or 300)


def bearer_token(settings: Settings, *, tenant_id: str, target_id: str, base_url: str, sealed: str | None) -> str:
    """The token written for this target, opened only for this target at the origin it was written for."""
    try:
        return open_token(settings, sealed, tenant_id=tenant_id, target_id=target_id, base_url=base_url)
    except CredentialError as error:
        raise AuthError(str(error)) from None


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"text": response.text[:500]}
