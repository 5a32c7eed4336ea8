"""How to reach a patient, read from the FHIR R4 elements the hospital sent (Patient.telecom, address,
communication; kept as sent, see patient.py): the phones, the e-mail, the address, the preferred channel and the
preferred language a coordinator needs before a call.

R4 says a preference with ContactPoint.rank (1 is the most preferred; an unranked point comes after every ranked
one, datatypes.html#ContactPoint) and Patient.communication.preferred; a contact point or address whose use is
`old` is no longer valid and is left out. Nothing is invented: every value shown is one the sender wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# ContactPoint.system -> the channel in a coordinator's words.
CHANNELS = {"phone": "phone", "sms": "text message", "email": "e-mail", "fax": "fax", "pager": "pager"}


@dataclass(frozen=True)
class Phone:
    number: str
    use: str | None  # ContactPoint.use: home, work, mobile, temp


@dataclass(frozen=True)
class ContactSummary:
    phones: tuple[Phone, ...] = ()
    email: str | None = None
    address: str | None = None
    preferred_channel: str | None = None  # CHANNELS' words, from the contact point ranked first
    language: str | None = None


def contact_summary(
    telecom: Sequence[dict[str, Any]], addresses: Sequence[dict[str, Any]], communication: Sequence[dict[str, Any]]
) -> ContactSummary:
    points = _by_rank([p for p in telecom if isinstance(p.get("value"), str) and p.get("use") != "old"])
    ranked = [p for p in points if isinstance(p.get("rank"), int)]
    first = ranked[0].get("system") if ranked else None
    emails = [p["value"] for p in points if p.get("system") == "email"]
    return ContactSummary(
        phones=tuple(Phone(p["value"], p.get("use")) for p in points if p.get("system") in ("phone", "sms")),
        email=emails[0] if emails else None,
        address=_address(addresses),
        preferred_channel=CHANNELS.get(first) if isinstance(first, str) else None,
        language=_language(communication),
    )


def _by_rank(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank 1 first; unranked after every ranked point, in the order sent (sorted is stable)."""
    return sorted(points, key=lambda p: (0, p["rank"]) if isinstance(p.get("rank"), int) else (1, 0))


def _address(addresses: Sequence[dict[str, Any]]) -> str | None:
    current = [a for a in addresses if a.get("use") != "old"]
    homes = [a for a in current if a.get("use") == "home"]
    for address in homes + current:
        if isinstance(address.get("text"), str) and address["text"].strip():
            return str(address["text"])
        parts = [line for line in address.get("line") or [] if isinstance(line, str)]
        parts += [address[k] for k in ("city", "state", "postalCode", "country") if isinstance(address.get(k), str)]
        if parts:
            return ", ".join(parts)
    return None


def _language(communication: Sequence[dict[str, Any]]) -> str | None:
    preferred = [c for c in communication if c.get("preferred") is True]
    for entry in preferred + list(communication):
        language = entry.get("language")
        if not isinstance(language, dict):
            continue
        if isinstance(language.get("text"), str):
            return str(language["text"])
        for coding in language.get("coding") or []:
            if isinstance(coding, dict):
                found = coding.get("display") or coding.get("code")
                if isinstance(found, str):
                    return found
    return None
