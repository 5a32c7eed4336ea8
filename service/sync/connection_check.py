"""The admin page's "Test connection": read the target's CapabilityStatement, get a token the way the worker
would (a fresh one, not the worker's cached one), and say what each record kind becomes there (natural, fallback
or not supported, and why: service/sync/capabilities.py decides, as it does for every delivery).

Nothing is written to the EHR. Every failure is said in words (service/sync/failure_words.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args

import httpx

from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync.auth import AuthError, TokenCache
from service.sync.capabilities import Capabilities, KindDecision, decide, parse_capabilities
from service.sync.client import FHIR_JSON, FhirClient, UnsafeUrl
from service.sync.failure_words import answer_words, host_of, outcome_text, status_words, transport_words
from service.sync.targets import PushKind

# An administrator is waiting at the page: shorter than the worker's 30 s.
CHECK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
PUSH_KINDS: tuple[str, ...] = get_args(PushKind)


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    words: str


@dataclass(frozen=True)
class KindVerdict:
    kind: str
    mapping: str  # natural | fallback | not_supported
    reason: str | None
    sent_as: tuple[str, ...]  # the FHIR types sent
    left_out: tuple[str, ...]  # optional types the target cannot take
    pushed: bool  # the target is configured to be sent this kind


@dataclass
class ConnectionReport:
    target_id: str
    base_url: str
    steps: list[Step] = field(default_factory=list)
    software: str | None = None
    verdicts: list[KindVerdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)


def check_connection(target: SyncTarget, settings: Settings, *, http: httpx.Client | None = None) -> ConnectionReport:
    """Metadata, then a token (when the target has auth), then the decisions per record kind."""
    report = ConnectionReport(target.id, target.base_url)
    client = FhirClient(
        target,
        settings,
        tokens=TokenCache(),
        http=http or httpx.Client(timeout=CHECK_TIMEOUT, follow_redirects=False, trust_env=False),
    )
    try:
        statement, status = _metadata(client, report, token=None)
        token = _token(client, report)
        if statement is None and status in (401, 403) and token:
            report.steps.pop()  # the CapabilityStatement is not public there: read it again with the token
            statement, _ = _metadata(client, report, token=token)
    finally:
        if http is None:
            client.close()
    if statement is not None:
        capabilities = parse_capabilities(statement)
        report.software = capabilities.software
        report.verdicts = verdicts(capabilities, target.push or [])
    return report


def verdicts(capabilities: Capabilities, pushed: list[str]) -> list[KindVerdict]:
    decided: list[KindDecision] = [decide(kind, capabilities) for kind in PUSH_KINDS]
    return [
        KindVerdict(
            kind=d.kind,
            mapping=d.mapping,
            reason=d.reason,
            sent_as=tuple(sorted(d.sent_types)),
            left_out=d.left_out,
            pushed=d.kind in pushed,
        )
        for d in decided
    ]


def _metadata(
    client: FhirClient, report: ConnectionReport, *, token: str | None
) -> tuple[dict[str, Any] | None, int | None]:
    """GET [base]/metadata; the statement, or None with the step saying why (and the HTTP status, if any)."""
    name = "CapabilityStatement (GET metadata)"
    url = client.url("metadata")
    headers = {"Accept": FHIR_JSON} | ({"Authorization": f"Bearer {token}"} if token else {})
    try:
        client.check_url(url)
        response = client.http.get(url, headers=headers)
    except (httpx.HTTPError, UnsafeUrl) as error:
        report.steps.append(Step(name, False, transport_words(error, url)))
        return None, None
    body = _json(response)
    if not 200 <= response.status_code < 300:
        words = answer_words(url, response.status_code, body)
        if 300 <= response.status_code < 400:
            words += f" (a redirect to {response.headers.get('Location') or '?'}; Tandem does not follow redirects)"
        report.steps.append(Step(name, False, words))
        return None, response.status_code
    if not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
        kind = response.headers.get("Content-Type", "no Content-Type").split(";")[0]
        what = f"a {body['resourceType']}" if isinstance(body, dict) and body.get("resourceType") else kind
        words = (
            f"{host_of(url)} answered {status_words(response.status_code)} with {what}, not a FHIR "
            "CapabilityStatement: is the base URL the FHIR base (e.g. https://ehr.example/api/FHIR/R4)?"
        )
        report.steps.append(Step(name, False, words))
        return None, response.status_code
    statement: dict[str, Any] = body
    found = statement.get("software")
    software: dict[str, Any] = found if isinstance(found, dict) else {}
    named = " ".join(str(software.get(k)) for k in ("name", "version") if software.get(k))
    version = statement.get("fhirVersion")
    words = f"{host_of(url)} answered: {named or 'a FHIR server'}" + (f", FHIR {version}" if version else "")
    report.steps.append(Step(name, True, words))
    return statement, response.status_code


def _token(client: FhirClient, report: ConnectionReport) -> str | None:
    auth = client.target.auth or {}
    kind = auth.get("kind", "none")
    if kind == "none":
        report.steps.append(Step("Token", True, "no authentication configured: requests are sent without a token"))
        return None
    try:
        token = client.access_token()
    except AuthError as error:
        said = outcome_text(error.body)
        words = f"no token: {error}" + (f": {said}" if said else "")
        report.steps.append(Step("Token", False, words))
        return None
    except (httpx.HTTPError, UnsafeUrl) as error:
        report.steps.append(Step("Token", False, f"no token: {transport_words(error, str(auth.get('token_url')))}"))
        return None
    if kind == "bearer":
        words = "the token written for this target opens for its origin"
    else:
        words = f"{host_of(str(auth.get('token_url')))} issued an access token to client {auth.get('client_id')!r}"
    report.steps.append(Step("Token", True, words))
    return token


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
