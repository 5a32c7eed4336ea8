"""Pure parts of the EHR sync: backoff, capability decisions on real CapabilityStatements, failure classes, JWKS."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.sync import auth as sync_auth
from service.sync.backoff import parse_retry_after, retry_delay
from service.sync.capabilities import CapabilityCache, decide, parse_capabilities
from service.sync.outcomes import is_policy_refusal
from tests.conftest import make_settings
from tests.shared_fixtures import load_fixture

EPIC = "ehr-capabilities/epic-r4-sandbox-capabilitystatement.json"
ORACLE = "ehr-capabilities/oracle-health-r4-capabilitystatement.json"


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, rng=rng) for n in range(1, 9)]
    assert all(0 <= d <= min(900, 2 * 2 ** (n - 1)) for n, d in enumerate(delays, start=1))
    assert max(delays[5:]) > max(delays[:2])
    assert len({round(retry_delay(3, rng=rng), 6) for _ in range(20)}) > 1  # jittered
    assert retry_delay(1, retry_after=30, rng=rng) >= 30
    assert retry_delay(40, rng=rng) <= 900


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == pytest.approx(90)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("999999") == 3600


def test_epic_takes_administrations_through_the_procedure_fallback() -> None:
    epic = parse_capabilities(load_fixture(EPIC))
    decision = decide("ketamine-administrations", epic)
    assert decision.mapping == "fallback"
    assert decision.strategies == {"Procedure": "search-create", "Observation": "search-create"}
    assert "accepts no MedicationAdministration writes" in (decision.reason or "")
    assert decide("patients", epic).mapping == "natural"
    assert decide("questionnaire-responses", epic).strategies["QuestionnaireResponse"] == "search-create"
    assert decide("cbt-sessions", epic).mapping == "fallback"  # no Encounter writes: the Procedure alone
    enrollment = decide("enrollments", epic)
    assert enrollment.mapping == "not_supported"
    assert "CarePlan" in (enrollment.reason or "")


def test_oracle_cannot_take_administrations_idempotently() -> None:
    oracle = parse_capabilities(load_fixture(ORACLE))
    assert oracle.batch
    decision = decide("ketamine-administrations", oracle)
    assert decision.mapping == "not_supported"
    assert "MedicationAdministration" in (decision.reason or "")
    assert "cannot search it by identifier" in (decision.reason or "")


def test_update_as_create_is_chosen_where_identifier_search_is_missing() -> None:
    statement = {
        "resourceType": "CapabilityStatement",
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        "type": "QuestionnaireResponse",
                        "interaction": [{"code": "create"}, {"code": "update"}],
                        "updateCreate": True,
                    },
                    {"type": "Observation", "interaction": [{"code": "create"}], "searchParam": []},
                ],
            }
        ],
    }
    decision = decide("questionnaire-responses", parse_capabilities(statement))
    assert decision.mapping == "natural"
    assert decision.strategies == {"QuestionnaireResponse": "put-client-id"}
    assert decision.left_out == ("Observation",)
    nothing = decide("ketamine-administrations", parse_capabilities({"rest": [{"mode": "server", "resource": []}]}))
    assert nothing.mapping == "not_supported"
    assert "accepts no MedicationAdministration writes" in (nothing.reason or "")


def test_capability_statements_are_cached_for_their_ttl() -> None:
    now = [0.0]
    cache = CapabilityCache(ttl=60, clock=lambda: now[0])
    fetches = []

    def fetch() -> dict[str, object]:
        fetches.append(1)
        return {"rest": []}

    cache.get("t", "https://x/fhir", fetch)
    cache.get("t", "https://x/fhir", fetch)
    now[0] = 61
    cache.get("t", "https://x/fhir", fetch)
    cache.get("t", "https://y/fhir", fetch)
    assert len(fetches) == 3


@pytest.mark.parametrize(
    ("status", "issue", "policy"),
    [
        (403, {"severity": "error", "code": "security", "diagnostics": "Break-the-glass required"}, True),
        (403, {"severity": "error", "code": "forbidden"}, True),
        (403, {"severity": "error", "code": "processing", "details": {"text": "restricted by consent policy"}}, True),
        (403, {"severity": "error", "code": "exception", "diagnostics": "Injected fault: HTTP 403"}, False),
        (400, {"severity": "error", "code": "security"}, False),
    ],
)
def test_policy_refusals_are_recognised(status: int, issue: dict[str, object], policy: bool) -> None:
    assert is_policy_refusal(status, {"resourceType": "OperationOutcome", "issue": [issue]}) is policy


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_jwks_publishes_every_key_and_the_newest_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    old = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new = ec.generate_private_key(ec.SECP384R1())
    monkeypatch.setenv(sync_auth.KEYS_ENV, json.dumps({"k-2026-01": _pem(old), "k-2026-11": _pem(new)}))
    settings = make_settings("sqlite://")
    document = sync_auth.jwks_document(settings)
    assert [(k["kid"], k["alg"]) for k in document["keys"]] == [("k-2026-01", "RS384"), ("k-2026-11", "ES384")]
    assert all("d" not in k for k in document["keys"])  # public halves only
    token = sync_auth.client_assertion(
        settings, client_id="c1", token_url="https://ehr/token", key_id=None, algorithm="ES384"
    )
    assert jwt.get_unverified_header(token)["kid"] == "k-2026-11"
    public = jwt.PyJWK(document["keys"][1]).key
    claims = jwt.decode(token, public, algorithms=["ES384"], audience="https://ehr/token")
    assert claims["iss"] == claims["sub"] == "c1"
    assert claims["exp"] - claims["iat"] <= 300


def test_tokens_are_cached_until_shortly_before_expiry() -> None:
    now = [0.0]
    cache = sync_auth.TokenCache(clock=lambda: now[0])
    issued = iter(["a", "b", "c"])
    assert cache.get("t", lambda: (next(issued), 300)) == "a"
    now[0] = 200
    assert cache.get("t", lambda: (next(issued), 300)) == "a"
    now[0] = 250  # within the margin of expiry
    assert cache.get("t", lambda: (next(issued), 300)) == "b"
    cache.invalidate("t")
    assert cache.get("t", lambda: (next(issued), 300)) == "c"
