"""Which channel and address a message goes to, from the patient's contact points as the hospital sent them
(Patient.telecom, kept as sent) and the channels this installation has configured. Pure.

The patient's preference is the contact point ranked first (fhir_mappings/patient_contact.py): ranked first an
e-mail goes by e-mail, a text-message number (system `sms`, or a `mobile` phone) by text. Without a usable
preference (none, a landline, fax), e-mail first, then text. A preferred channel that is not configured here, or
has no address, falls back to the other one. Nothing usable: the words say why, and the message is not sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import fhir_mappings as fm

Channel = Literal["email", "sms"]
CHANNELS: tuple[Channel, ...] = ("email", "sms")
WORDS = {"email": "e-mail", "sms": "text message"}
A_WORD = {"email": "an e-mail", "sms": "a text message"}
MISSING = {"email": "no e-mail address", "sms": "no mobile number"}
SETTING = {"email": "TANDEM_SMTP_HOST", "sms": "TANDEM_SMS_WEBHOOK_URL"}
# fhir_mappings.contact_summary's words for the contact point ranked first -> our channel.
PREFERRED: dict[str, Channel] = {"e-mail": "email", "text message": "sms"}


@dataclass(frozen=True)
class Destination:
    channel: Channel
    address: str


@dataclass(frozen=True)
class NoDestination:
    reason: str  # "cannot be sent: no e-mail address", …


def text_numbers(telecom: Sequence[dict[str, Any]]) -> list[str]:
    """Numbers that take text messages, the preferred first: system sms, or a phone whose use is mobile."""
    points = [
        p
        for p in telecom
        if isinstance(p.get("value"), str)
        and p.get("use") != "old"
        and (p.get("system") == "sms" or (p.get("system") == "phone" and p.get("use") == "mobile"))
    ]
    points.sort(key=lambda p: (0, p["rank"]) if isinstance(p.get("rank"), int) else (1, 0))
    return [str(p["value"]) for p in points]


def destination(
    telecom: Sequence[dict[str, Any]], *, requested: str = "preferred", configured: Sequence[Channel]
) -> Destination | NoDestination:
    """Where the message goes. `requested`: the invitation's channel (preferred, email or sms): a named one is
    the only one tried."""
    summary = fm.contact_summary(telecom, [], [])
    addresses: dict[Channel, str | None] = {
        "email": summary.email,
        "sms": next(iter(text_numbers(telecom)), None),
    }
    order: list[Channel]
    if requested in ("email", "sms"):
        order = [requested]  # type: ignore[list-item]
    else:
        preferred = PREFERRED.get(summary.preferred_channel or "")
        if preferred is None and summary.preferred_channel == "phone" and addresses["sms"] is not None:
            preferred = "sms"  # a mobile ranked first: the patient can be reached on it by text
        order = [preferred] if preferred else []
        order += [c for c in CHANNELS if c not in order]
    for channel in order:
        address = addresses[channel]
        if channel in configured and address:
            return Destination(channel, address)
    usable = [c for c in order if c in configured]
    if not usable:
        if len(order) == 1:
            return NoDestination(f"cannot be sent: {WORDS[order[0]]} ({SETTING[order[0]]}) is not configured")
        names = " nor ".join(f"{WORDS[c]} ({SETTING[c]})" for c in order)
        return NoDestination(f"cannot be sent: neither {names} is configured")
    missing = " or ".join(MISSING[c] for c in usable)
    elsewhere = [c for c in order if c not in configured and addresses[c]]
    if elsewhere:
        missing += f" (the patient has {A_WORD[elsewhere[0]]} contact, but that channel is not configured)"
    return NoDestination(f"cannot be sent: {missing}")
