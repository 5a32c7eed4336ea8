"""What a target's answers mean for a delivery: a result, or a failure that is retried or becomes a dead letter.

Everything that reads an answer goes through here, so the rules live in one place:
- `failure_from` classifies an HTTP answer that is not a success (retried: 408, 409, 429, 5xx; a policy refusal
  never is), `failure_of` any exception raised while talking to a target (the one exception classifier);
- `entry_status` reads a Bundle entry's `response.status` the way R4 defines it ("SHALL start with a 3-digit HTTP
  code … may contain the standard HTTP description": "200", "200 OK", "201 Created"), and `entry_exchange` turns
  a batch-response entry into an Exchange, so a Bundle's entries are read like single answers;
- `version_of`, `created_id` and `search_matches` read the id, version and matches an answer carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from service.sync.auth import AuthError
from service.sync.client import Exchange, UnsafeUrl
from service.sync.tables import RemoteResource

_ETAG = re.compile(r'^(?:W/)?"([^"]+)"$')
_STATUS = re.compile(r"\s*([1-5][0-9]{2})(?![0-9]).*", re.DOTALL)
_POLICY_CODES = frozenset({"forbidden", "security", "suppressed"})
_POLICY_WORDS = ("break-the-glass", "break the glass", "btg", "policy", "consent", "restricted")
INTERNAL_ERROR = "internal error while delivering (see the service log)"


class DeliveryFailure(Exception):
    """An attempt that did not finish. `retryable` decides between a later retry and a dead letter."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        outcome: Any = None,
        retry_after: str | None = None,
        unknown: bool = False,
        policy: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
        self.outcome = outcome
        self.retry_after = retry_after
        self.unknown = unknown
        self.policy = policy
        self.remote: list[RemoteResource] = []

    def copy(self) -> DeliveryFailure:
        """The same failure for another record (a shared Bundle's answer fails each record it carried)."""
        return DeliveryFailure(
            str(self),
            retryable=self.retryable,
            status_code=self.status_code,
            outcome=self.outcome,
            retry_after=self.retry_after,
            unknown=self.unknown,
            policy=self.policy,
        )

    def as_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": str(self), "status_code": self.status_code, "retryable": self.retryable}
        if self.unknown:
            error["outcome_unknown"] = True
        if self.policy:
            error["policy_refusal"] = True
        if self.outcome is not None:
            error["operation_outcome"] = self.outcome
        return error


@dataclass
class DeliveryResult:
    status: str  # sent | not_supported
    reason: str | None = None
    remote: list[RemoteResource] = field(default_factory=list)
    requests: int = 0


# Why a row of a target that was disabled (or removed) when its turn came is set aside (not_supported): re-enabling
# the target queues such rows again (status.requeue_set_aside).
TARGET_OFF = "the target was removed or disabled"
# Everything contacting a target raises on purpose; anything else is our own bug (logged with its traceback).
TARGET_FAILURES: tuple[type[Exception], ...] = (DeliveryFailure, AuthError, UnsafeUrl, httpx.HTTPError)


def failure_of(error: Exception) -> DeliveryFailure:
    """The failure of an attempt that raised `error`. Not one of TARGET_FAILURES: our bug, retried (the caller
    logs it, since only it knows which row it was)."""
    if isinstance(error, DeliveryFailure):
        return error
    if isinstance(error, httpx.HTTPError):
        return transport_failure(error, None, unknown=False)
    if isinstance(error, AuthError):
        return DeliveryFailure(
            f"authentication: {error}", retryable=False, status_code=error.status_code, outcome=error.body
        )
    if isinstance(error, UnsafeUrl):
        return DeliveryFailure(f"refused to contact the target: {error}", retryable=False)
    return DeliveryFailure(INTERNAL_ERROR, retryable=True)


def transport_failure(error: httpx.HTTPError, what: str | None, *, unknown: bool) -> DeliveryFailure:
    """No answer arrived. `unknown`: the request may have taken effect (a create), so the retry looks first."""
    suffix = " (outcome unknown: resolved by a search on the retry)" if unknown else ""
    name = type(error).__name__
    return DeliveryFailure(f"{what}: {name}{suffix}" if what else f"{name}{suffix}", retryable=True, unknown=unknown)


def failure_from(exchange: Exchange, what: str) -> DeliveryFailure:
    """An answer that is not a success."""
    status = exchange.status_code
    policy = is_policy_refusal(status, exchange.body)
    retryable = (status in (408, 409, 429) or status >= 500) and not policy
    message = f"{what}: HTTP {status}" + (" (policy refusal: not retried)" if policy else "")
    return DeliveryFailure(
        message,
        retryable=retryable,
        status_code=status,
        outcome=exchange.body,
        retry_after=exchange.headers.get("Retry-After"),
        policy=policy,
    )


def is_policy_refusal(status: int, outcome: Any) -> bool:
    """A 403 whose OperationOutcome says consent, break-the-glass or another policy refused it: a person must act,
    so it is never retried (and is shown to coordinators)."""
    if status != 403 or not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return False
    for issue in outcome.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        text = " ".join(
            str(x)
            for x in (
                issue.get("diagnostics"),
                (issue.get("details") or {}).get("text"),
                *[c.get("code") for c in (issue.get("details") or {}).get("coding") or [] if isinstance(c, dict)],
            )
            if x
        ).lower()
        if issue.get("code") in _POLICY_CODES or any(word in text for word in _POLICY_WORDS):
            return True
    return False


# ---- reading answers --------------------------------------------------------------------------------------------


def entry_status(value: Any) -> int | None:
    """The HTTP status of a Bundle entry's `response.status` ("200", "200 OK", "201 Created"), or None when it does
    not start with a 3-digit HTTP code. A bare number is taken too: it is what a sloppy server means."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 100 <= value <= 599 else None
    if not isinstance(value, str):
        return None
    match = _STATUS.fullmatch(value)
    return int(match.group(1)) if match else None


def entry_exchange(entry: Any) -> Exchange | None:
    """A batch-response entry as the Exchange its request would have had alone (status, Location and ETag, the
    resource or the OperationOutcome), or None when its status is missing or not an HTTP status."""
    if not isinstance(entry, dict):
        return None
    response = entry.get("response")
    if not isinstance(response, dict):
        return None
    status = entry_status(response.get("status"))
    if status is None:
        return None
    headers = httpx.Headers({"Location": str(response.get("location") or ""), "ETag": str(response.get("etag") or "")})
    body = entry.get("resource") if 200 <= status < 300 else response.get("outcome")
    return Exchange(status, headers, body)


def unreadable_entry(entry: Any, what: str, *, unknown: bool) -> DeliveryFailure:
    """A Bundle entry whose response.status is not an HTTP status: it settles nothing; retried (a create in it
    may have happened: `unknown`, found by the identifier on the retry)."""
    response = entry.get("response") if isinstance(entry, dict) else None
    status = response.get("status") if isinstance(response, dict) else None
    shown = repr(status)[:40] if status is not None else "none"
    return DeliveryFailure(
        f"{what}: the answer's status ({shown}) is not an HTTP status", retryable=True, unknown=unknown
    )


def version_of(exchange: Exchange) -> str | None:
    """The version the target gave its copy: the ETag, else meta.versionId of the returned resource."""
    match = _ETAG.match((exchange.headers.get("ETag") or "").strip())
    if match:
        return match.group(1)
    meta = (exchange.body or {}).get("meta") if isinstance(exchange.body, dict) else None
    return str(meta["versionId"]) if isinstance(meta, dict) and meta.get("versionId") else None


def created_id(exchange: Exchange, resource_type: str) -> str | None:
    """The id the target gave a resource it wrote: the returned resource's, else Location's."""
    if (
        isinstance(exchange.body, dict)
        and exchange.body.get("resourceType") == resource_type
        and exchange.body.get("id")
    ):
        return str(exchange.body["id"])
    location = exchange.headers.get("Location") or exchange.headers.get("Content-Location") or ""
    match = re.search(rf"{resource_type}/([A-Za-z0-9\-.]{{1,64}})", location)
    return match.group(1) if match else None


def search_matches(bundle: Any, resource_type: str) -> list[dict[str, Any]]:
    """The matches of a searchset (not its `outcome` entries)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return []
    found = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        mode = (entry.get("search") or {}).get("mode", "match") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == resource_type and mode != "outcome":
            found.append(resource)
    return found
