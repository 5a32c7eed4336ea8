"""Bundles out (searchset, history) and in (batch, transaction).

A transaction runs every entry in the request's unit of work (all or nothing), in the order FHIR R4 prescribes
(http.html#trules: DELETE, then POST, then PUT/PATCH, then GET/HEAD), resolving urn:uuid references between
entries; its response lists the entries in request order. A batch runs each entry in a savepoint of its own and
reports each outcome. Neither commits: the edge commits the unit once the whole Bundle is answered.

Derived data (plan statuses, CarePlans, Flags) is refreshed once per changed patient: the writes ask for it, and
every GET entry runs the pending refreshes before it reads, so it sees what the earlier entries produced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from service.api.operation_outcome import operation_outcome
from service.audit_trail import RequestContext, record_refusal
from service.auth.scopes import includes_patient
from service.db.unit_of_work import UnitOfWork
from service.errors import FieldProblem, InvalidRequest, TandemError, TooCostly, invalid
from service.fhir import interactions, paging
from service.fhir.bundle_costs import ChargeRequests, ResponseBudget, refuse_if_costly
from service.fhir.bundle_sources import URI_SYSTEM, sources_carried
from service.fhir.conditional_references import resolve_conditional_references
from service.fhir.interactions import Outcome, SearchResult
from service.fhir.panels import fold_panels, member_answer
from service.projection.tables import FhirResourceVersion
from service.records.sources import expect_sources


def http_date(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


def searchset(result: SearchResult, base: str, resource_type: str) -> dict[str, Any]:
    query = result.query

    def link(offset: int, cursor: paging.Cursor | None = None) -> str:
        unique = list(dict.fromkeys(p for p in query.applied if p[0] != "_count"))
        where = ("_cursor", cursor.encode()) if cursor is not None else ("_offset", str(offset))
        return f"{base}/{resource_type}?{urlencode([*unique, ('_count', str(query.count)), where])}"

    links = [{"relation": "self", "url": link(query.offset, query.cursor)}]
    if result.more:
        # Absolute: clients such as fhirclient refuse relative paging links.
        position = query.offset + query.count
        if query.sort in paging.KEYSET_SORTS and result.matches:
            last = result.matches[-1]
            cursor = paging.Cursor(query.sort, position, last.last_updated, last.resource_id)
            links.append({"relation": "next", "url": link(position, cursor)})
        else:
            links.append({"relation": "next", "url": link(position)})
    if query.offset > 0:
        links.append({"relation": "previous", "url": link(max(0, query.offset - query.count))})
    entries = [_entry(row, base, "match") for row in result.matches]
    entries += [_entry(row, base, "include") for row in result.included]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:  # omitted when it was not counted (search.SearchPage)
        bundle["total"] = result.total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(row: FhirResourceVersion, base: str, mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{row.resource_type}/{row.resource_id}",
        "resource": row.body,
        "search": {"mode": mode},
    }


def history_bundle(rows: list[FhirResourceVersion], base: str) -> dict[str, Any]:
    entries = []
    for row in rows:
        entry: dict[str, Any] = {
            "fullUrl": f"{base}/{row.resource_type}/{row.resource_id}",
            "request": {
                "method": "DELETE" if row.deleted else ("POST" if row.version_id == 1 else "PUT"),
                "url": f"{row.resource_type}/{row.resource_id}",
            },
            "response": {
                "status": "410 Gone" if row.deleted else "200 OK",
                "lastModified": row.last_updated.isoformat(),
            },
        }
        if not row.deleted:
            entry["resource"] = row.body
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "history", "total": len(rows), "entry": entries}


# ---- batch and transaction ----------------------------------------------------------------------------------


def process_bundle(
    session: UnitOfWork,
    ctx: RequestContext,
    bundle: dict[str, Any],
    *,
    max_entries: int,
    authorize: Callable[[str, str], None],
    charge: ChargeRequests | None = None,
) -> dict[str, Any]:
    """charge: the rate limiter's hook; each entry counts as one request (the Bundle itself was one)."""
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise invalid("Bundle.type", "POST /fhir takes a batch or transaction Bundle")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise invalid("Bundle.entry", "must be a list")
    if len(entries) > max_entries:
        raise invalid("Bundle.entry", f"{len(entries)} entries; at most {max_entries} per Bundle")
    refuse_if_costly(entries, ctx.settings)  # before any entry runs
    if charge is not None and len(entries) > 1:
        charge(len(entries) - 1)
    entries, members = fold_panels(entries)  # a US Core panel and its members: one score Observation
    expect_sources(session, ctx.tenant_id, sources_carried(entries))  # each resend lookup: one SELECT a table
    if kind == "batch":
        return _batch(session, ctx, entries, authorize, members)
    return _transaction(session, ctx, entries, authorize, members)


def _batch(
    session: UnitOfWork,
    ctx: RequestContext,
    entries: list[Any],
    authorize: Callable[[str, str], None],
    members: dict[int, int],
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    budget = ResponseBudget(ctx.settings)
    for n, entry in enumerate(entries):
        if n in members:
            results.append({})  # answered with its panel, below
            continue
        try:
            with session.savepoint():  # a refused entry leaves no row and no pending refresh behind
                answer = _response_entry(_run(session, ctx, entry, n, {}, authorize))
        except TandemError as error:
            record_refusal(session, ctx, error.status_code)
            answer = _error_entry(error)
        # Over budget: the entries already run stand (a batch's entries are independent), the rest do not run.
        results.append(budget.add(n, answer))
    for n, panel in members.items():
        results[n] = budget.add(n, member_answer(results[panel], panel))
    return {"resourceType": "Bundle", "type": "batch-response", "entry": results}


def transaction_order(entries: list[Any]) -> list[int]:
    """The entries' indexes in FHIR R4's processing order (http.html#trules): deletes, creates, updates, reads;
    entries of one method keep their request order, so later creates can refer to earlier ones, except that the
    Patients created come first: every other resource refers to its patient (by urn:uuid or a conditional
    reference), a Patient to nothing in the Bundle, and R4 leaves the order within a method to the server."""
    return sorted(range(len(entries)), key=lambda n: _rank(entries[n], n))


def _rank(entry: Any, n: int) -> tuple[int, bool]:
    method = _method(entry, n)
    resource = entry.get("resource") if method == "POST" else None
    return METHOD_RANK[method], not (isinstance(resource, dict) and resource.get("resourceType") == "Patient")


def _transaction(
    session: UnitOfWork,
    ctx: RequestContext,
    entries: list[Any],
    authorize: Callable[[str, str], None],
    members: dict[int, int],
) -> dict[str, Any]:
    order = [n for n in transaction_order(entries) if n not in members]
    replacements: dict[str, str] = {}
    outcomes: dict[int, Outcome] = {}
    answers: dict[int, dict[str, Any]] = {}
    budget = ResponseBudget(ctx.settings)
    try:
        for n in order:
            outcomes[n] = _run(session, ctx, entries[n], n, replacements, authorize)
            answers[n] = budget.add(n, _response_entry(outcomes[n]))  # over budget: rolled back, nothing written
            full_url = entries[n].get("fullUrl") if isinstance(entries[n], dict) else None
            location = outcomes[n].location
            if isinstance(full_url, str) and full_url.startswith("urn:uuid:") and location:
                replacements[full_url] = "/".join(location.split("/")[:2])
            for member in (m for m, panel in members.items() if panel == n):
                answers[member] = budget.add(member, member_answer(answers[n], n))
                member_url = entries[member].get("fullUrl")
                if isinstance(member_url, str) and member_url.startswith("urn:uuid:") and location:
                    replacements[member_url] = "/".join(location.split("/")[:2])
        session.refresh_pending()  # before the answer: a failing refresh fails the transaction, not the commit
    except TooCostly:
        raise  # the edge rolls the unit back
    except TandemError as error:
        failed = next((n for n in order if n not in outcomes), None)
        if isinstance(error, InvalidRequest):
            error.problems = [
                FieldProblem(
                    p.field if p.field.startswith("Bundle.") else f"Bundle.entry[{failed}].{p.field}",
                    p.message,
                    p.issue_code,
                )
                for p in error.problems
            ]
            error.message = error.problems[0].field + ": " + error.problems[0].message
        else:
            error.message = f"Bundle.entry[{failed}]: {error.message} (the transaction changed nothing)"
        raise
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [answers[n] for n in range(len(entries))],
    }


METHOD_RANK = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3}


def _method(entry: Any, n: int) -> str:
    request = entry.get("request") if isinstance(entry, dict) else None
    method = request.get("method") if isinstance(request, dict) else None
    if method not in METHOD_RANK:
        raise invalid(f"Bundle.entry[{n}].request.method", "supported: DELETE, POST, PUT, GET")
    return str(method)


def _run(
    session: UnitOfWork,
    ctx: RequestContext,
    entry: Any,
    n: int,
    replacements: dict[str, str],
    authorize: Callable[[str, str], None],
) -> Outcome:
    method = _method(entry, n)
    url = str(entry["request"].get("url") or "")
    parts = urlsplit(url)
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise invalid(f"Bundle.entry[{n}].request.url", "names no resource type")
    resource_type = path[0]
    # as sent alone: Type/id is a read (r), Type?query a search (s), and _include of the patient reads Patient
    searching = method == "GET" and len(path) != 2
    interaction = {"GET": "read", "POST": "create", "PUT": "update", "DELETE": "delete"}[method]
    authorize(resource_type, "search" if searching else interaction)
    if searching and includes_patient(parse_qsl(parts.query)):
        authorize("Patient", "read")
    if method == "GET":
        session.refresh_pending()  # this entry sees the plan statuses and CarePlans the earlier entries produced
        return _get(session, ctx, resource_type, path, parse_qsl(parts.query), n)
    if method == "DELETE":
        if len(path) != 2:
            raise invalid(f"Bundle.entry[{n}].request.url", "a DELETE names Type/id")
        return interactions.delete(session, ctx, resource_type, path[1])
    resource = entry.get("resource")
    if not isinstance(resource, dict):
        raise invalid(f"Bundle.entry[{n}].resource", f"a {method} entry needs a resource")
    resource = _resolve_references(resource, replacements)
    # Located in the Bundle (a refusal names Bundle.entry[n].resource.…), before the interaction sees the resource.
    resource = resolve_conditional_references(session, ctx, resource, f"Bundle.entry[{n}].resource")
    if method == "POST":
        if_none_exist = entry["request"].get("ifNoneExist")
        full_url = entry.get("fullUrl")
        # An entry's urn:uuid names it in this Bundle: a resent Bundle then finds what it created (RFC 3986 URI).
        named = (URI_SYSTEM, full_url) if isinstance(full_url, str) and full_url.startswith("urn:uuid:") else None
        return interactions.create(
            session, ctx, resource_type, resource, if_none_exist=if_none_exist, default_source=named
        )
    if len(path) != 2:
        raise invalid(f"Bundle.entry[{n}].request.url", "a PUT names Type/id")
    return interactions.update(session, ctx, resource_type, path[1], resource, if_match=entry["request"].get("ifMatch"))


def _get(
    session: UnitOfWork, ctx: RequestContext, resource_type: str, path: list[str], query: list[tuple[str, str]], n: int
) -> Outcome:
    """A GET entry is the same interaction as the request sent alone: search, read, history or vread."""
    if len(path) == 1:
        result = interactions.search(session, ctx, resource_type, query, strict=False)
        return Outcome(status=200, resource=searchset(result, "", resource_type))
    if len(path) == 2:
        return interactions.read(session, ctx, resource_type, path[1])
    if len(path) == 3 and path[2] == "_history":
        rows = interactions.history(session, ctx, resource_type, path[1])
        return Outcome(status=200, resource=history_bundle(rows, ""))
    if len(path) == 4 and path[2] == "_history":
        return interactions.vread(session, ctx, resource_type, path[1], path[3])
    raise invalid(f"Bundle.entry[{n}].request.url", "expected Type, Type/id, Type/id/_history or Type/id/_history/vid")


def informational(diagnostics: str, not_used: Sequence[str] = ()) -> dict[str, Any]:
    """What a write did; with a warning naming each element of the sent resource that was not used."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "information", "code": "informational", "diagnostics": diagnostics},
            *(
                {
                    "severity": "warning",
                    "code": "informational",
                    "diagnostics": f"{element} was not used: kept as sent with the record, but Tandem does not read it",
                    "expression": [element],
                }
                for element in not_used
            ),
        ],
    }


def _resolve_references(resource: dict[str, Any], replacements: dict[str, str]) -> dict[str, Any]:
    if not replacements:
        return resource
    text = json.dumps(resource)
    for placeholder, reference in replacements.items():
        text = text.replace(json.dumps(placeholder), json.dumps(reference))
    result: dict[str, Any] = json.loads(text)
    return result


def _response_entry(outcome: Outcome) -> dict[str, Any]:
    response: dict[str, Any] = {"status": f"{outcome.status}"}
    if outcome.location:
        response["location"] = outcome.location
        response["etag"] = f'W/"{outcome.version_id}"'
    if outcome.last_updated:
        response["lastModified"] = outcome.last_updated.isoformat()
    if outcome.notice is not None or outcome.not_used:
        response["outcome"] = informational(outcome.notice or "done", outcome.not_used)
    entry: dict[str, Any] = {"response": response}
    if outcome.resource is not None:
        entry["resource"] = outcome.resource
    return entry


def _error_entry(error: TandemError) -> dict[str, Any]:
    return {"response": {"status": str(error.status_code), "outcome": operation_outcome(error)}}
