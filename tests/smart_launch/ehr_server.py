"""An EHR's SMART authorization server and FHIR endpoint for the launch tests, written from the SMART App Launch
2.x text (app-launch, conformance), not from Tandem's code; built with authlib (PKCE S256 and token generation)
and joserfc, authlib's JOSE library (the id_token and the JWKS).

Several EHRs share one server: each lives under /ehr/{name}, its FHIR base (`iss`) /ehr/{name}/fhir. It
publishes .well-known/smart-configuration, authorizes at once (the user is already signed in to the EHR: it
auto-approves), exchanges each code once and only with the verifier whose S256 challenge it was given, and
answers the token with `patient`, `scope` and an id_token naming `fhirUser`. It logs every request, so a test can
show that Tandem sent none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import RSAKey

KEY = RSAKey.generate_key(2048, parameters={"kid": "ehr-key-1", "use": "sig"}, private=True)


@dataclass
class LaunchContext:
    patient: str
    fhir_user: str  # relative, as EHRs often send it: "Practitioner/dr-1"
    scope: str | None = None  # what the EHR grants; None: what was asked


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    context: LaunchContext
    used: bool = False


@dataclass
class Ehr:
    name: str
    client_id: str
    redirect_uri: str
    base: str = ""
    launches: dict[str, LaunchContext] = field(default_factory=dict)
    standalone: LaunchContext | None = None
    codes: dict[str, Code] = field(default_factory=dict)
    tokens: dict[str, LaunchContext] = field(default_factory=dict)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)  # Patient resources the FHIR API serves
    requests: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def iss(self) -> str:
        return f"{self.base}/ehr/{self.name}/fhir"

    def new_launch(self, patient: str, fhir_user: str = "Practitioner/dr-1", scope: str | None = None) -> str:
        token = generate_token(40)
        self.launches[token] = LaunchContext(patient, fhir_user, scope)
        return token


class EhrServer:
    def __init__(self) -> None:
        self.ehrs: dict[str, Ehr] = {}
        self.base = ""
        self.app = self._build()

    def add(self, name: str, *, client_id: str, redirect_uri: str) -> Ehr:
        ehr = Ehr(name=name, client_id=client_id, redirect_uri=redirect_uri, base=self.base)
        self.ehrs[name] = ehr
        return ehr

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def log(request: Request, call_next: Any) -> Response:
            parts = request.url.path.split("/")
            if len(parts) > 2 and parts[2] in self.ehrs:
                self.ehrs[parts[2]].requests.append(f"{request.method} {request.url.path}")
            response: Response = await call_next(request)
            return response

        @app.get("/ehr/{name}/fhir/.well-known/smart-configuration")
        def configuration(name: str) -> dict[str, Any]:
            ehr = self.ehrs[name]
            root = f"{self.base}/ehr/{name}"
            return {
                "issuer": root,
                "jwks_uri": f"{root}/auth/jwks",
                "authorization_endpoint": f"{root}/auth/authorize",
                "token_endpoint": f"{root}/auth/token",
                "grant_types_supported": ["authorization_code"],
                "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
                "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient", "patient/*.rs"],
                "response_types_supported": ["code"],
                "capabilities": ["launch-ehr", "launch-standalone", "client-public", "sso-openid-connect"],
                "code_challenge_methods_supported": ["S256"],
                "name": ehr.name,
            }

        @app.get("/ehr/{name}/auth/jwks")
        def jwks(name: str) -> dict[str, Any]:
            return {"keys": [KEY.as_dict(private=False)]}

        @app.get("/ehr/{name}/auth/authorize")
        def authorize(name: str, request: Request) -> Response:
            ehr, q = self.ehrs[name], request.query_params
            problem = None
            if q.get("response_type") != "code" or q.get("client_id") != ehr.client_id:
                problem = "unauthorized_client"
            elif q.get("redirect_uri") != ehr.redirect_uri:
                problem = "invalid redirect_uri"  # never redirect to an unregistered URI
            elif q.get("aud") != ehr.iss:
                problem = "invalid aud"
            elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge") or not q.get("state"):
                problem = "PKCE S256 and state are required"
            scopes = (q.get("scope") or "").split()
            context = None
            if problem is None and "launch" in scopes:
                context = ehr.launches.pop(q.get("launch") or "", None)
                problem = None if context is not None else "unknown launch"
            elif problem is None and "launch/patient" in scopes:
                context = ehr.standalone
                problem = None if context is not None else "no patient picked"
            if problem is not None or context is None:
                ehr.refusals.append(problem or "no context")
                return JSONResponse({"error": "invalid_request", "error_description": problem}, status_code=400)
            code = generate_token(32)
            ehr.codes[code] = Code(ehr.client_id, ehr.redirect_uri, q["code_challenge"], " ".join(scopes), context)
            return RedirectResponse(f"{ehr.redirect_uri}?{urlencode({'code': code, 'state': q['state']})}", 302)

        @app.post("/ehr/{name}/auth/token")
        def token(
            name: str,
            grant_type: Annotated[str, Form()],
            code: Annotated[str, Form()],
            redirect_uri: Annotated[str, Form()],
            code_verifier: Annotated[str, Form()],
            client_id: Annotated[str, Form()] = "",
        ) -> Response:
            ehr = self.ehrs[name]
            grant = ehr.codes.get(code)

            def refuse(why: str) -> Response:
                ehr.refusals.append(why)
                return JSONResponse({"error": "invalid_grant", "error_description": why}, status_code=400)

            if grant_type != "authorization_code" or grant is None:
                return refuse("unknown code")
            if grant.used:
                return refuse("code already used")
            grant.used = True  # spent whatever happens next (RFC 6749 §4.1.2)
            if client_id != grant.client_id or redirect_uri != grant.redirect_uri:
                return refuse("client or redirect_uri differs")
            if create_s256_code_challenge(code_verifier) != grant.challenge:
                return refuse("PKCE verifier does not match the challenge")
            access = generate_token(40)
            ehr.tokens[access] = grant.context
            now = int(time.time())
            claims = {
                "iss": f"{self.base}/ehr/{name}",
                "sub": grant.context.fhir_user.replace("/", "-"),
                "aud": grant.client_id,
                "iat": now,
                "exp": now + 300,
                "fhirUser": grant.context.fhir_user,
            }
            id_token = jwt.encode({"alg": "RS256", "kid": "ehr-key-1"}, claims, KEY)
            return JSONResponse(
                {
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": grant.context.scope or grant.scope,
                    "id_token": id_token,
                    "patient": grant.context.patient,
                    "need_patient_banner": False,
                },
                headers={"Cache-Control": "no-store"},
            )

        @app.get("/ehr/{name}/fhir/Patient/{patient_id}")
        def patient(name: str, patient_id: str, request: Request) -> Response:
            ehr = self.ehrs[name]
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            context = ehr.tokens.get(bearer)
            if context is None or context.patient != patient_id:
                return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
            resource = ehr.patients.get(patient_id)
            if resource is None:
                return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
            return JSONResponse(resource, media_type="application/fhir+json")

        return app
