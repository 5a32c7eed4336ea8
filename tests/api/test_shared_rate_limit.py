"""One rate limit across API replicas (issue #24, part 2): two `uvicorn service.main:app` processes on one
PostgreSQL, counting in one Redis, refuse a client after the shared budget however its requests are spread over
them; the same two processes counting in memory let it send the budget to each (the contrast that shows the test
would fail without the shared storage).

Redis runs at 127.0.0.1:6379 on the developers' machines and in CI (.ci/run starts it); without one the test is
skipped with the reason, or fails under REQUIRE_REDIS=1 (`make ci`). Each run counts under a key prefix of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from service.api.rate_limit import ClientBudgets
from service.auth.tokens import mint_dev_token
from service.db import migrations
from service.db.engine import make_engine
from service.db.unit_of_work import unit_of_work
from service.tenants import register_tenant
from tests.conftest import create_postgres_database, make_settings
from tests.reliability.process_fleet import Fleet, wait_until_serving

REDIS_URL = os.environ.get("TANDEM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BUDGET = 6  # requests a minute per client


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        reason = f"no Redis reachable at {REDIS_URL} ({error}); .ci/run starts one (redis-server)"
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"REQUIRE_REDIS=1 but {reason}")
        print(reason)
        pytest.skip(reason)
    return client


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    url, drop = create_postgres_database()
    try:
        migrations.upgrade(url)
        yield url
    finally:
        drop()


def _tenant_token(database_url: str) -> str:
    engine = make_engine(database_url, pool_size=1)
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    with unit_of_work(engine) as session:
        register_tenant(session, tenant_id=tenant_id, name=f"Rate limit test {tenant_id}")
    engine.dispose()
    return mint_dev_token(make_settings(database_url), tenant=tenant_id, role="coordinator")


def _alternating(fleet: Fleet, env: dict[str, str], token: str) -> list[tuple[str, int]]:
    """2 x BUDGET requests of one client, alternating between two fresh API processes: (process, status)."""
    apis = [fleet.api(f"api-{uuid.uuid4().hex[:4]}", env=env) for _ in range(2)]
    bases = [f"http://127.0.0.1:{api.port}" for api in apis]
    for base, api in zip(bases, apis, strict=True):
        wait_until_serving(base, api)
    answers = []
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        for n in range(2 * BUDGET):
            base = bases[n % 2]
            answers.append((base, http.get(f"{base}/api/v1/patients").status_code))
    for api in apis:
        fleet.sigkill(api)
    return answers


def test_two_api_processes_share_one_limit_through_redis(postgres_url: str, tmp_path: Path) -> None:
    store = _redis_or_skip()
    prefix = f"tandem-test-{uuid.uuid4().hex[:12]}"
    token = _tenant_token(postgres_url)
    fleet = Fleet(postgres_url, tmp_path)
    limited = {"TANDEM_RATE_LIMIT_PER_MINUTE": str(BUDGET)}
    try:
        shared = _alternating(
            fleet, limited | {"TANDEM_RATE_LIMIT_STORAGE": REDIS_URL, "TANDEM_RATE_LIMIT_KEY_PREFIX": prefix}, token
        )
        assert [status for _, status in shared] == [200] * BUDGET + [429] * BUDGET, fleet.log_tails()
        assert {base for base, status in shared if status == 429} == {base for base, _ in shared}, (
            "both processes refuse once the shared budget is spent"
        )
        assert list(store.scan_iter(f"{prefix}-rate*")), "the budget was counted in Redis under the run's prefix"

        apart = _alternating(fleet, limited | {"TANDEM_RATE_LIMIT_STORAGE": "memory://"}, token)
        assert [status for _, status in apart] == [200] * (2 * BUDGET), "in memory each process has its own budget"
        print(
            f"\n[shared rate limit] {BUDGET}/min, {2 * BUDGET} requests alternating over 2 processes: "
            f"Redis {sum(s == 200 for _, s in shared)} accepted, memory {sum(s == 200 for _, s in apart)} accepted"
        )
    finally:
        fleet.kill_all()
        for key in store.scan_iter(f"{prefix}-rate*"):
            store.delete(key)


def test_a_rate_limit_storage_that_is_not_redis_or_memory_is_refused() -> None:
    with pytest.raises(ValueError, match="TANDEM_RATE_LIMIT_STORAGE must be memory:// or a Redis URL"):
        make_settings("sqlite://", rate_limit_storage="memcached://127.0.0.1:11211")


def test_an_unreachable_redis_lets_requests_through_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """The limit protects the service; a limiter outage must not become an API outage."""
    budgets = ClientBudgets(1, "redis://127.0.0.1:1/0", key_prefix=f"tandem-test-{uuid.uuid4().hex[:8]}")
    scope = {"type": "http", "headers": [(b"authorization", b"Bearer x")], "client": ("10.0.0.1", 1)}
    assert [budgets.take(budgets.of(scope), 1) for _ in range(3)] == [0, 0, 0]
    assert caplog.text.count("rate limit storage is unreachable") == 1


def test_a_client_refused_for_its_own_budget_does_not_spend_its_addresss() -> None:
    """The client's budget is charged first: one noisy client behind an interface engine leaves its neighbours
    their share of the address's."""
    budgets = ClientBudgets(2)  # 2 a minute a client, 8 an address

    def scope(token: str) -> dict[str, object]:
        return {"type": "http", "headers": [(b"authorization", token.encode())], "client": ("10.0.0.9", 1)}

    noisy = budgets.of(scope("Bearer noisy"))
    assert [budgets.take(noisy, 1) for _ in range(2)] == [0, 0]
    assert all(budgets.take(noisy, 1) >= 1 for _ in range(20))
    neighbours = [budgets.of(scope(f"Bearer neighbour-{n}")) for n in range(3)]
    assert [budgets.take(neighbour, 1) for neighbour in neighbours for _ in range(2)] == [0] * 6
    assert budgets.take(budgets.of(scope("Bearer one-more")), 1) >= 1  # the address's 8 are spent: 2 + 6
