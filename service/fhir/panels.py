"""US Core panels in a Bundle: a panel Observation (PHQ-9 44249-1) POSTed with its hasMember Observations beside it
is taken in as ONE score Observation (fhir_mappings.fold_panel: the total member's value, the item members as
components), so the panel is one scored response, not ten refusals of item rows that are not totals.

The members' entries run nothing: each answers with the panel's outcome (its status 200 and location), so a
sender sees where every member went. A panel whose members are not all in the Bundle is left alone and refused by
the Observation intake with the way to send it.
"""

from __future__ import annotations

import copy
from typing import Any

import fhir_mappings as fm
from service.instruments import PANEL_TOTALS, TOTAL_CODES


def fold_panels(entries: list[Any]) -> tuple[list[Any], dict[int, int]]:
    """The entries with each complete panel folded into its own entry, and member entry -> its panel's entry."""
    posted = {n: e["resource"] for n, e in enumerate(entries) if _posted_observation(e)}
    by_name: dict[str, int] = {}
    for n, resource in posted.items():
        full_url = entries[n].get("fullUrl")
        if isinstance(full_url, str):
            by_name[full_url] = n
        if isinstance(resource.get("id"), str):
            by_name[f"Observation/{resource['id']}"] = n
    folded: list[Any] = list(entries)
    members: dict[int, int] = {}
    for n, panel in posted.items():
        try:
            references = fm.member_references(panel)
        except fm.MappingError:
            continue  # the intake refuses it, located
        found = [_member(reference, by_name) for reference in references]
        if not references or None in found or n in found:
            continue
        indexes = [m for m in found if m is not None]
        entry = copy.copy(entries[n])
        entry["resource"] = fm.fold_panel(panel, [posted[m] for m in indexes], TOTAL_CODES, PANEL_TOTALS)
        folded[n] = entry
        members |= dict.fromkeys(indexes, n)
    return folded, members


def member_answer(panel_answer: dict[str, Any], panel_index: int) -> dict[str, Any]:
    """A member's response entry: where its panel went."""
    response = {k: v for k, v in panel_answer.get("response", {}).items() if k != "outcome"}
    if str(response.get("status", "")).startswith("201"):
        response["status"] = "200"
    note = f"taken in with the panel at Bundle.entry[{panel_index}], as one of its items or its total"
    response["outcome"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": note}],
    }
    return {"response": response}


def _posted_observation(entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
        return False
    request = entry.get("request")
    return (
        isinstance(request, dict)
        and request.get("method") == "POST"
        and entry["resource"].get("resourceType") == "Observation"
    )


def _member(reference: str, by_name: dict[str, int]) -> int | None:
    if reference in by_name:
        return by_name[reference]
    parsed = fm.parse_reference(reference)
    return by_name.get(f"Observation/{parsed[1]}") if parsed is not None and parsed[0] == "Observation" else None
