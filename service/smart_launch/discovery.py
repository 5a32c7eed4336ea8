"""The launching EHR's SMART configuration (SMART App Launch 2.x, conformance: `{iss}/.well-known/smart-configuration`).

Read at every launch (an EHR may move its endpoints), only for an `iss` that is registered. Tandem needs the
authorization and token endpoints and S256 PKCE; `issuer` and `jwks_uri` let it check the id_token's signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.settings import Settings
from service.smart_launch.ehr_http import checked, get_json
from service.smart_launch.refusals import LaunchRefused


@dataclass(frozen=True)
class SmartConfiguration:
    authorization_endpoint: str
    token_endpoint: str
    issuer: str | None
    jwks_uri: str | None


def discover(iss: str, settings: Settings) -> SmartConfiguration:
    document = get_json(f"{iss}/.well-known/smart-configuration", settings, "SMART configuration")
    authorize, token = document.get("authorization_endpoint"), document.get("token_endpoint")
    if not isinstance(authorize, str) or not isinstance(token, str):
        raise LaunchRefused("The EHR's SMART configuration names no authorization_endpoint and token_endpoint.")
    methods = document.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        raise LaunchRefused("The EHR's SMART configuration does not offer PKCE with S256, which Tandem requires.")
    issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
    return SmartConfiguration(
        authorization_endpoint=checked(authorize, settings, "authorization endpoint"),
        token_endpoint=checked(token, settings, "token endpoint"),
        issuer=issuer if isinstance(issuer, str) else None,
        jwks_uri=checked(jwks_uri, settings, "JWKS") if isinstance(jwks_uri, str) else None,
    )
