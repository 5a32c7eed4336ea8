"""The dry run: the requests delivering a record would make now, listed and not sent (POST …/dry-run).

Read from the same plan the worker delivers (planning.py) and the same outgoing bodies, so what an admin sees is
what would go; where the answer of a search decides between requests, both are listed with when each applies.
"""

from __future__ import annotations

from typing import Any

from service.sync.delivery import STRICT
from service.sync.planning import RecordPlan, outgoing_body
from service.sync.tables import RemoteResource


def dry_run_requests(
    plan: RecordPlan, known: dict[str, str], delivered: dict[str, RemoteResource], *, base_url: str, use_batch: bool
) -> list[dict[str, Any]]:
    """The requests delivering this record would make now (the search decides between the create and the update
    at run time: both are listed, the update with the EHR id we know, if any)."""
    known = dict(known)  # grows as the listed requests would create resources
    base = base_url.rstrip("/")
    requests: list[dict[str, Any]] = []
    for resource in plan.resources:
        done = delivered.get(resource.role)
        if resource.strategy == "put-client-id":
            headers = {"If-Match": f'W/"{done.remote_version}"'} if done and done.remote_version else {}
            requests.append(
                {
                    "method": "PUT",
                    "url": f"{base}/{resource.resource_type}/{resource.local_id}",
                    "headers": headers,
                    "body": outgoing_body(resource, known, resource.local_id),
                }
            )
        else:
            requests.append(
                {
                    "method": "GET",
                    "url": f"{base}/{resource.resource_type}?identifier={resource.identifier_query}",
                    "headers": dict(STRICT),
                    "when": "always: finds a copy made by an earlier attempt",
                }
            )
            if done is not None:
                requests.append(
                    {
                        "method": "PUT",
                        "url": f"{base}/{resource.resource_type}/{done.remote_id}",
                        "headers": {"If-Match": f'W/"{done.remote_version}"'} if done.remote_version else {},
                        "body": outgoing_body(resource, known, done.remote_id),
                        "when": "the search finds it and this record version was not delivered yet",
                    }
                )
            requests.append(
                {
                    "method": "POST",
                    "url": f"{base}/{resource.resource_type}",
                    "headers": {},
                    "body": outgoing_body(resource, known, None),
                    "when": "the search finds nothing"
                    + (
                        " (in batch mode: one batch Bundle entry with ifNoneExist instead of the search)"
                        if use_batch
                        else ""
                    ),
                }
            )
        known.setdefault(
            resource.local_reference, f"{resource.resource_type}/{done.remote_id if done else resource.local_id}"
        )
    return requests
