"""What each EHR receives for urgent findings and the progress note, decided from its CapabilityStatement by the one
capability decision (service/sync/capabilities.py decide): Epic, Oracle Health, a FHIR server taking everything,
one taking only Flags, and one taking nothing."""

from __future__ import annotations

from typing import Any

from service.record_fhir import Kind
from service.sync.capabilities import Capabilities, TypeSupport, decide, parse_capabilities
from service.sync.connection_check import verdicts
from tests.ehr_peer.strict_ehr import epic_statement, oracle_statement


def only(*types: str, updates: bool = True) -> Capabilities:
    writes = frozenset({"create", "update"} if updates else {"create"})
    support = TypeSupport(writes, identifier_search=True, update_create=False)
    return Capabilities(types=dict.fromkeys(types, support), batch=False, transaction=False)


def verdict(statement: dict[str, Any], kind: str) -> Any:
    [found] = [v for v in verdicts(parse_capabilities(statement), [kind]) if v.kind == kind]
    return found


def test_epic_gets_a_message_per_finding_without_flags_and_the_progress_note() -> None:
    findings = verdict(epic_statement(), Kind.URGENT_FINDINGS)
    assert (findings.mapping, findings.sent_as, findings.left_out) == ("natural", ("Communication",), ("Flag",))
    assert findings.pushed
    note = verdict(epic_statement(), Kind.PROGRESS_NOTES)
    assert (note.mapping, note.sent_as) == ("natural", ("DocumentReference",))


def test_oracle_health_gets_neither_and_the_decision_says_why() -> None:
    """Oracle Health creates Communications and DocumentReferences but cannot search either by identifier (nor
    update-as-create them): a retried create could duplicate the message, so neither is sent; it writes no Flag."""
    findings = verdict(oracle_statement(), Kind.URGENT_FINDINGS)
    assert findings.mapping == "not_supported"
    assert "creates Communication but cannot search it by identifier" in findings.reason
    assert "the target accepts no Flag writes" in findings.reason
    note = verdict(oracle_statement(), Kind.PROGRESS_NOTES)
    assert note.mapping == "not_supported"
    assert "creates DocumentReference but cannot search it by identifier" in note.reason


def test_a_server_taking_everything_gets_messages_and_flags() -> None:
    decision = decide(Kind.URGENT_FINDINGS, only("Communication", "Flag", "DocumentReference"))
    assert decision.mapping == "natural" and decision.sent_types == {"Communication", "Flag"}


def test_a_server_taking_only_flags_gets_the_flags_as_the_fallback() -> None:
    decision = decide(Kind.URGENT_FINDINGS, only("Flag"))
    assert decision.mapping == "fallback" and decision.sent_types == {"Flag"}
    assert decision.reason is not None and "sending each urgent finding as a Flag" in decision.reason
    assert "the target accepts no Communication writes" in decision.reason


def test_nothing_fits_is_not_supported_with_both_reasons() -> None:
    findings, note = (decide(kind, only("Observation")) for kind in (Kind.URGENT_FINDINGS, Kind.PROGRESS_NOTES))
    assert findings.mapping == note.mapping == "not_supported"
    assert findings.reason is not None and "no Communication writes" in findings.reason and "Flag" in findings.reason
    assert note.reason == "the target accepts no DocumentReference writes"


def test_a_message_the_target_creates_but_does_not_update_is_still_sent() -> None:
    """Epic's case: the create is idempotent (identifier search); an acknowledgement cannot reach its copy."""
    decision = decide(Kind.URGENT_FINDINGS, only("Communication", updates=False))
    assert decision.mapping == "natural" and decision.strategies == {"Communication": "search-create"}
