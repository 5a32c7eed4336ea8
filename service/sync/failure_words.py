"""A target's failures in an administrator's words: which host, and whether it refused the connection, timed out,
failed the TLS handshake, answered an HTTP error (with its OperationOutcome's text) or answered something that is
not FHIR. Used by the connection test and the sync page's outbox rows (stored errors)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx

from service.sync.client import UnsafeUrl

TEXT_CHARS = 600
# What httpx's transport errors, stored by name in an outbox row's message, mean.
TRANSPORT_WORDS = {
    "ConnectError": "could not connect (refused, unreachable or a failed TLS handshake)",
    "ConnectTimeout": "no connection within the time allowed (timeout)",
    "ReadTimeout": "connected, but no answer within the time allowed (timeout)",
    "WriteTimeout": "connected, but the request could not be sent in time (timeout)",
    "PoolTimeout": "no free connection to the EHR in time (timeout)",
    "RemoteProtocolError": "the EHR closed the connection without an answer",
    "ReadError": "the connection broke while the answer was read",
    "WriteError": "the connection broke while the request was sent",
}


def host_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname or '?'}:{port}"


def outcome_text(body: Any) -> str:
    """The EHR's words: an OperationOutcome's diagnostics or details, an OAuth error's description, else ''."""
    if not isinstance(body, dict):
        return ""
    issues = body.get("issue")
    if isinstance(issues, list):
        texts = [
            str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code") or "")
            for i in issues
            if isinstance(i, dict)
        ]
        return "; ".join(t for t in texts if t)[:TEXT_CHARS]
    if isinstance(body.get("error"), str):  # an OAuth token endpoint's error (RFC 6749 5.2)
        described = body.get("error_description")
        return (f"{body['error']}: {described}" if described else body["error"])[:TEXT_CHARS]
    return ""


def status_words(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def answer_words(url: str, status: int, body: Any) -> str:
    """An HTTP answer that is not a success, with what the EHR said."""
    said = outcome_text(body)
    return f"{host_of(url)} answered {status_words(status)}" + (f": {said}" if said else "")


def transport_words(error: Exception, url: str) -> str:
    """No answer: refused, timed out, TLS, DNS, or a URL Tandem will not contact."""
    host = host_of(url)
    text = str(error)
    lowered = text.lower()
    if isinstance(error, UnsafeUrl):
        return f"Tandem did not contact {host}: {text}"
    if isinstance(error, httpx.ConnectTimeout):
        return f"no connection to {host} within the time allowed (timeout)"
    if isinstance(error, httpx.TimeoutException):
        return f"{host} accepted the connection but did not answer within the time allowed (timeout)"
    if isinstance(error, httpx.ConnectError):
        if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
            return f"the TLS handshake with {host} failed: {text}"
        if "refused" in lowered or "errno 111" in lowered:
            return f"{host} refused the connection (nothing listens there)"
        if "name or service not known" in lowered or "getaddrinfo" in lowered or "nodename" in lowered:
            return f"the host name of {host} is not known (DNS)"
        return f"could not connect to {host}: {text or type(error).__name__}"
    if isinstance(error, httpx.HTTPError):
        name = type(error).__name__
        return f"{host}: {TRANSPORT_WORDS.get(name, name)}"
    return f"{host}: {text}"


def stored_error_words(last_error: dict[str, Any] | None, status_code: int | None, base_url: str) -> str:
    """An outbox row's stored error (service/sync/settling.py) in words: what failed, the HTTP status or the
    transport failure, and the EHR's OperationOutcome text."""
    if not last_error:
        return ""
    message = str(last_error.get("message") or last_error.get("note") or "")
    said = outcome_text(last_error.get("operation_outcome")) or outcome_text(last_error)
    if status_code is not None:
        words = f"{host_of(base_url)} answered {status_words(status_code)}"
        what = message.split(": HTTP", 1)[0] if ": HTTP" in message else message
        line = f"{what}: {words}" if what else words
    else:
        line = message
        for name, meaning in TRANSPORT_WORDS.items():
            if message.endswith(name) or f": {name}" in message or message.startswith(name):
                line = message.replace(name, f"{host_of(base_url)}: {meaning}", 1)
                break
    if said and said not in line:
        line = f"{line}. The EHR said: {said}" if line else said
    if not line:
        line = json.dumps(last_error, sort_keys=True)
    return line[:TEXT_CHARS]
