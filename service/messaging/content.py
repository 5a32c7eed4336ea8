"""What a patient reads: the words of an invitation and of its reminder, by e-mail (plain text and simple HTML)
and by text message. Pure: no database, no network.

Nothing clinical goes in, because an e-mail or a text is read on a lock screen, on a shared family tablet, by an
employer's mail server: the issue's wording, "your care team asked you to complete a short questionnaire", the
link and when it expires, and nothing more.
- No instrument name: "PHQ-9", "C-SSRS" or "depression questionnaire" says the reader is being treated for
  depression or screened for suicide risk; "a short questionnaire" says neither.
- No patient name, not even in the greeting: a greeting by name adds nothing the patient needs and makes the
  message readable as "about Sam Rivera" by whoever sees it; the link page itself shows no name either.
- No hospital or programme name: a "ketamine clinic" in the sender line is clinical content. The From address
  (TANDEM_SMTP_FROM) is the hospital's choice.
- No remote images or tracking: the HTML part is text and one link, styled inline.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from zoneinfo import ZoneInfo

SUBJECT = {
    "invitation": "A short questionnaire from your care team",
    "reminder": "Reminder: a short questionnaire from your care team",
}


@dataclass(frozen=True)
class MessageText:
    subject: str
    plain: str
    html: str
    sms: str


def local_expiry(expires_at: datetime, zone: str) -> str:
    """'Saturday 5 December 2026 at 18:00 (America/Chicago)': when the link stops working, where the patient is."""
    local = expires_at.astimezone(ZoneInfo(zone))
    return f"{local:%A} {local.day} {local:%B %Y at %H:%M} ({zone})"


def message_text(kind: str, *, link: str, expires_at: datetime, zone: str) -> MessageText:
    expiry = local_expiry(expires_at, zone)
    opening = "Your care team asked you to complete a short questionnaire."
    if kind == "reminder":
        opening = "A reminder: your care team asked you to complete a short questionnaire."
    lines = [
        "Hello,",
        "",
        opening,
        "",
        "Open this link to answer it:",
        link,
        "",
        f"The link can be used once and expires on {expiry}.",
        "",
        "If you were not expecting this message, you can ignore it.",
    ]
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(SUBJECT[kind])}</title></head>
<body style="font-family: sans-serif; font-size: 16px; line-height: 1.5; color: #1a1a1a">
<p>Hello,</p>
<p>{html.escape(opening)}</p>
<p><a href="{html.escape(link, quote=True)}">Answer the questionnaire</a></p>
<p>Or copy this link into your browser: {html.escape(link)}</p>
<p>The link can be used once and expires on {html.escape(expiry)}.</p>
<p>If you were not expecting this message, you can ignore it.</p>
</body></html>
"""
    sms = f"{opening} {link} (the link can be used once and expires {expiry})"
    return MessageText(SUBJECT[kind], "\n".join(lines) + "\n", body, sms)


def email_message(text: MessageText, *, sender: str, to: str, correlation_id: str) -> EmailMessage:
    """A multipart/alternative e-mail: the plain text first, the HTML as the alternative."""
    message = EmailMessage()
    message["Subject"] = text.subject
    message["From"] = sender
    message["To"] = to
    domain = sender.rsplit("@", 1)[-1].strip(">") or None
    message["Message-ID"] = make_msgid(idstring=correlation_id.replace("-", ""), domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message.set_content(text.plain)
    message.add_alternative(text.html, subtype="html")
    return message
