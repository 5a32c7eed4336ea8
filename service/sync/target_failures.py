"""What an admin is told when a request Tandem makes to an EHR target on their behalf fails (the dry run).

The target is another server: its failure (outcomes.TARGET_FAILURES) is a 502 (a bad answer from upstream), not
our 500, and the problem says what the target did and what to do about it. Nothing the target sent back is echoed
beyond its status. Anything else raised is our own bug and stays a 500.
"""

from __future__ import annotations

import httpx

from service.errors import TandemError
from service.records.sync_target import SyncTarget
from service.sync.auth import AuthError
from service.sync.client import UnsafeUrl


class TargetFailed(TandemError):
    status_code = 502
    title = "The EHR target failed"


def explain(error: Exception, target: SyncTarget) -> TargetFailed:
    where = f"the target {target.name!r} ({target.base_url})"
    if isinstance(error, AuthError):
        return TargetFailed(f"nothing was sent to {where}: its credential is not usable: {error}")
    if isinstance(error, UnsafeUrl):
        return TargetFailed(f"nothing was sent to {where}: {error}; correct the target's base_url")
    if isinstance(error, httpx.HTTPError):
        return TargetFailed(
            f"{where} did not answer ({type(error).__name__}); check that it is reachable from Tandem and retry"
        )
    status = getattr(error, "status_code", None)
    if status is not None and 300 <= status < 400:
        return TargetFailed(
            f"{where} answered HTTP {status} (a redirect) to GET metadata; Tandem does not follow redirects, so "
            "a target cannot send its requests and credential elsewhere: set base_url to the address the "
            "redirect names, if you trust it"
        )
    if status in (401, 403):
        return TargetFailed(
            f"{where} refused Tandem's credential (HTTP {status}); write a valid token with "
            f"PUT /api/v1/sync/targets/{target.id}/credential or fix the SMART client registration"
        )
    return TargetFailed(f"{where} failed: {error}; check the target's status page and retry later")
