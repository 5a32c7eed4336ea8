"""EHR targets: where a tenant's records go and come from, how we authenticate, and per-target limits.

Secrets are never stored or returned: a static bearer token is named by the environment variable that holds it,
and SMART Backend Services sign with our own keys (served at /.well-known/jwks.json).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field as SqlField
from sqlmodel import Session

from service.audit_trail import RequestContext
from service.instruments import Coding
from service.records.base import ApiModel, RecordMeta, SourceIdentifier, TenantRecord, Text
from service.sync.url_safety import check_target_url

PushKind = Literal["patients", "enrollments", "ketamine-administrations", "cbt-sessions", "questionnaire-responses"]
PullKind = Literal["patients", "questionnaire-responses", "observations", "encounters"]
EnvironmentVariable = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{2,63}$")]


class SyncTarget(TenantRecord, table=True):
    __tablename__ = "sync_targets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "name"),
    )

    name: str = SqlField(max_length=255)
    base_url: str = SqlField(max_length=1024)
    auth: dict[str, Any] = SqlField(default_factory=dict, sa_type=JSON)
    push: list[str] = SqlField(default_factory=list, sa_type=JSON)
    pull: list[str] = SqlField(default_factory=list, sa_type=JSON)
    mrn_system: str | None = SqlField(default=None, max_length=255)
    requests_per_second: float = 5.0
    batch_size: int = 20
    enabled: bool = True
    code_map: dict[str, Any] = SqlField(default_factory=dict, sa_type=JSON)


class NoAuth(ApiModel):
    kind: Literal["none"] = "none"


class BearerAuth(ApiModel):
    kind: Literal["bearer"]
    token_env: EnvironmentVariable = Field(description="Name of the environment variable holding the token")


class SmartBackendAuth(ApiModel):
    """SMART Backend Services: client_credentials with a private_key_jwt assertion signed by our key."""

    kind: Literal["smart-backend"]
    client_id: Text
    token_url: Text
    key_id: Text = Field(description="kid of our signing key (published at /.well-known/jwks.json)")
    algorithm: Literal["RS384", "ES384"] = "RS384"
    scope: Text = "system/*.rs system/*.cu"


TargetAuth = Annotated[NoAuth | BearerAuth | SmartBackendAuth, Field(discriminator="kind")]


class SyncTargetFields(ApiModel):
    """What an administrator configures; the service owns id, version and timestamps."""

    name: Text
    base_url: Text = Field(description="FHIR base URL, e.g. https://fhir.hospital.example/api/FHIR/R4")
    auth: TargetAuth = Field(default_factory=NoAuth)
    push: list[PushKind] = Field(default_factory=list, description="Record kinds sent to this EHR")
    pull: list[PullKind] = Field(default_factory=list, description="What is pulled from this EHR")
    mrn_system: Text | None = Field(default=None, description="Identifier system of the hospital's MRNs")
    requests_per_second: Annotated[float, Field(gt=0, le=100)] = 5.0
    batch_size: Annotated[int, Field(ge=1, le=500)] = 20
    enabled: bool = True
    code_map: dict[Text, list[Coding]] = Field(
        default_factory=dict,
        description="Extra codings a site requires on outbound Observations, keyed by our system|code "
        "(e.g. Epic flowsheet row ids for http://loinc.org|8480-6)",
    )


class SyncTargetCreate(SyncTargetFields):
    source: SourceIdentifier | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Epic production",
                    "base_url": "https://fhir.hospital.example/api/FHIR/R4",
                    "auth": {
                        "kind": "smart-backend",
                        "client_id": "b5f1c2e0-tandem",
                        "token_url": "https://fhir.hospital.example/oauth2/token",
                        "key_id": "tandem-2026-11",
                    },
                    "push": ["ketamine-administrations", "questionnaire-responses", "cbt-sessions"],
                    "pull": ["patients", "questionnaire-responses"],
                    "mrn_system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14",
                    "code_map": {"http://loinc.org|8480-6": [{"system": "urn:oid:1.2.840.114350", "code": "5"}]},
                }
            ]
        }
    )


class SyncTargetPublic(RecordMeta, SyncTargetFields):
    pass


def checked_urls(session: Session, ctx: RequestContext, columns: dict[str, Any]) -> dict[str, Any]:
    """Base and token URLs must be public https addresses unless the operator allowed the host."""
    settings = ctx.settings

    def check(url: str, field: str) -> str:
        return check_target_url(
            url, field=field, allowed_hosts=settings.sync_allowed_hosts, require_https=settings.sync_require_https
        )

    columns = {**columns, "base_url": check(columns["base_url"], "base_url")}
    token_url = columns["auth"].get("token_url")
    if token_url is not None:
        check(token_url, "auth.token_url")
    return columns
