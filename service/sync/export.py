"""Population mode: back-loading a new programme by FHIR Bulk Data `$export` (Bulk Data Access IG v2).

Kick-off at the level the target declares (`Group/<id>/$export` when a group is given and offered, else
`Patient/$export`, else the system `$export`) with `Prefer: respond-async` and `_type` limited to what the target's
pull takes; the status URL (Content-Location) is polled honouring Retry-After; each NDJSON output is downloaded from
the target's origin only. Patients are taken first, then the other types in pull order, every line through the one
intake for its type (service/sync/taking.py), so the lines' references to the EHR's `Patient/<id>` resolve through
the source identifiers the Patient lines left; what is refused is quarantined like a pulled resource.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import Engine

from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync.capabilities import CAPABILITIES, CapabilityCache
from service.sync.client import FhirClient, UnsafeUrl
from service.sync.pull import (
    PULL_ORDER,
    SOURCES,
    KindSummary,
    Progress,
    PullError,
    PullSummary,
    counting_client,
    get,
    read_capabilities,
    retry_after,
    take_one,
    target_of,
)

NDJSON = "application/fhir+ndjson"
MAX_POLLS = 720  # with the EHR's Retry-After (capped at 120 s), hours at most
DEFAULT_POLL_SECONDS = 2.0


def bulk_export(
    engine: Engine,
    settings: Settings,
    target_id: str,
    *,
    tenant_id: str | None = None,
    group: str | None = None,
    client: FhirClient | None = None,
    capability_cache: CapabilityCache = CAPABILITIES,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> PullSummary:
    """`progress(name, counts)` is told after each line of an output file (the command's progress bar)."""
    target = target_of(engine, target_id, tenant_id)
    with counting_client(target, settings, client, PullSummary(target_id)) as (ehr, summary):
        try:
            _export(engine, settings, target, ehr, group, capability_cache, sleep, summary, progress)
        except (httpx.HTTPError, PullError, UnsafeUrl) as error:
            summary.errors.append(f"$export: {type(error).__name__}: {error}")
    return summary


def _export(
    engine: Engine,
    settings: Settings,
    target: SyncTarget,
    client: FhirClient,
    group: str | None,
    cache: CapabilityCache,
    sleep: Callable[[float], None],
    summary: PullSummary,
    progress: Progress | None = None,
) -> None:
    capabilities = read_capabilities(client, cache, sleep)
    levels = capabilities.export_levels
    if group is not None and "group" in levels:
        kickoff = f"Group/{group}/$export"
    elif group is None and "patient" in levels:
        kickoff = "Patient/$export"
    elif group is None and "system" in levels:
        kickoff = "$export"
    else:
        offered = ", ".join(sorted(levels)) or "none"
        raise PullError(f"the target declares no $export at that level (declared: {offered})")
    wanted = [SOURCES[k] for k in PULL_ORDER if k in target.pull]
    types = list(dict.fromkeys(source.fhir_type for source in wanted))
    headers = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
    started = client.request("GET", kickoff, params={"_type": ",".join(types)}, headers=headers)
    location = started.headers.get("Content-Location")
    if started.status_code != 202 or not location:
        raise PullError(f"kick-off {kickoff}: HTTP {started.status_code} (expected 202 with Content-Location)")
    manifest = _wait(client, location, sleep, summary)
    outputs = [o for o in manifest.get("output") or [] if isinstance(o, dict) and o.get("type") in types]
    outputs.sort(key=lambda o: types.index(str(o["type"])))
    for output in outputs:
        resource_type = str(output["type"])
        name = f"export:{resource_type}"
        result = summary.kinds.setdefault(name, KindSummary())
        exchange = get(client, str(output["url"]), None, sleep, {"Accept": NDJSON})
        if not exchange.ok:
            result.errors.append(f"download {resource_type}: HTTP {exchange.status_code}")
            continue
        result.pages += 1
        for number, line in enumerate(exchange.content.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except ValueError:
                result.errors.append(f"{resource_type} line {number}: not JSON")
                continue
            if (
                not isinstance(resource, dict)
                or resource.get("resourceType") != resource_type
                or not resource.get("id")
            ):
                result.errors.append(f"{resource_type} line {number}: not a {resource_type} with an id")
                continue
            result.fetched += 1
            take_one(engine, settings, target, resource, result)
            if progress is not None:
                progress(name, result)


def _wait(client: FhirClient, location: str, sleep: Callable[[float], None], summary: PullSummary) -> dict[str, Any]:
    for _ in range(MAX_POLLS):
        exchange = client.request("GET", location, headers={"Accept": "application/json"})
        if exchange.status_code == 200 and isinstance(exchange.body, dict):
            return exchange.body
        if exchange.status_code in (202, 429, 503):
            if exchange.status_code != 202:
                summary.throttled += 1
            header = exchange.headers.get("Retry-After")
            sleep(retry_after(header) if header else DEFAULT_POLL_SECONDS)
            continue
        raise PullError(f"export status: HTTP {exchange.status_code}")
    raise PullError(f"export not complete after {MAX_POLLS} polls")
