"""The coordinator pages' session: a signed cookie (stdlib HMAC-SHA256), and the CSRF token derived from it.

The cookie holds who is signed in (subject, tenant, role, and the token's SMART scopes, to which the pages hold
the session as the API holds the token), a random session id and an expiry; never patient data.
It is stateless: signing out replaces the cookie in the browser, but a copied cookie stays valid until it expires
(at most WEB_SESSION_HOURS, and never beyond the bearer token it was made from).

CSRF: every form carries HMAC(key, "csrf:" + session id) in a hidden field. A cross-site page can neither read
our cookie nor compute the token, and a new session id is issued at every sign-in, so a token from before
sign-in (or another session) is refused.

Key material: the settings have no secret of their own for the web session, so the key is derived from
`dev_token_secret` (which the settings refuse to leave as the placeholder outside development) with a
purpose label, so the session key is never the token-signing key itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from service.auth.principal import ROLES, Principal, Role
from service.clock import now_utc
from service.settings import Settings

COOKIE_NAME = "tandem_session"
WEB_SESSION_HOURS = 8
ANONYMOUS_SESSION_MINUTES = 60
MAX_COOKIE_CHARS = 2048
MAX_SCOPE_CHARS = 1024  # what of a token's scope claim a cookie can carry under MAX_COOKIE_CHARS
_KEY_PURPOSE = b"tandem-web-session-v1"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class WebSession:
    """A browser's session: anonymous until someone signs in (then subject, tenant and role are all set)."""

    session_id: str
    expires_at: datetime
    subject: str | None = None
    tenant_id: str | None = None
    role: Role | None = None
    scopes: frozenset[str] | None = None  # the sign-in token's scope claim; None: it had none (role-only)
    # A session started by a SMART launch from an EHR (service/smart_launch): the EHR origins that may frame the
    # pages (frame-ancestors) and the launch it came from. Empty for every other session: never framed.
    frame_origins: tuple[str, ...] = ()
    launch_id: str | None = None

    @property
    def embedded(self) -> bool:
        return bool(self.frame_origins)

    @property
    def signed_in(self) -> bool:
        return self.subject is not None and self.tenant_id is not None and self.role is not None

    def principal(self) -> Principal:
        assert self.subject is not None and self.tenant_id is not None and self.role is not None
        return Principal(subject=self.subject, tenant_id=self.tenant_id, role=self.role, scopes=self.scopes)


def session_key(settings: Settings) -> bytes:
    return hmac.new(settings.dev_token_secret.encode(), _KEY_PURPOSE, hashlib.sha256).digest()


def anonymous_session() -> WebSession:
    return WebSession(
        session_id=secrets.token_urlsafe(24), expires_at=now_utc() + timedelta(minutes=ANONYMOUS_SESSION_MINUTES)
    )


def signed_in_session(
    principal: Principal,
    *,
    not_after: datetime | None = None,
    frame_origins: tuple[str, ...] = (),
    launch_id: str | None = None,
) -> WebSession:
    """A fresh session id for every sign-in (no session fixation), expiring with the shift or the token."""
    expires = now_utc() + timedelta(hours=WEB_SESSION_HOURS)
    if not_after is not None:
        expires = min(expires, not_after)
    return WebSession(
        session_id=secrets.token_urlsafe(24),
        expires_at=expires,
        subject=principal.subject,
        tenant_id=principal.tenant_id,
        role=principal.role,
        scopes=principal.scopes,
        frame_origins=frame_origins,
        launch_id=launch_id,
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_session(session: WebSession, settings: Settings) -> str:
    payload = {
        "v": _FORMAT_VERSION,
        "sid": session.session_id,
        "exp": int(session.expires_at.timestamp()),
        "sub": session.subject,
        "ten": session.tenant_id,
        "role": session.role,
        "scp": None if session.scopes is None else " ".join(sorted(session.scopes)),
    }
    if session.embedded:
        payload |= {"fa": " ".join(session.frame_origins), "lid": session.launch_id}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = _b64(hmac.new(session_key(settings), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def decode_session(cookie: str | None, settings: Settings) -> WebSession | None:
    """The session in a cookie we signed and that has not expired; None for anything else."""
    if not cookie or len(cookie) > MAX_COOKIE_CHARS or cookie.count(".") != 1:
        return None
    body, signature = cookie.split(".")
    expected = _b64(hmac.new(session_key(settings), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        payload: dict[str, Any] = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("v") != _FORMAT_VERSION:
        return None
    session_id, expires, role = payload.get("sid"), payload.get("exp"), payload.get("role")
    if not isinstance(session_id, str) or not isinstance(expires, int):
        return None
    expires_at = datetime.fromtimestamp(expires, tz=now_utc().tzinfo)
    if expires_at <= now_utc():
        return None
    subject, tenant_id = payload.get("sub"), payload.get("ten")
    if role is not None and role not in ROLES:
        return None
    scopes = payload.get("scp")
    if scopes is not None and not isinstance(scopes, str):
        return None
    frame_origins, launch_id = payload.get("fa", ""), payload.get("lid")
    if not isinstance(frame_origins, str) or (launch_id is not None and not isinstance(launch_id, str)):
        return None
    return WebSession(
        session_id=session_id,
        expires_at=expires_at,
        subject=subject if isinstance(subject, str) else None,
        tenant_id=tenant_id if isinstance(tenant_id, str) else None,
        role=cast(Role, role) if role is not None else None,
        scopes=None if scopes is None else frozenset(scopes.split()),
        frame_origins=tuple(frame_origins.split()),
        launch_id=launch_id,
    )


def csrf_token(session: WebSession, settings: Settings) -> str:
    return _b64(hmac.new(session_key(settings), b"csrf:" + session.session_id.encode(), hashlib.sha256).digest())


def csrf_valid(session: WebSession | None, given: str | None, settings: Settings) -> bool:
    if session is None or not given:
        return False
    return hmac.compare_digest(given.encode(), csrf_token(session, settings).encode())
