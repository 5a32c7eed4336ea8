"""SMART discovery: the document a SMART client reads, before it has a token, to learn where to get one.

Tandem is a resource server: tokens come from the hospital's authorization server (settings
smart_token_endpoint / smart_authorization_endpoint; their issuers' keys in trusted_issuers). The fields are SMART
App Launch 2.0's well-known configuration (https://hl7.org/fhir/smart-app-launch/conformance.html#metadata):
token_endpoint, grant_types_supported, capabilities and code_challenge_methods_supported are required.
"""

from __future__ import annotations

from typing import Any

from service.settings import Settings

# What the facade honours in a token (service/auth/scopes.py): SMART v2 scopes for users and systems, and backend
# services' signed client assertions at the authorization server. Patient-context apps are not served.
CAPABILITIES = ("permission-v2", "permission-user", "client-confidential-asymmetric")
SCOPES = ("system/*.rs", "system/*.cruds", "user/*.rs", "user/*.cruds")


def smart_configuration(settings: Settings) -> dict[str, Any] | None:
    """The well-known document, or None when no authorization server is configured."""
    if settings.smart_token_endpoint is None:
        return None
    grants = ["client_credentials"]
    document: dict[str, Any] = {"token_endpoint": settings.smart_token_endpoint}
    if settings.smart_authorization_endpoint is not None:
        document["authorization_endpoint"] = settings.smart_authorization_endpoint
        grants.insert(0, "authorization_code")
        document["response_types_supported"] = ["code"]
    return {
        **document,
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": list(SCOPES),
        "capabilities": list(CAPABILITIES),
        "code_challenge_methods_supported": ["S256"],
    }
