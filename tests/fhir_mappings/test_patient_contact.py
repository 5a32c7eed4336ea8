"""How to reach a patient, read from telecom, address and communication as sent (fhir_mappings.patient_contact):
properties over any contact points, and the cases a coordinator meets (issue #21, item 2)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappings import contact_summary
from fhir_mappings.patient_contact import CHANNELS
from tests.examples_budget import examples

_SYSTEMS = ["phone", "sms", "email", "fax", "pager", "url", "other"]
_USES = [None, "home", "work", "mobile", "temp", "old"]


@st.composite
def contact_points(draw: st.DrawFn) -> dict[str, Any]:
    point: dict[str, Any] = {
        "system": draw(st.sampled_from(_SYSTEMS)),
        "value": draw(st.from_regex(r"[0-9a-z@.+ ]{1,12}", fullmatch=True)),
    }
    use = draw(st.sampled_from(_USES))
    rank = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=4)))
    return point | ({"use": use} if use else {}) | ({"rank": rank} if rank is not None else {})


def _order(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    current = [p for p in points if p.get("use") != "old"]
    ranked = sorted((p for p in current if "rank" in p), key=lambda p: p["rank"])
    return ranked + [p for p in current if "rank" not in p]


@settings(max_examples=examples(300), deadline=None, derandomize=True)
@given(st.lists(contact_points(), max_size=6))
def test_phones_email_and_channel_follow_rank_and_leave_old_points_out(points: list[dict[str, Any]]) -> None:
    found = contact_summary(points, [], [])
    ordered = _order(points)
    assert [(p.number, p.use) for p in found.phones] == [
        (p["value"], p.get("use")) for p in ordered if p["system"] in ("phone", "sms")
    ]
    emails = [p["value"] for p in ordered if p["system"] == "email"]
    assert found.email == (emails[0] if emails else None)
    ranked = [p for p in ordered if "rank" in p]
    assert found.preferred_channel == (CHANNELS.get(ranked[0]["system"]) if ranked else None)
    sent = {p["value"] for p in points}
    assert {p.number for p in found.phones} <= sent  # nothing invented


def test_the_cases_a_coordinator_meets() -> None:
    found = contact_summary(
        [
            {"system": "phone", "value": "+1 608 555 0100", "use": "home", "rank": 2},
            {"system": "phone", "value": "+1 608 555 0199", "use": "old", "rank": 1},  # no longer valid
            {"system": "sms", "value": "+1 608 555 0143", "use": "mobile", "rank": 1},
            {"system": "email", "value": "dana@example.org"},
        ],
        [
            {"use": "old", "text": "1 Old Road"},
            {"use": "work", "line": ["2 Office Park"], "city": "Madison"},
            {"use": "home", "line": ["12 Lake St", "Apt 3"], "city": "Madison", "state": "WI", "postalCode": "53703"},
        ],
        [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}},
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es", "display": "Spanish"}]},
                "preferred": True,
            },
        ],
    )
    assert [(p.number, p.use) for p in found.phones] == [("+1 608 555 0143", "mobile"), ("+1 608 555 0100", "home")]
    assert found.email == "dana@example.org"
    assert found.preferred_channel == "text message"
    assert found.address == "12 Lake St, Apt 3, Madison, WI, 53703"
    assert found.language == "Spanish"


def test_nothing_sent_is_nothing_shown() -> None:
    found = contact_summary([], [{"use": "old", "text": "gone"}], [{"language": {"text": "Dutch"}}])
    assert (found.phones, found.email, found.address, found.preferred_channel) == ((), None, None, None)
    assert found.language == "Dutch"
    assert contact_summary([{"system": "phone", "value": "1"}], [{"text": "Here"}], []).preferred_channel is None
