"""Who the EHR signed in: the id_token's `fhirUser` (SMART App Launch 2.x, scopes `openid fhirUser`).

The id_token comes straight from the EHR's token endpoint (OIDC Core §3.1.3.7: TLS then vouches for its issuer);
its signature is still checked against the EHR's JWKS when its SMART configuration names one, and its audience
(our client id), issuer and expiry always. An older SMART 1.0 EHR names the user in `profile` instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import jwt

from service.settings import Settings
from service.smart_launch.ehr_http import get_json
from service.smart_launch.refusals import LaunchRefused

ALGORITHMS = ["RS256", "RS384", "ES256", "ES384"]


def fhir_user_of(
    id_token: object, *, client_id: str, issuer: str | None, jwks_uri: str | None, iss: str, settings: Settings
) -> str:
    if not isinstance(id_token, str) or not id_token:
        raise LaunchRefused("The EHR sent no id_token: Tandem's registration there must grant `openid fhirUser`.")
    claims = _verified(id_token, client_id=client_id, issuer=issuer, jwks_uri=jwks_uri, settings=settings)
    user = claims.get("fhirUser") or claims.get("profile")
    if not isinstance(user, str) or "/" not in user or len(user) > 255:
        raise LaunchRefused("The EHR did not say who the user is (no fhirUser in the id_token).")
    return user if "://" in user else urljoin(f"{iss}/", user)  # a relative fhirUser is relative to iss


def _verified(
    token: str, *, client_id: str, issuer: str | None, jwks_uri: str | None, settings: Settings
) -> dict[str, Any]:
    # Every check named: PyJWT turns the others off with the signature's unless they are asked for.
    options: Any = {
        "require": ["exp", "aud", "iss"],
        "verify_signature": jwks_uri is not None,
        "verify_exp": True,
        "verify_aud": True,
        "verify_iss": issuer is not None,
    }
    try:
        key = _key_for(token, jwks_uri, settings) if jwks_uri is not None else ""
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=ALGORITHMS, audience=client_id, issuer=issuer, options=options
        )
    except jwt.PyJWTError as refused:
        raise LaunchRefused(f"The EHR's id_token was refused: {refused}.") from None
    return claims


def _key_for(token: str, jwks_uri: str, settings: Settings) -> Any:
    kid = jwt.get_unverified_header(token).get("kid")
    key_set = jwt.PyJWKSet.from_dict(get_json(jwks_uri, settings, "JWKS"))
    for key in key_set.keys:
        if kid is None or key.key_id == kid:
            return key.key
    raise jwt.InvalidKeyError(f"no key {kid!r} in the EHR's JWKS")
