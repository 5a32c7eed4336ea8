"""Finding 1 of issue #16: a target's requests carry that target's own credential and nothing else.

A tenant admin once named any environment variable as a bearer target's `token_env` (the dev-token secret, the
SMART keys, the metrics token) and had the dry run send its value to a URL of theirs. Now a target's token is
written to the target itself, sealed, bound to its tenant, target and origin, and never readable back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from service.cli import app as cli
from service.records.audit import AuditEvent
from service.records.sync_target import SyncTarget
from service.sync import auth as sync_auth
from service.sync import credentials
from tests.builders import API, sync_target_body
from tests.conftest import make_settings
from tests.ehr_peer.fault_proxy import FaultPlan, FaultProxy
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.sync.sync_harness import SyncApp, drain, outbox_rows, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()

# The service's own secrets (and variables no target has any business with).
SERVICE_VARIABLES = [
    "TANDEM_DEV_TOKEN_SECRET",
    "TANDEM_SMART_PRIVATE_KEYS",
    "TANDEM_METRICS_TOKEN",
    "TANDEM_TARGET_CREDENTIAL_KEYS",
    "TANDEM_DATABASE_URL",
    "DATABASE_URL",
    "HOME",
]
TOKEN_A = "token-of-hospital-a-0123456789"
TOKEN_B = "token-of-hospital-b-9876543210"


@pytest.mark.parametrize("variable", SERVICE_VARIABLES)
def test_a_target_cannot_name_an_environment_variable(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]], variable: str
) -> None:
    body = sync_target_body(auth={"kind": "bearer", "token_env": variable})
    response = client.post(f"{API}/sync/targets", json=body, headers=auth(tenant, "admin"))
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == "auth.bearer"
    assert "/credential" in error["message"]


def test_a_written_token_is_never_shown_and_writing_is_audited(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    admin = auth(tenant, "admin")
    target = client.post(f"{API}/sync/targets", json=sync_target_body(auth={"kind": "bearer"}), headers=admin).json()
    written = client.put(f"{API}/sync/targets/{target['id']}/credential", json={"token": TOKEN_A}, headers=admin)
    assert written.status_code == 204, written.text
    read = client.get(f"{API}/sync/targets/{target['id']}", headers=admin)
    assert read.json()["token_written_for"] == "https://93.184.216.34:443"
    assert read.json()["version"] == 2  # the representation changed, so did the ETag
    for response in (read, client.get(f"{API}/sync/targets", headers=admin)):
        assert TOKEN_A not in response.text
        assert "credential" not in response.json() or response.json().get("credential") is None
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEvent).where(col(AuditEvent.request_id) == written.headers["x-request-id"])
        ).all()
    assert [(r.action, r.record_kind, r.record_id, r.outcome) for r in rows] == [
        ("update", "sync/targets", target["id"], "success")
    ]
    removed = client.delete(f"{API}/sync/targets/{target['id']}/credential", headers=admin)
    assert removed.status_code == 204
    assert client.get(f"{API}/sync/targets/{target['id']}", headers=admin).json()["token_written_for"] is None


@pytest.mark.parametrize(
    ("auth_config", "token", "status"),
    [
        ({"kind": "none"}, TOKEN_A, 422),  # a token only for a bearer target
        ({"kind": "bearer"}, "short", 422),
        ({"kind": "bearer"}, "two words-0123456789", 422),  # nothing that could smuggle a header
        ({"kind": "bearer"}, "x" * 8193, 422),
    ],
)
def test_bad_tokens_are_refused_and_change_nothing(
    client: TestClient,
    tenant: str,
    auth: Callable[..., dict[str, str]],
    auth_config: dict[str, str],
    token: str,
    status: int,
) -> None:
    admin = auth(tenant, "admin")
    target = client.post(f"{API}/sync/targets", json=sync_target_body(auth=auth_config), headers=admin).json()
    response = client.put(f"{API}/sync/targets/{target['id']}/credential", json={"token": token}, headers=admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"{API}/sync/targets/{target['id']}", headers=admin).json()["version"] == 1


def test_each_target_is_sent_only_its_own_token(
    sync_app: SyncApp, sekmet: SekmetServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hospitals' bearer targets, a full push each: every request each EHR sees carries exactly its own token.
    Then a sealed token copied to the other hospital's target, and a target re-pointed at another origin: neither
    sends anything at all."""
    monkeypatch.setenv("TANDEM_METRICS_TOKEN", "metrics-secret-never-sent-0123456789")
    service_secrets = ["metrics-secret-never-sent-0123456789", sync_app.settings.dev_token_secret]
    tenant_a, tenant_b = sync_app.tenant(), sync_app.tenant()
    with (
        FaultProxy(sekmet.root_url, FaultPlan.passthrough()) as ehr_a,
        FaultProxy(sekmet.root_url, FaultPlan.passthrough()) as ehr_b,
    ):
        target_a = sync_app.target(tenant_a, ehr_a.url("/fhir"), auth={"kind": "bearer"}, push=["patients"])
        target_b = sync_app.target(tenant_b, ehr_b.url("/fhir"), auth={"kind": "bearer"}, push=["patients"])
        for tenant, target, token in ((tenant_a, target_a, TOKEN_A), (tenant_b, target_b, TOKEN_B)):
            admin = sync_app.driver(tenant, "admin")
            written = admin.client.put(
                f"{API}/sync/targets/{target}/credential", json={"token": token}, headers=admin.headers
            )
            assert written.status_code == 204, written.text
            for _ in range(3):
                sync_app.driver(tenant).patient()
            drain(sync_app, tenant)
            assert {row.status for row in outbox_rows(sync_app.engine, tenant)} == {"sent"}
        seen_a, seen_b = ehr_a.snapshot(), ehr_b.snapshot()
        # the CapabilityStatement, then the patients (in a batch Bundle where the peer takes one)
        assert {r.method for r in seen_a} == {r.method for r in seen_b} == {"GET", "POST"}
        assert {r.authorization for r in seen_a} == {f"Bearer {TOKEN_A}"}
        assert {r.authorization for r in seen_b} == {f"Bearer {TOKEN_B}"}
        assert not [r for r in seen_a + seen_b if any(s in (r.authorization or "") for s in service_secrets)]

        # A's sealed token copied onto B's target (a database-level swap): it opens only for A.
        with Session(sync_app.engine) as session:
            row_a, row_b = session.get(SyncTarget, target_a), session.get(SyncTarget, target_b)
            assert row_a is not None and row_b is not None
            row_b.credential = row_a.credential
            session.add(row_b)
            session.commit()
        ehr_b.clear()
        sync_app.driver(tenant_b).patient()
        drain(sync_app, tenant_b)
        assert ehr_b.snapshot() == []  # nothing was sent: not A's token, not without one
        dead = [row for row in outbox_rows(sync_app.engine, tenant_b) if row.status == "dead"]
        assert len(dead) == 1 and "not written for this target" in str(dead[0].last_error)

        # A re-pointed at another origin (B's EHR): A's token stays with the origin it was written for.
        admin_a = sync_app.driver(tenant_a, "admin")
        version = admin_a.client.get(f"{API}/sync/targets/{target_a}", headers=admin_a.headers).headers["etag"]
        moved = admin_a.client.patch(
            f"{API}/sync/targets/{target_a}",
            json={"base_url": ehr_b.url("/fhir")},
            headers={**admin_a.headers, "If-Match": version},
        )
        assert moved.status_code == 200, moved.text
        ehr_b.clear()
        sync_app.driver(tenant_a).patient()
        drain(sync_app, tenant_a)
        assert ehr_b.snapshot() == []
        dead = [row for row in outbox_rows(sync_app.engine, tenant_a) if row.status == "dead"]
        assert len(dead) == 1 and "write the token again for the new address" in str(dead[0].last_error)


# ---- the seal -----------------------------------------------------------------------------------------------


def test_a_sealed_token_opens_only_for_its_tenant_target_and_origin() -> None:
    settings = make_settings("sqlite://")
    where = {"tenant_id": "t1", "target_id": "x1", "base_url": "https://ehr.example/fhir/R4"}
    sealed = credentials.seal(settings, token=TOKEN_A, **where)
    assert TOKEN_A not in sealed
    assert credentials.open_token(settings, sealed, **where) == TOKEN_A
    assert credentials.open_token(settings, sealed, **{**where, "base_url": "https://EHR.example:443/other"}) == TOKEN_A
    for changed in ({"tenant_id": "t2"}, {"target_id": "x2"}, {"base_url": "https://ehr.example:8443/fhir"}):
        with pytest.raises(credentials.CredentialError):
            credentials.open_token(settings, sealed, **{**where, **changed})
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(credentials.CredentialError, match="cannot be opened"):
        credentials.open_token(settings, tampered, **where)
    with pytest.raises(credentials.CredentialError, match="no token has been written"):
        credentials.open_token(settings, None, **where)


def test_credential_keys_rotate_and_production_needs_one() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    where = {"tenant_id": "t1", "target_id": "x1", "base_url": "https://ehr.example/fhir"}
    before = make_settings("sqlite://", target_credential_keys=[old])
    during = make_settings("sqlite://", target_credential_keys=[old, new])
    after = make_settings("sqlite://", target_credential_keys=[new])
    sealed = credentials.seal(before, token=TOKEN_A, **where)
    assert credentials.open_token(during, sealed, **where) == TOKEN_A  # every configured key opens
    with pytest.raises(credentials.CredentialError):
        credentials.open_token(after, sealed, **where)
    resealed = credentials.reseal(during, sealed)  # the newest (last) key seals
    assert credentials.open_token(after, resealed, **where) == TOKEN_A
    production = make_settings(
        "sqlite://",
        environment="production",
        trusted_issuers={"https://idp.example": "https://idp.example/jwks"},
        public_base_url="https://tandem.hospital.example",
    )
    with pytest.raises(credentials.CredentialError, match="TANDEM_TARGET_CREDENTIAL_KEYS is not set"):
        credentials.seal(production, token=TOKEN_A, **where)


def test_keys_cli_prints_working_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.settings import get_settings

    monkeypatch.setenv("TANDEM_SMART_PRIVATE_KEYS", "{}")
    monkeypatch.delenv("TANDEM_TARGET_CREDENTIAL_KEYS", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        for algorithm in ("RS384", "ES384"):
            result = runner.invoke(cli, ["keys", "generate", "--alg", algorithm, "--kid", f"k-{algorithm}"])
            assert result.exit_code == 0, result.output
            *jwk_lines, env_line = result.stdout.splitlines()  # the JWKS entry, then the variable's new value
            keys = json.loads(env_line)
            settings = make_settings("sqlite://", smart_private_keys=keys)
            published = sync_auth.jwks_document(settings)["keys"]
            assert [k["kid"] for k in published] == [f"k-{algorithm}"]
            assert published[0]["alg"] == algorithm
            assert json.loads("\n".join(jwk_lines)) == published[0]
        refused = runner.invoke(cli, ["keys", "generate", "--alg", "HS256"])
        assert refused.exit_code != 0 and "RS384 or ES384" in refused.output
        result = runner.invoke(cli, ["keys", "credential-key"])
        assert result.exit_code == 0, result.output
        [key] = json.loads(result.stdout.splitlines()[-1])
        sealed = credentials.seal(
            make_settings("sqlite://", target_credential_keys=[key]),
            tenant_id="t",
            target_id="x",
            base_url="https://ehr.example",
            token=TOKEN_A,
        )
        assert sealed
    finally:
        get_settings.cache_clear()


# ---- SMART access tokens --------------------------------------------------------------------------------------


def test_a_smart_token_is_cached_for_where_it_may_go() -> None:
    auth = {"kind": "smart-backend", "token_url": "https://ehr.example/token", "client_id": "c", "key_id": "k"}
    key = sync_auth.smart_cache_key("x1", "https://ehr.example/fhir", auth)
    assert key == sync_auth.smart_cache_key("x1", "https://ehr.example:443/fhir/R4", auth)
    assert key != sync_auth.smart_cache_key("x1", "https://attacker.example/fhir", auth)
    assert key != sync_auth.smart_cache_key("x2", "https://ehr.example/fhir", auth)
    assert key != sync_auth.smart_cache_key("x1", "https://ehr.example/fhir", {**auth, "token_url": "https://o/t"})


def test_a_slow_token_endpoint_does_not_hold_up_other_targets() -> None:
    cache = sync_auth.TokenCache()
    slow_started, release = threading.Event(), threading.Event()

    def slow() -> tuple[str, float]:
        slow_started.set()
        release.wait(10)
        return "slow-token", 300

    waiting = threading.Thread(target=lambda: cache.get("slow", slow))
    waiting.start()
    try:
        assert slow_started.wait(10)
        # Under the old cache, this call waited on the lock the slow fetch held.
        done = threading.Event()

        def fetch_fast() -> None:
            cache.get("fast", lambda: ("fast-token", 300))
            done.set()

        other = threading.Thread(target=fetch_fast)
        other.start()
        assert done.wait(5), "a token for another target waited for the slow token endpoint"
    finally:
        release.set()
        waiting.join(10)
    assert cache.get("slow", lambda: ("again", 300)) == "slow-token"
    assert cache.requests == 2
