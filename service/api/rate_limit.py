"""The per-client rate limit: a moving window (exactly N in any 60 s) per client (its bearer token) and per address,
counted by the `limits` library where TANDEM_RATE_LIMIT_STORAGE says: `memory://` (the default) counts in this
process, so behind N API replicas a client gets up to N times the rate; `redis://…` counts in Redis, one budget
shared by every replica. The answer to a client over its rate is 429 with Retry-After, in the same error format as
every other refusal.

The token is unchecked here, so an address has a budget of its own too (several clients may share one, hence the
larger size): a stream of made-up tokens cannot dodge the limit. The client's own budget is charged first, so a
client refused for it does not spend the address's budget its neighbours behind a hospital's interface engine share.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import TandemError, TooManyRequests

logger = logging.getLogger("tandem.rate_limit")
# An address's budget is this many times a client's: a hospital's interface engine may front several clients.
ADDRESS_BUCKET_SIZE = 4
MEMORY = "memory://"
# A Redis that does not answer within this long lets the request through (logged): the limit protects the
# service, and a limiter outage must not become an API outage.
REDIS_TIMEOUT_SECONDS = 0.5
OUTAGE_LOG_EVERY_SECONDS = 60.0

Budget = tuple[RateLimitItem, str]


class ClientBudgets:
    """The budgets of clients and addresses, in the configured storage."""

    def __init__(self, per_minute: int, storage_uri: str = MEMORY, key_prefix: str = "tandem") -> None:
        self.shared = storage_uri != MEMORY
        options: dict[str, float | str | bool] = {"wrap_exceptions": True}
        if self.shared:
            options |= {
                "key_prefix": f"{key_prefix}-rate",
                "socket_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
            }
        # Moving, not the sliding-window counter: the counter weighs the previous minute's count by how much of it
        # is left, so a burst just before a minute boundary let the budget's next request through (seen in CI).
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self.per_minute = per_minute
        self.client = RateLimitItemPerMinute(max(per_minute, 1))
        self.address = RateLimitItemPerMinute(max(per_minute, 1) * ADDRESS_BUCKET_SIZE)
        self._outage_logged = -math.inf

    def of(self, scope: Scope) -> list[Budget]:
        """The client's own budget first (when it sent a token), then its address's."""
        client = scope.get("client") or ("unknown", 0)
        found: list[Budget] = []
        authorization = dict(scope["headers"]).get(b"authorization")
        if authorization:
            found.append((self.client, "token:" + hashlib.sha256(authorization).hexdigest()))
        found.append((self.address, f"address:{client[0]}"))
        return found

    def take(self, budgets: list[Budget], n: int) -> int:
        """Charge n requests to each budget in turn (the client's, then its address's), stopping at the first that
        is short: the seconds to wait then (0 when all were charged). One round trip per budget: a request refused
        for the client's own budget costs its address nothing; one refused for the address has cost the client."""
        try:
            for item, key in budgets:
                if not self.limiter.hit(item, key, cost=n):
                    return self._wait(item, key)
        except StorageError:
            now = time.monotonic()
            if now - self._outage_logged > OUTAGE_LOG_EVERY_SECONDS:
                self._outage_logged = now
                logger.warning("the rate limit storage is unreachable: requests are let through unlimited")
        return 0

    def _wait(self, item: RateLimitItem, key: str) -> int:
        return max(1, math.ceil(self.limiter.get_window_stats(item, key).reset_time - time.time()))


class RateLimit:
    """ASGI middleware over ClientBudgets; a Bundle's entries are charged by the FHIR batch route through
    `scope["state"]["charge_requests"]`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_minute: int,
        render: Callable[[Scope, TandemError], Response],
        storage_uri: str = MEMORY,
        key_prefix: str = "tandem",
    ) -> None:
        self.app = app
        self.render = render
        self.budgets = ClientBudgets(per_minute, storage_uri, key_prefix) if per_minute > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.budgets is None:
            await self.app(scope, receive, send)
            return
        budgets = self.budgets
        of_client = budgets.of(scope)
        # Redis is a network round trip: off the event loop, so a slow one holds this request only.
        wait = await asyncio.to_thread(budgets.take, of_client, 1) if budgets.shared else budgets.take(of_client, 1)
        if wait:
            response = self.render(
                scope, TooManyRequests(f"too many requests from this client; retry after {wait} s", wait)
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["charge_requests"] = lambda n: self._charge(budgets, of_client, n)
        await self.app(scope, receive, send)

    @staticmethod
    def _charge(budgets: ClientBudgets, of_client: list[Budget], n: int) -> None:
        """A Bundle's n further entries (the request itself was charged); called from the route's thread."""
        allowance = min(item.amount for item, _ in of_client)
        if n + 1 > allowance:
            raise TooManyRequests(
                f"a Bundle of {n + 1} entries counts as {n + 1} requests; this client may send {allowance} a "
                "minute: split it",
                60,
            )
        wait = budgets.take(of_client, n)
        if wait:
            raise TooManyRequests(
                f"a Bundle of {n + 1} entries counts as {n + 1} requests, more than this client has left; "
                f"retry after {wait} s",
                wait,
            )
