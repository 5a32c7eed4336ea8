"""E-mail over SMTP (Python's smtplib): plain, STARTTLS or implicit TLS, certificates verified, optional login,
everything from the settings (the environment). Blocking: called from the sweep's thread, never from a request.

A reply code of 4xx is temporary (try again later), 5xx permanent (RFC 5321 §4.2.1): a permanent refusal makes
the message a dead letter at once; a temporary one, a connection that fails or times out, or a TLS handshake
that fails is retried with backoff.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from service.messaging.failure import SendFailure
from service.settings import Settings

REPLY_CHARS = 300


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Verifying the server's certificate and name, against the system's CAs or TANDEM_SMTP_CA_FILE."""
    return ssl.create_default_context(cafile=settings.smtp_ca_file)


def send_email(settings: Settings, message: EmailMessage) -> str:
    """Hand the message to the configured server; returns what happened in words, or raises SendFailure."""
    host = settings.smtp_host
    if not host:
        raise SendFailure("e-mail is not configured (TANDEM_SMTP_HOST)", retryable=False)
    where = f"SMTP {host}:{settings.smtp_port}"
    timeout = settings.smtp_timeout_seconds
    try:
        server: smtplib.SMTP
        if settings.smtp_tls == "tls":
            server = smtplib.SMTP_SSL(host, settings.smtp_port, timeout=timeout, context=tls_context(settings))
        else:
            server = smtplib.SMTP(host, settings.smtp_port, timeout=timeout)
        with server:
            if settings.smtp_tls == "starttls":
                server.ehlo()
                server.starttls(context=tls_context(settings))
                server.ehlo()
            if settings.smtp_username:
                server.login(settings.smtp_username, settings.smtp_password or "")
            server.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        code = max(codes) if codes else 550
        raise SendFailure(f"{where} refused the recipient (reply {code})", retryable=code < 500, code=code) from None
    except smtplib.SMTPNotSupportedError as error:
        # starttls() without the extension, or login() on a server that offers no AUTH: configuration, not luck.
        words = f"{where}: {error} (check TANDEM_SMTP_TLS and TANDEM_SMTP_USERNAME)"
        raise SendFailure(words, retryable=False) from None
    except smtplib.SMTPResponseException as error:
        reply = _reply(error.smtp_error)
        code = int(error.smtp_code)
        raise SendFailure(f"{where} answered {code} {reply}", retryable=code < 500, code=code) from None
    except ssl.SSLError as error:
        raise SendFailure(f"{where}: TLS failed ({error.reason or error})", retryable=True) from None
    except (smtplib.SMTPException, OSError) as error:
        raise SendFailure(f"{where}: {type(error).__name__}: {error}"[:REPLY_CHARS], retryable=True) from None
    return f"sent by e-mail through {where}"


def _reply(text: bytes | str) -> str:
    value = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return " ".join(value.split())[:REPLY_CHARS]
