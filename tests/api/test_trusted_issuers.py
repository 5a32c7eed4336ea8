"""Tokens from an external identity provider are checked against the keys it publishes (JWKS)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from service.app import create_app
from service.settings import Settings
from tests.builders import API
from tests.conftest import make_settings

ISSUER = "https://idp.hospital.test/realms/ketamine-clinic"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def published_key() -> rsa.RSAPrivateKey:
    return _key()


@pytest.fixture(scope="module")
def jwks_url(published_key: rsa.RSAPrivateKey) -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(published_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "key-1", "use": "sig", "alg": "RS384"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()


@pytest.fixture
def idp_client(settings: Settings, jwks_url: str) -> Iterator[TestClient]:
    app = create_app(make_settings(settings.database_url, trusted_issuers={ISSUER: jwks_url}))
    with TestClient(app) as client:
        yield client


def _token(key: rsa.RSAPrivateKey, tenant: str, kid: str = "key-1", **claims: Any) -> dict[str, str]:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": "tandem",
        "sub": "svc-epic-bridge",
        "tenant": tenant,
        "role": "ehr-system",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    token = jwt.encode(payload, key, algorithm="RS384", headers={"kid": kid})
    return {"Authorization": f"Bearer {token}"}


def test_a_token_signed_by_the_published_key_is_accepted(
    idp_client: TestClient, published_key: rsa.RSAPrivateKey, tenant: str
) -> None:
    response = idp_client.get(f"{API}/patients", headers=_token(published_key, tenant))
    assert response.status_code == 200, response.text


def test_a_token_signed_by_an_unknown_key_is_refused(idp_client: TestClient, tenant: str) -> None:
    impostor = _key()
    same_kid = idp_client.get(f"{API}/patients", headers=_token(impostor, tenant))
    other_kid = idp_client.get(f"{API}/patients", headers=_token(impostor, tenant, kid="key-9"))
    assert same_kid.status_code == other_kid.status_code == 401
    assert "issuer does not publish" in other_kid.json()["detail"]


def test_an_external_token_still_needs_the_audience(
    idp_client: TestClient, published_key: rsa.RSAPrivateKey, tenant: str
) -> None:
    response = idp_client.get(f"{API}/patients", headers=_token(published_key, tenant, aud="another-api"))
    assert response.status_code == 401
