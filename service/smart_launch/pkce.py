"""The launch's secrets: `state` (binds the callback to the launch) and the PKCE verifier (RFC 7636, S256).

Both come from `secrets` (256 bits). The state is kept only as its SHA-256, so a read of the table cannot
complete someone's launch; the verifier never leaves the server except to the EHR's token endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_state() -> str:
    return secrets.token_urlsafe(32)


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def new_code_verifier() -> str:
    """43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1): 43 here, from 32 random bytes."""
    return secrets.token_urlsafe(32)


def code_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding (RFC 7636 §4.2, S256)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
