"""Configuration, from the environment only (prefix TANDEM_).

Secrets never come from files in the repo: outside development a placeholder secret stops the service at start.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'tandem.db'}"
MIN_SECRET_CHARS = 32


def software_version() -> str:
    """The installed package's version (pyproject.toml): what `tandem --version`, the OpenAPI documents and the
    CapabilityStatement say."""
    try:
        return version("tandem")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


# Quiet hours "HH:MM-HH:MM" (service/messaging/quiet_hours.py reads them).
QUIET_HOURS = re.compile(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d")
REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://")
PUBLIC_BASE_DEFAULT = "http://127.0.0.1:8000"  # `make run`'s address; refused in production
DEV_SECRET_PLACEHOLDER = "dev-only-not-a-secret-change-me-before-use"  # noqa: S105 - a known placeholder, refused in production


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # DATABASE_URL without prefix is what container platforms set; both spellings are accepted.
    database_url: str = Field(
        default=DEFAULT_SQLITE_URL, validation_alias=AliasChoices("TANDEM_DATABASE_URL", "DATABASE_URL")
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)

    # Our canonical base: FHIR identifiers and canonical URLs are built from it.
    canonical_base: str = "https://tandem.example.org/fhir"
    # The CDS cards' `smart` link (unset: Tandem's own /smart/launch when it serves one, else the patient page only).
    cds_smart_launch_url: str | None = None

    # Tokens: audience we accept, the development issuer (HS256 secret), and external issuers (JWKS).
    token_audience: str = "tandem"  # noqa: S105 - an audience name, not a secret
    dev_issuer: str = "https://tandem.local/dev-issuer"
    dev_token_secret: str = DEV_SECRET_PLACEHOLDER
    # JSON object {"issuer": "jwks url", ...}; external identity providers sign with RS/ES keys.
    trusted_issuers: dict[str, str] = Field(default_factory=dict)
    token_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # SMART discovery (GET /fhir/.well-known/smart-configuration, public): the hospital authorization server that
    # issues the tokens we accept. Unset, discovery answers 404 and says which settings to set.
    smart_token_endpoint: str | None = None
    smart_authorization_endpoint: str | None = None

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_bundle_entries: int = Field(default=1000, ge=1, le=100_000)
    # What one batch/transaction may ask for: the resources its entries can return (a search counts its page
    # size), and the size of its response (checked while it is built). Over either: 413.
    max_bundle_resources: int = Field(default=2000, ge=1, le=1_000_000)
    max_bundle_response_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_page_size: int = Field(default=200, ge=1, le=1000)
    default_page_size: int = Field(default=50, ge=1, le=1000)

    # /docs and /openapi.json: served unless turned off; off by default in production.
    docs_enabled: bool | None = None
    # Requests per minute per client (bearer token, or address without one); 0 turns the limit off.
    rate_limit_per_minute: int = Field(default=1200, ge=0, le=1_000_000)
    # Where the limit counts: "memory://" in each process (N replicas: up to N times the rate), or a Redis
    # ("redis://host:6379/0", "rediss://…") that every API replica shares. Keys start with the prefix.
    rate_limit_storage: str = "memory://"
    rate_limit_key_prefix: str = Field(default="tandem", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    # The bearer token Prometheus sends to GET /metrics; unset (the default), /metrics is not served (404).
    metrics_token: str | None = None
    # Browser origins allowed to call the API; empty (the default) sends no CORS headers at all.
    cors_allowed_origins: list[str] = Field(default_factory=list)

    # Break-the-glass access to a restricted patient: default and longest duration a clinician may ask for.
    break_glass_default_minutes: int = Field(default=60, ge=1, le=1440)
    break_glass_max_minutes: int = Field(default=240, ge=1, le=1440)

    # Seconds between in-process sweeps that move patients whose due dates passed; 0 leaves it to
    # `tandem status sweep` (cron) — run one or the other.
    status_sweep_seconds: int = Field(default=0, ge=0, le=86_400)

    # EHR targets: hosts on private networks (a hospital's VPN) must be named here to be reachable at all.
    sync_allowed_hosts: list[str] = Field(default_factory=list)
    sync_require_https: bool = True
    sync_max_attempts: int = Field(default=8, ge=1, le=100)
    # A delivery worker writes its heartbeat this often; one whose last beat is older than dead_after reads as
    # dead (the sync page, `tandem sync worker-ready`).
    sync_worker_beat_seconds: int = Field(default=10, ge=1, le=3600)
    sync_worker_dead_after_seconds: int = Field(default=60, ge=2, le=86_400)
    # Development: the API process also runs one delivery worker (a thread), so a replayed message is sent
    # without starting `tandem sync worker`; `make run` turns it on. Off unless set.
    dev_worker: bool = False
    # Our SMART Backend Services signing keys: a JSON object of kid -> PEM, oldest first; all are published at
    # /.well-known/jwks.json (so an EHR can verify during a rotation) and the newest signs.
    smart_private_keys: dict[str, str] = Field(default_factory=dict)
    # Fernet keys that seal targets' bearer tokens at rest: a JSON list, oldest first; the newest seals, all open
    # (`tandem keys credential-key` prints one; `tandem keys reseal` moves stored tokens to the newest).
    # Development and test derive one from the dev secret when unset; production must set it to store tokens.
    target_credential_keys: list[str] = Field(default_factory=list)
    # The address patients reach the service at: a self-report invitation's link is <this>/r/<token>
    # (service/self_report). The link's token is sealed for the delivery channels under the keys above.
    # EHRs reach it there too: the CDS Hooks URLs (a CDS JWT's `aud` is <this>/cds-services/<id>) and the cards'
    # patient page links are built from it.
    public_base_url: str = Field(default=PUBLIC_BASE_DEFAULT, max_length=512)

    # Messages to patients (invitations to a questionnaire and their reminder; service/messaging): e-mail over
    # SMTP and text messages through the hospital's SMS gateway (a webhook). Credentials from the environment
    # only. Unset host / URL: that channel is off, and a patient who can only be reached by it reads
    # "cannot be sent" on the sync page.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # none: plain SMTP (a relay on the same host only); starttls: upgrade on the submission port (587); tls:
    # implicit TLS from the first byte (465). Certificates are verified against the system's CAs (or the file
    # TANDEM_SMTP_CA_FILE names).
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    smtp_ca_file: str | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # The gateway's endpoint: POST JSON {"to": "+1…", "body": "…"}; checked like an EHR base URL (allowed hosts,
    # https) before every request. The secret is sent as a bearer token, or signs the body (HMAC-SHA256).
    sms_webhook_url: str | None = None
    sms_webhook_secret: str | None = None
    sms_webhook_auth: Literal["hmac", "bearer"] = "hmac"
    # A reminder goes this many hours before a link expires (0: none); none after submission or expiry.
    message_reminder_hours: int = Field(default=24, ge=0, le=24 * 30)
    # Quiet hours in the patient's time zone (else the hospital's): a message due then waits until they end.
    # "HH:MM-HH:MM"; per tenant as a JSON object {"tenant id": "22:00-07:00"}; "" turns them off.
    message_quiet_hours: str = "21:00-08:00"
    message_quiet_hours_by_tenant: dict[str, str] = Field(default_factory=dict)
    message_max_attempts: int = Field(default=8, ge=1, le=100)

    # Programme outcomes (issue #23): a count of fewer patients than this is suppressed ("< 11"), with whatever it
    # could be worked out from; CBT adherent = at least this share of the CBT sessions planned in the first 8 weeks
    # attended; the secret the CSV export's pseudonymous ids are keyed with (unset: derived from the development
    # secret outside production; production refuses the export).
    outcomes_min_cell: int = Field(default=11, ge=1, le=1000)
    outcomes_cbt_adherent_share: float = Field(default=0.75, gt=0, le=1)
    outcomes_pseudonym_key: str | None = Field(default=None, min_length=32)

    @property
    def docs_served(self) -> bool:
        return self.docs_enabled if self.docs_enabled is not None else self.environment != "production"

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def dev_issuer_enabled(self) -> bool:
        """The local signing key only exists outside production."""
        return self.environment != "production"

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> Settings:
        if self.environment != "development" and (
            self.dev_token_secret == DEV_SECRET_PLACEHOLDER or len(self.dev_token_secret) < MIN_SECRET_CHARS
        ):
            # The secret is public in our README: anywhere but a developer's machine it would let anyone mint
            # tokens (test) or signal a mis-set environment (production, where the dev issuer is off anyway).
            raise ValueError(
                f"TANDEM_DEV_TOKEN_SECRET must be a random value of at least {MIN_SECRET_CHARS} characters "
                "outside development (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if self.environment == "production" and not self.trusted_issuers:
            raise ValueError("production needs TANDEM_TRUSTED_ISSUERS: a JSON object of issuer -> JWKS URL")
        if not self.public_base_url.startswith(("https://", "http://")) or self.public_base_url.endswith("/"):
            raise ValueError("TANDEM_PUBLIC_BASE_URL must be an http(s) URL without a trailing slash")
        if self.environment == "production" and (
            not self.public_base_url.startswith("https://") or self.public_base_url == PUBLIC_BASE_DEFAULT
        ):
            # Patients' links and the EHRs' CDS and SMART URLs are built from it: the loopback default would send
            # every one of them nowhere, and plain http would carry a patient's single-use link in the clear.
            raise ValueError(
                "production needs TANDEM_PUBLIC_BASE_URL: the https address patients and EHRs reach Tandem at, "
                "e.g. https://tandem.hospital.example"
            )
        if self.rate_limit_storage != "memory://" and not self.rate_limit_storage.startswith(REDIS_SCHEMES):
            raise ValueError(
                "TANDEM_RATE_LIMIT_STORAGE must be memory:// or a Redis URL (redis://host:6379/0, rediss://…)"
            )
        if self.sync_worker_dead_after_seconds <= self.sync_worker_beat_seconds:
            raise ValueError(
                "TANDEM_SYNC_WORKER_DEAD_AFTER_SECONDS must exceed TANDEM_SYNC_WORKER_BEAT_SECONDS, or a live worker "
                "reads as dead between two beats"
            )
        if self.environment == "production" and self.smtp_tls == "none" and self.smtp_password:
            raise ValueError(
                "TANDEM_SMTP_TLS=none would send TANDEM_SMTP_PASSWORD unencrypted: use starttls or tls in production"
            )
        if self.sms_webhook_url and not self.sms_webhook_secret:
            raise ValueError("TANDEM_SMS_WEBHOOK_URL needs TANDEM_SMS_WEBHOOK_SECRET: the gateway must know it is us")
        for where, window in [("TANDEM_MESSAGE_QUIET_HOURS", self.message_quiet_hours)] + [
            (f"TANDEM_MESSAGE_QUIET_HOURS_BY_TENANT[{tenant}]", value)
            for tenant, value in self.message_quiet_hours_by_tenant.items()
        ]:
            if window and not QUIET_HOURS.fullmatch(window):
                raise ValueError(f"{where} must read HH:MM-HH:MM (e.g. 21:00-08:00), or be empty for none")
        if self.default_page_size > self.max_page_size:
            raise ValueError("TANDEM_DEFAULT_PAGE_SIZE must not exceed TANDEM_MAX_PAGE_SIZE")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
