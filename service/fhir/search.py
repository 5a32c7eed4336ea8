"""FHIR search over the projection: a parsed SearchQuery (search_parameters.py) run as one SQL query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, distinct, func, or_
from sqlmodel import Session, col, select

from service.fhir import paging
from service.fhir.patient_criteria import family_starts, matching_patients
from service.fhir.search_parameters import DateBound, SearchQuery
from service.projection.tables import FhirResourceVersion, FhirSearchToken
from service.records.patient import Patient

# A patient id no record has: a search whose chained criteria match no patient matches nothing.
_NO_PATIENT = "-"


def date_clause(column: Any, bound: DateBound) -> Any:
    return {
        "eq": and_(column >= bound.start, column < bound.end),
        "lt": column < bound.start,
        "eb": column < bound.start,
        "le": column < bound.end,
        "gt": column >= bound.end,
        "sa": column >= bound.end,
        "ge": column >= bound.start,
    }[bound.prefix]


@dataclass
class SearchPage:
    """The requested page (current, undeleted versions of the tenant only), whether more matches follow it, and
    the number of matches when it is known: counted on `_summary=count`, `_count=0` or `_total=accurate`, otherwise
    only when the page shows it for free (the last page, reached with at least one match) — counting every match of
    a broad search costs a scan of all of them, the page only an index range (FHIR R4 search.html#total lets a
    server omit Bundle.total)."""

    total: int | None
    matches: list[FhirResourceVersion]
    more: bool


def _token_matches(param: str, alternatives: list[tuple[str | None, str | None]]) -> Any:
    """The token rows of one parameter that match any of its comma alternatives."""
    t = FhirSearchToken
    matches = []
    for system, code in alternatives:
        clause = [col(t.param) == param]
        if code is not None:
            clause.append(col(t.value) == code)
        if system is not None:
            clause.append(col(t.system) == system if system else col(t.system).is_(None))
        matches.append(and_(*clause))
    return or_(*matches)


def _one_token(query: SearchQuery) -> bool:
    """One token parameter and nothing that lives only on fhir_resources (status) or is better served by the
    resources' own indexes (a patient's or an id's few resources): the search can run on the token index."""
    return len(query.tokens) == 1 and not (query.ids or query.patients or query.statuses or query.patient_criteria)


def run_search(session: Session, tenant_id: str, query: SearchQuery) -> SearchPage:
    if _one_token(query):
        return _token_search(session, tenant_id, query)
    return _general_search(session, tenant_id, query)


def _skipped(query: SearchQuery) -> int:
    """Rows the SQL skips: none after a cursor, which already starts the page."""
    return 0 if query.cursor is not None else query.offset


def _page(query: SearchQuery, rows: list[FhirResourceVersion], total: int | None, counted: bool) -> SearchPage:
    more = len(rows) > query.count
    if total is None and not more and (rows or query.offset == 0):
        total = query.offset + len(rows)
    if query.total == "none" and not counted:
        total = None
    return SearchPage(total, rows[: query.count], more)


def _token_search(session: Session, tenant_id: str, query: SearchQuery) -> SearchPage:
    """One token parameter: the page is a range of the token index (tenant, type, param, value, sort key,
    resource_id), read in order and stopped after `_count + 1` distinct resources, with the date, _lastUpdated
    and hidden-patient conditions checked on the token's copies; only those resources are then read, by primary
    key. The same matches, order and totals as `_general_search` (tokens exist for current, undeleted versions
    only, and carry that version's dates and patient)."""
    t = FhirSearchToken
    param, alternatives = query.tokens[0]
    conditions: list[Any] = [
        col(t.tenant_id) == tenant_id,
        col(t.resource_type) == query.resource_type,
        _token_matches(param, alternatives),
    ]
    if query.hidden_patients:
        conditions.append(or_(col(t.patient_id).is_(None), col(t.patient_id).not_in(sorted(query.hidden_patients))))
    conditions += [date_clause(col(t.clinical_date), b) for b in query.dates]
    conditions += [date_clause(col(t.last_updated), b) for b in query.last_updated]
    counted = query.counted
    total = session.exec(select(func.count(distinct(col(t.resource_id)))).where(*conditions)).one() if counted else None
    if query.counts_only:
        return SearchPage(total, [], more=False)
    key = col(t.clinical_date) if query.sort in ("date", "-date") else col(t.last_updated)
    descending = (query.sort or "").startswith("-")
    # DISTINCT: a resource with several matching tokens (comma alternatives, or one code in two systems) is one
    # match. All of a resource's tokens hold the same key, so (key, resource_id) is distinct per resource.
    if query.cursor is not None:
        conditions.append(paging.after(query.cursor, key, col(t.resource_id)))
    ids = (
        select(col(t.resource_id).label("resource_id"), key.label("key"))
        .where(*conditions)
        .distinct()
        .order_by(key.desc() if descending else key.asc(), col(t.resource_id))
        .offset(_skipped(query))
        .limit(query.count + 1)
        .subquery("page")
    )
    r = FhirResourceVersion
    rows = list(
        session.exec(
            select(r)
            .join(ids, col(r.resource_id) == ids.c.resource_id)
            .where(
                col(r.tenant_id) == tenant_id,
                col(r.resource_type) == query.resource_type,
                col(r.is_current).is_(True),
                col(r.deleted).is_(False),
            )
            .order_by(ids.c.key.desc() if descending else ids.c.key.asc(), ids.c.resource_id)
        ).all()
    )
    return _page(query, rows, total, counted)


def _general_search(session: Session, tenant_id: str, query: SearchQuery) -> SearchPage:
    r = FhirResourceVersion
    conditions: list[Any] = [
        col(r.tenant_id) == tenant_id,
        col(r.resource_type) == query.resource_type,
        col(r.is_current).is_(True),
        col(r.deleted).is_(False),
    ]
    if query.ids:
        conditions.append(col(r.resource_id).in_(query.ids))
    if query.patients:
        conditions.append(col(r.patient_id).in_(query.patients))
    if query.hidden_patients:
        conditions.append(or_(col(r.patient_id).is_(None), col(r.patient_id).not_in(sorted(query.hidden_patients))))
    if query.statuses:
        conditions.append(col(r.status).in_(query.statuses))
    if query.patient_criteria:  # Patient?family=…&birthdate=…: a Patient resource's patient_id is its own
        conditions.append(col(r.patient_id).in_(matching_patients(tenant_id, query.patient_criteria)))
    conditions += [date_clause(col(r.clinical_date), b) for b in query.dates]
    conditions += [date_clause(col(r.last_updated), b) for b in query.last_updated]
    for param, alternatives in query.tokens:
        t = FhirSearchToken
        matches = _token_matches(param, alternatives)
        if query.patients or query.ids:
            # Few candidates (one patient's resources): probe each one's tokens by resource id. As an IN, SQLite
            # would first collect every matching token of the tenant (26 ms for a common code, 0.1 ms this way).
            conditions.append(
                select(t.id)
                .where(
                    col(t.tenant_id) == col(r.tenant_id),
                    col(t.resource_type) == col(r.resource_type),
                    col(t.resource_id) == col(r.resource_id),
                    matches,
                )
                .exists()
            )
            continue
        # An uncorrelated IN: both databases run it as one index range over the tokens (a correlated EXISTS let
        # SQLite probe every matching token once per candidate resource).
        conditions.append(
            col(r.resource_id).in_(
                select(t.resource_id).where(
                    col(t.tenant_id) == tenant_id,
                    col(t.resource_type) == query.resource_type,
                    matches,
                )
            )
        )
    counted = query.counted
    total = session.exec(select(func.count()).select_from(r).where(*conditions)).one() if counted else None
    if query.counts_only:
        return SearchPage(total, [], more=False)
    orders: dict[str, list[Any]] = {
        "date": [col(r.clinical_date).asc()],
        "-date": [col(r.clinical_date).desc()],
        "_lastUpdated": [col(r.last_updated).asc()],
        "-_lastUpdated": [col(r.last_updated).desc()],
    }
    order = orders.get(query.sort or "", [col(r.last_updated).asc()])
    if query.cursor is not None:
        conditions.append(paging.after(query.cursor, col(r.last_updated), col(r.resource_id)))
    # One row beyond the page says whether a next page exists, without counting.
    page = list(
        session.exec(
            select(r)
            .where(*conditions)
            .order_by(*order, col(r.resource_id))
            .offset(_skipped(query))
            .limit(query.count + 1)
        ).all()
    )
    return _page(query, page, total, counted)


def current_patients(session: Session, tenant_id: str, patient_ids: set[str]) -> list[FhirResourceVersion]:
    """Patients for _include, from the caller's tenant only."""
    if not patient_ids:
        return []
    r = FhirResourceVersion
    return list(
        session.exec(
            select(r).where(
                col(r.tenant_id) == tenant_id,
                col(r.resource_type) == "Patient",
                col(r.resource_id).in_(sorted(patient_ids)),
                col(r.is_current).is_(True),
                col(r.deleted).is_(False),
            )
        )
    )


def narrow_to_chained_patients(session: Session, tenant_id: str, query: SearchQuery) -> None:
    """`subject:Patient.family=…`: the tenant's patients whose family name starts with the value (R4 string
    search: case and accents ignored), intersected with any patient the query already names. Restricted patients
    stay subject to query.hidden_patients, like any search."""
    found: set[str] | None = None
    for parameter, value in query.chained:
        assert parameter == "family", "search_parameters.CHAINS serves family only"
        matches: set[str] = set()
        for alternative in (v for v in value.split(",") if v.strip()):
            rows = session.exec(
                select(Patient.id).where(col(Patient.tenant_id) == tenant_id, family_starts(alternative))
            )
            matches |= set(rows)
        found = matches if found is None else found & matches
    assert found is not None
    if query.patients:
        found &= set(query.patients)
    query.patients = sorted(found) or [_NO_PATIENT]
