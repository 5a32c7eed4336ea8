"""Registering a tenant's EHR as a SMART authorization server (`tandem smart register`), and finding it by `iss`.

The client secret of a confidential client is never stored: the registration names an environment variable, and
only names of the form TANDEM_SMART_CLIENT_SECRET_<NAME> are accepted, so a registration can never point at one
of the service's own secrets (docs/security.md §6.1: that is how a target once leaked the dev token secret).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from service.clock import now_utc
from service.errors import invalid
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.smart_launch.roles import parse_role_rules
from service.smart_launch.tables import SmartRegistration
from service.sync.url_safety import check_target_url

SECRET_ENV = re.compile(r"^TANDEM_SMART_CLIENT_SECRET_[A-Z0-9_]{1,64}$")
# What Tandem asks the EHR for: the launch context, who the user is, and reading the patient (to match by MRN).
DEFAULT_SCOPE = "launch openid fhirUser patient/Patient.rs"
MAX_FRAME_ORIGINS = 4


@dataclass(frozen=True)
class RegistrationRequest:
    tenant_id: str
    iss: str
    client_id: str
    redirect_uri: str
    roles: Sequence[str]  # "Practitioner=clinician", "scope:user/Patient.cruds=clinician"
    frame_origins: Sequence[str] = ()
    client_secret_env: str | None = None
    scope: str = DEFAULT_SCOPE
    target: str | None = None  # a sync target of the tenant (id or name) at the same FHIR server


def normalise_iss(iss: str) -> str:
    return iss.strip().rstrip("/")


def register_ehr(session: Session, settings: Settings, request: RegistrationRequest) -> SmartRegistration:
    """Create or replace the registration for `iss` (one tenant per iss); refusals name the option."""
    iss = _checked_url(request.iss, "iss", settings)
    redirect_uri = request.redirect_uri.strip()
    if urlsplit(redirect_uri).scheme != "https" and settings.environment == "production":
        raise invalid("redirect_uri", "must be https (the EHR sends the authorization code to it)")
    if not redirect_uri.endswith("/smart/callback"):
        raise invalid("redirect_uri", "must be Tandem's callback: https://<tandem host>/smart/callback")
    if not request.client_id.strip():
        raise invalid("client_id", "the client id the EHR issued to Tandem is empty")
    if request.client_secret_env is not None and not SECRET_ENV.match(request.client_secret_env):
        raise invalid(
            "client_secret_env",
            "must name a variable TANDEM_SMART_CLIENT_SECRET_<NAME> (capitals, digits, _); the secret itself is "
            "set in that variable, never stored",
        )
    scopes = request.scope.split()
    if "launch" not in scopes and "launch/patient" not in scopes:
        raise invalid("scope", "must ask for `launch` (EHR launch) or `launch/patient` (standalone)")
    if not {"openid", "fhirUser"} <= set(scopes):
        raise invalid("scope", "must ask for `openid fhirUser`: Tandem signs in the EHR's user by fhirUser")
    rules = parse_role_rules(request.roles)
    existing = session.exec(select(SmartRegistration).where(col(SmartRegistration.iss) == iss)).first()
    if existing is not None and existing.tenant_id != request.tenant_id:
        raise invalid("iss", "is registered for another hospital: one EHR FHIR base belongs to one tenant")
    registration = existing or SmartRegistration(
        tenant_id=request.tenant_id, iss=iss, client_id="", redirect_uri="", scope=""
    )
    registration.client_id = request.client_id.strip()
    registration.client_secret_env = request.client_secret_env
    registration.redirect_uri = redirect_uri
    registration.scope = " ".join(scopes)
    registration.frame_origins = frame_origins(request.frame_origins)
    registration.role_rules = rules
    registration.target_id = _target_id(session, request.tenant_id, request.target, iss)
    registration.updated_at = now_utc()
    session.add(registration)
    session.flush()
    return registration


def registration_for_iss(session: Session, iss: str) -> SmartRegistration | None:
    return session.exec(select(SmartRegistration).where(col(SmartRegistration.iss) == normalise_iss(iss))).first()


def registrations_of(session: Session, tenant_id: str) -> list[SmartRegistration]:
    return list(session.exec(select(SmartRegistration).where(col(SmartRegistration.tenant_id) == tenant_id)).all())


def frame_origins(values: Iterable[str]) -> list[str]:
    """Origins (scheme://host[:port]) the EHR shows Tandem's page inside; nothing else can be framed."""
    origins: list[str] = []
    for value in values:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/"):
            raise invalid("frame_origin", f"{value!r} is not an origin like https://ehr.example.org")
        if parts.query or parts.fragment or parts.username:
            raise invalid("frame_origin", f"{value!r} is not an origin like https://ehr.example.org")
        origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
    if len(origins) > MAX_FRAME_ORIGINS:
        raise invalid("frame_origin", f"at most {MAX_FRAME_ORIGINS} origins (the session cookie carries them)")
    return sorted(set(origins))


def _checked_url(url: str, field: str, settings: Settings) -> str:
    return check_target_url(
        normalise_iss(url),
        field=field,
        allowed_hosts=settings.sync_allowed_hosts,
        require_https=settings.sync_require_https,
    )


def _target_id(session: Session, tenant_id: str, target: str | None, iss: str) -> str | None:
    """The named sync target, or the tenant's one target at this FHIR base; None if there is none."""
    targets = session.exec(select(SyncTarget).where(col(SyncTarget.tenant_id) == tenant_id)).all()
    if target is not None:
        named = [t for t in targets if target in (t.id, t.name)]
        if not named:
            raise invalid("target", f"no EHR sync target {target!r} at this hospital")
        return named[0].id
    same = [t for t in targets if t.base_url.rstrip("/") == iss]
    return same[0].id if len(same) == 1 else None
