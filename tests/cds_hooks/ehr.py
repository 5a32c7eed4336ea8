"""A CDS client (an EHR) written from the CDS Hooks 2.0 text alone, imports nothing of Tandem's CDS code.

§Trusting CDS Clients: every call carries `Authorization: Bearer <JWT>`, signed with the EHR's private key
(RS384/ES384 recommended), header `alg`, `kid`, `typ: JWT` (`jku` optional); payload `iss`, `aud` (the URL of
the endpoint called), `exp`, `iat`, `jti` (a nonce). The public key is published in a JWK Set. §Calling a CDS
Service: POST `{baseUrl}/cds-services/{id}` with `hook`, `hookInstance`, `context` (patient-view: `patientId`,
`userId`), optional `fhirServer`, `fhirAuthorization`, `prefetch` keyed as discovery asked.

The EHR's web side is a real loopback HTTP server: its JWKS, and a FHIR `Patient/{id}` read for the service to
call back with the `fhirAuthorization` token.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


@dataclass
class SigningKey:
    alg: str
    kid: str
    private: Any

    @classmethod
    def rsa(cls) -> SigningKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls("RS384", f"rsa-{uuid.uuid4().hex[:6]}", private)

    @classmethod
    def ec(cls) -> SigningKey:
        return cls("ES384", f"ec-{uuid.uuid4().hex[:6]}", ec.generate_private_key(ec.SECP384R1()))

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg.startswith("RS") else ECAlgorithm
        jwk: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}


@dataclass
class EhrWeb:
    """What the EHR serves: its JWKS and its FHIR server's Patient reads (with the token it hands out)."""

    base_url: str
    keys: list[SigningKey]
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_token: str = field(default_factory=lambda: f"fhir-{uuid.uuid4().hex}")
    requests: list[str] = field(default_factory=list)

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/jwks.json"

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys]}


@contextmanager
def serve_ehr(keys: list[SigningKey]) -> Iterator[EhrWeb]:
    web: EhrWeb

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            web.requests.append(self.path)
            if self.path == "/jwks.json":
                return self._json(200, web.jwks())
            found = re.fullmatch(r"/fhir/Patient/([A-Za-z0-9.\-]+)", self.path)
            if found:
                if self.headers.get("Authorization") != f"Bearer {web.access_token}":
                    return self._json(401, {"resourceType": "OperationOutcome"})
                patient = web.patients.get(found.group(1))
                return self._json(200, patient) if patient else self._json(404, {"resourceType": "OperationOutcome"})
            return self._json(404, {})

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    web = EhrWeb(f"http://127.0.0.1:{server.server_address[1]}", keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield web
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class CdsClient:
    """The EHR calling a CDS service the way the spec says."""

    http: TestClient
    service_base: str  # the CDS service's base URL as registered in the EHR (the JWT's aud is built from it)
    issuer: str
    key: SigningKey
    jku: str | None = None

    def token(self, aud: str, *, key: SigningKey | None = None, headers: dict[str, Any] | None = None,
              **claims: Any) -> str:  # fmt: skip
        key = key or self.key
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4()), **claims}
        header = {"kid": key.kid, "typ": "JWT", **({"jku": self.jku} if self.jku else {}), **(headers or {})}
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, key.private, algorithm=key.alg,
                          headers=header)  # fmt: skip

    def discover(self) -> httpx.Response:
        aud = f"{self.service_base}/cds-services"
        return self.http.get("/cds-services", headers={"Authorization": f"Bearer {self.token(aud)}"})

    def call(
        self,
        service_id: str,
        patient_id: str,
        *,
        hook: str = "patient-view",
        prefetch: dict[str, Any] | None = None,
        fhir_server: str | None = None,
        fhir_authorization: dict[str, Any] | None = None,
        authorization: str | None = "sign",
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "hook": hook,
            "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/example", "patientId": patient_id},
        }
        if prefetch is not None:
            body["prefetch"] = prefetch
        if fhir_server is not None:
            body["fhirServer"] = fhir_server
        if fhir_authorization is not None:
            body["fhirAuthorization"] = fhir_authorization
        headers = {"Content-Type": "application/json"}
        if authorization == "sign":
            authorization = f"Bearer {self.token(self.service_url(service_id))}"
        if authorization is not None:
            headers["Authorization"] = authorization
        return self.http.post(f"/cds-services/{service_id}", content=json.dumps(body), headers=headers)

    def service_url(self, service_id: str) -> str:
        return f"{self.service_base}/cds-services/{service_id}"


def fhir_patient(ehr_id: str, mrn_system: str, mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": ehr_id,
        "identifier": [{"use": "usual", "type": {"text": "MRN"}, "system": mrn_system, "value": mrn}],
        "name": [{"family": "Testperson", "given": ["Pat"]}],
        "gender": "female",
    }
