"""Text messages through the hospital's SMS gateway: a webhook, no provider bundled. Tandem POSTs
`{"to": "<number as the hospital sent it>", "body": "<text>"}` as JSON to TANDEM_SMS_WEBHOOK_URL; the gateway
sends it on.

The gateway knows it is us by TANDEM_SMS_WEBHOOK_SECRET: as `Authorization: Bearer <secret>`
(TANDEM_SMS_WEBHOOK_AUTH=bearer), or (hmac, the default: the secret never travels) as
`X-Tandem-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Tandem-Timestamp>." + body)>` with the Unix time in
`X-Tandem-Timestamp`, so the gateway can refuse a replayed or altered request. The URL is checked like an EHR's
before every request (service/sync/url_safety.py: no loopback or private hosts unless allowed, https), and
redirects are not followed.

2xx is sent; 408, 429 and 5xx (and no answer) are retried with backoff, honouring Retry-After; any other answer
is a dead letter at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from service.errors import InvalidRequest
from service.messaging.failure import SendFailure
from service.settings import Settings
from service.sync.url_safety import Resolver, check_target_url, system_resolver

RETRIED = (408, 429)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def send_sms(
    settings: Settings,
    http: httpx.Client,
    *,
    to: str,
    body: str,
    correlation_id: str,
    resolve: Resolver = system_resolver,
) -> str:
    if not settings.sms_webhook_url or not settings.sms_webhook_secret:
        raise SendFailure("text messages are not configured (TANDEM_SMS_WEBHOOK_URL)", retryable=False)
    try:
        url = check_target_url(
            settings.sms_webhook_url,
            field="TANDEM_SMS_WEBHOOK_URL",
            allowed_hosts=settings.sync_allowed_hosts,
            require_https=settings.sync_require_https,
            resolve=resolve,
        )
    except InvalidRequest as error:
        # Configuration, or DNS that may come back: retried, so a fix within the retry window still sends it.
        raise SendFailure(f"SMS gateway refused: {error}", retryable=True) from None
    raw = json.dumps({"to": to, "body": body}, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "X-Correlation-ID": correlation_id}
    secret = settings.sms_webhook_secret
    if settings.sms_webhook_auth == "bearer":
        headers["Authorization"] = f"Bearer {secret}"
    else:
        timestamp = str(int(time.time()))
        headers["X-Tandem-Timestamp"] = timestamp
        headers["X-Tandem-Signature"] = signature(secret, timestamp, raw)
    where = f"SMS gateway {httpx.URL(url).host}"
    try:
        response = http.post(url, content=raw, headers=headers)
    except httpx.HTTPError as error:
        raise SendFailure(f"{where}: {type(error).__name__}", retryable=True) from None
    status = response.status_code
    if 200 <= status < 300:
        return f"sent by text message through {where}"
    retryable = status in RETRIED or status >= 500
    retry_after = response.headers.get("Retry-After")
    raise SendFailure(f"{where} answered HTTP {status}", retryable=retryable, code=status, retry_after=retry_after)
