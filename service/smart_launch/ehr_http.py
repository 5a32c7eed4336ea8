"""HTTP to the launching EHR (discovery, token, JWKS, the launch patient): each URL checked against the SSRF rules
of sync targets before it is contacted, no redirect followed, a short timeout, a bounded JSON answer."""

from __future__ import annotations

from typing import Any

import httpx

from service.errors import InvalidRequest
from service.settings import Settings
from service.smart_launch.refusals import LaunchRefused
from service.sync.url_safety import check_target_url

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_ANSWER_BYTES = 1_048_576


def checked(url: str, settings: Settings, what: str) -> str:
    try:
        return check_target_url(
            url,
            field=what,
            allowed_hosts=settings.sync_allowed_hosts,
            require_https=settings.sync_require_https,
        )
    except InvalidRequest as refused:
        raise LaunchRefused(f"The EHR's {what} cannot be used: {refused.message}") from None


def get_json(url: str, settings: Settings, what: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return _answer(lambda client: client.get(checked(url, settings, what), headers=headers), what)


def post_form(
    url: str, settings: Settings, what: str, data: dict[str, str], auth: tuple[str, str] | None
) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of a form POST (an OAuth error answer is a JSON body too)."""
    target = checked(url, settings, what)
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            response = client.post(
                target, data=data, auth=auth or httpx.USE_CLIENT_DEFAULT, headers={"Accept": "application/json"}
            )
    except httpx.HTTPError as failed:
        raise _no_answer(what, failed) from None
    return response.status_code, _json(response, what)


def _answer(send: Any, what: str) -> dict[str, Any]:
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            response: httpx.Response = send(client)
    except httpx.HTTPError as failed:
        raise _no_answer(what, failed) from None
    if response.status_code != 200:
        raise LaunchRefused(f"The EHR's {what} answered HTTP {response.status_code}.")
    return _json(response, what)


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    if len(response.content) > MAX_ANSWER_BYTES:
        raise LaunchRefused(f"The EHR's {what} answered more than {MAX_ANSWER_BYTES} bytes.")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LaunchRefused(f"The EHR's {what} did not answer a JSON object (HTTP {response.status_code}).")
    return body


def _no_answer(what: str, failed: httpx.HTTPError) -> LaunchRefused:
    return LaunchRefused(f"The EHR's {what} did not answer ({type(failed).__name__}); try the launch again.")
