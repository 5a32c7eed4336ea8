"""EHR targets: where a tenant's records go and come from, how we authenticate, and per-target limits.

Secrets are never returned: a static bearer token is written once per target (PUT .../credential) and kept
sealed (service/sync/credentials.py); SMART Backend Services sign with our own keys (/.well-known/jwks.json).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator
from sqlmodel import Session

import fhir_mappings as fm
from service.audit_trail import RequestContext
from service.caseload.protocols import find_protocol
from service.errors import invalid
from service.instruments import Coding
from service.records.base import ApiModel, RecordMeta, SourceIdentifier, Text
from service.records.sync_target import SyncTarget
from service.sync.url_safety import check_target_url

PushKind = Literal[
    "patients",
    "enrollments",
    "ketamine-administrations",
    "cbt-sessions",
    "questionnaire-responses",
    "appointments",
    "urgent-findings",
    "progress-notes",
]
PullKind = Literal[
    "patients",
    "medication-administrations",
    "questionnaire-responses",
    "observations",
    "encounters",
    "referrals",
    "appointments",
    "vital-signs",
]
# A bearer token goes into an Authorization header: visible ASCII only, so it cannot smuggle a header line.
BearerToken = Annotated[str, StringConstraints(min_length=8, max_length=8192, pattern=r"^[\x21-\x7e]+$")]


class NoAuth(ApiModel):
    kind: Literal["none"] = "none"


class BearerAuth(ApiModel):
    """A static bearer token; the token itself is written with PUT /api/v1/sync/targets/{id}/credential."""

    kind: Literal["bearer"]

    @model_validator(mode="before")
    @classmethod
    def _token_is_written_apart(cls, data: Any) -> Any:
        if isinstance(data, dict) and ({"token_env", "token"} & data.keys()):
            # token_env once named any environment variable, the service's own secrets included (security.md §6).
            raise ValueError(
                "a target's token is not part of its settings: create the target, then send the token once with "
                "PUT /api/v1/sync/targets/{id}/credential (it is stored sealed and never shown again)"
            )
        return data


class SmartBackendAuth(ApiModel):
    """SMART Backend Services: client_credentials with a private_key_jwt assertion signed by our key."""

    kind: Literal["smart-backend"]
    client_id: Text
    token_url: Text
    key_id: Text = Field(description="kid of our signing key (published at /.well-known/jwks.json)")
    algorithm: Literal["RS384", "ES384"] = "RS384"
    scope: Text = "system/*.rs system/*.cu"


TargetAuth = Annotated[NoAuth | BearerAuth | SmartBackendAuth, Field(discriminator="kind")]


class ReferralRuleFields(ApiModel):
    """How a referral pulled from this EHR chooses the patient's protocol when it does not name one itself
    (fhir_mappings/referral.py): by the site's order code, else the programme's default."""

    protocol_by_code: dict[Text, Text] = Field(
        default_factory=dict,
        description="The site's order or referral code (system|code) -> the protocol id it enrols in",
    )
    default_protocol: Text | None = Field(
        default=None,
        description="The protocol of a referral coded only as a referral to the programme (SNOMED CT 306343005)",
    )

    @model_validator(mode="after")
    def _codes_have_a_system(self) -> ReferralRuleFields:
        for key in self.protocol_by_code:
            system, _, code = key.rpartition("|")
            if not system or not code:
                raise ValueError(f"protocol_by_code key {key!r} must be system|code, e.g. urn:oid:1.2.840.114350|4567")
        return self


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
        description="The site's own codings for a standard one, both ways: keyed by the standard system|code "
        "(LOINC, SNOMED CT, CPT), each entry lists the site's codings (e.g. an Epic flowsheet row id for "
        "http://loinc.org|44261-6). Outbound Observations get the site's codings added; inbound, any resource's "
        "CodeableConcept holding a site coding gets the standard one added before it is read. Systems must be "
        "URIs, codes non-empty.",
    )
    referrals: ReferralRuleFields = Field(
        default_factory=ReferralRuleFields,
        description="How a pulled referral (ServiceRequest) that does not name its protocol chooses one",
    )

    @field_validator("code_map")
    @classmethod
    def _usable_both_ways(cls, code_map: dict[str, list[Coding]]) -> dict[str, list[Coding]]:
        problems = fm.code_map_problems({key: [c.model_dump() for c in codings] for key, codings in code_map.items()})
        if problems:
            raise ValueError("; ".join(problems))
        return code_map


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
    token_written_for: str | None = Field(
        default=None,
        description="For bearer auth: the origin the target's token was written for (null: none written). "
        "The token itself is never shown; it is sent only while base_url keeps this origin.",
    )


class CredentialWrite(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"token": "eyJhbGciOiJSUzM4NCJ9.e30.c2ln"}]})

    token: BearerToken = Field(description="The bearer token this EHR issued to Tandem; write-only")


def public_columns(columns: dict[str, Any]) -> dict[str, Any]:
    """The stored columns in the API shape: the sealed token never leaves the table."""
    shown = {k: v for k, v in columns.items() if k not in {"credential", "credential_origin"}}
    shown["token_written_for"] = columns.get("credential_origin")
    return shown


def referral_rule(target: SyncTarget) -> fm.ReferralRule:
    """The target's referral setting as the referral intake reads it."""
    rule = ReferralRuleFields.model_validate(target.referrals or {})
    return fm.ReferralRule(protocol_by_code=dict(rule.protocol_by_code), default_protocol=rule.default_protocol)


def checked_target(session: Session, ctx: RequestContext, columns: dict[str, Any]) -> dict[str, Any]:
    """Safe URLs, and referral rules naming only protocols the tenant has (a typo would refuse every referral)."""
    columns = checked_urls(session, ctx, columns)
    rule = columns.get("referrals") or {}
    named = [("referrals.default_protocol", rule.get("default_protocol"))]
    named += [(f"referrals.protocol_by_code[{k!r}]", v) for k, v in (rule.get("protocol_by_code") or {}).items()]
    for where, protocol_id in named:
        if protocol_id is not None and find_protocol(session, ctx.tenant_id, protocol_id, None) is None:
            raise invalid(where, f"no protocol {protocol_id!r}; GET /api/v1/protocols lists the available ones")
    return columns


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
