"""A target's own bearer token: written once by an admin, sealed at rest, never readable back, bound to the target.

Why not an environment variable named by the target: an admin could name any variable of the service's own
(`TANDEM_DEV_TOKEN_SECRET`, the SMART keys) and have it sent to a URL of their choosing. Here the admin can only
give the token itself, so nothing but what was written for the target ever leaves with its requests.

The seal is Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under TANDEM_TARGET_CREDENTIAL_KEYS. The
sealed text names the tenant, the target and the origin (scheme, host, port) the token was written for; it opens
only for that target at that origin, so a sealed value copied to another row, or a target re-pointed at another
host, sends nothing.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.clock import now_utc
from service.records.sync_target import SyncTarget
from service.settings import Settings

KEYS_ENV = "TANDEM_TARGET_CREDENTIAL_KEYS"
SEAL_VERSION = 1


class CredentialError(Exception):
    """A target's token cannot be sealed or opened; the message says what an operator or admin should do."""


def new_key() -> str:
    """A fresh key for TANDEM_TARGET_CREDENTIAL_KEYS."""
    return Fernet.generate_key().decode()


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _sealer(settings: Settings) -> MultiFernet:
    keys = list(settings.target_credential_keys)
    if not keys:
        if settings.environment == "production":
            raise CredentialError(
                f"{KEYS_ENV} is not set, so target tokens cannot be sealed: set it to a JSON list of keys "
                "(`tandem keys credential-key` prints one)"
            )
        # Development and test only: a key derived from the (non-production) dev secret, so a fresh checkout works.
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tandem target credentials").derive(
            settings.dev_token_secret.encode()
        )
        keys = [base64.urlsafe_b64encode(derived).decode()]
    try:
        # Oldest first in the variable, like TANDEM_SMART_PRIVATE_KEYS; the newest seals, every key opens.
        return MultiFernet([Fernet(key) for key in reversed(keys)])
    except (ValueError, TypeError) as error:
        raise CredentialError(f"{KEYS_ENV} holds a value that is not a Fernet key: {type(error).__name__}") from None


def seal(settings: Settings, *, tenant_id: str, target_id: str, base_url: str, token: str) -> str:
    claims = {
        "v": SEAL_VERSION,
        "tenant": tenant_id,
        "target": target_id,
        "origin": origin_of(base_url),
        "token": token,
    }
    return _sealer(settings).encrypt(json.dumps(claims).encode()).decode()


def open_token(settings: Settings, sealed: str | None, *, tenant_id: str, target_id: str, base_url: str) -> str:
    """The token, if it was written for exactly this target at this origin."""
    if not sealed:
        raise CredentialError(
            f"no token has been written for this target: an admin sends it with PUT /api/v1/sync/targets/{target_id}"
            "/credential"
        )
    claims = _open(settings, sealed)
    if claims.get("tenant") != tenant_id or claims.get("target") != target_id:
        raise CredentialError("the stored token was not written for this target: write the target's token again")
    if claims.get("origin") != origin_of(base_url):
        raise CredentialError(
            f"the token was written for {claims.get('origin')}, but the target now points at {origin_of(base_url)}: "
            "write the token again for the new address"
        )
    return str(claims["token"])


def reseal(settings: Settings, sealed: str) -> str:
    """The same token sealed with the newest key (after a key rotation)."""
    try:
        return _sealer(settings).rotate(sealed.encode()).decode()
    except InvalidToken:
        raise CredentialError(f"the stored token cannot be opened with any key in {KEYS_ENV}") from None


def _open(settings: Settings, sealed: str) -> dict[str, object]:
    try:
        claims = json.loads(_sealer(settings).decrypt(sealed.encode()))
    except InvalidToken:
        raise CredentialError(
            f"the stored token cannot be opened with any key in {KEYS_ENV} (a key was removed too early?): "
            "write the target's token again"
        ) from None
    if not isinstance(claims, dict) or claims.get("v") != SEAL_VERSION:
        raise CredentialError("the stored token is in an unknown format: write the target's token again")
    return claims


def write_token(settings: Settings, target: SyncTarget, token: str | None) -> None:
    """Seal `token` onto the target (None removes it); the target's version moves, its representation changed."""
    if token is None:
        target.credential = target.credential_origin = None
    else:
        target.credential = seal(
            settings, tenant_id=target.tenant_id, target_id=target.id, base_url=target.base_url, token=token
        )
        target.credential_origin = origin_of(target.base_url)
    target.version += 1
    target.updated_at = now_utc()
