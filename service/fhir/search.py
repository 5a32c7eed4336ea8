"""FHIR search over the projection: the parameters EHR integrations use, parsed once, run as one SQL query.

What each type can be searched by is one declared table (SEARCH_PARAMETERS), which the CapabilityStatement is
built from. A parameter name, modifier or chain outside it is refused (400), with `Prefer: handling=lenient` too:
ignoring it would widen the result — `subject:identifier=…` or `patient.identifier=…` dropped is the whole
tenant — and R4 says a server SHALL reject a modifier it does not support (search.html#modifiers).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, distinct, func, or_
from sqlmodel import Session, col, select

from service.errors import FieldProblem, InvalidRequest
from service.fhir import paging
from service.fhir.tables import FhirResourceVersion, FhirSearchToken

RESULT_PARAMETERS = {
    "_count", "_sort", "_include", "_summary", "_offset", "_cursor", "_format", "_total", "_elements",
}  # fmt: skip
DATE_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb")
# Which search parameter names mean the resource's clinical date, per type (FHIR R4 search parameter registry).
DATE_PARAMETERS = {
    "Observation": {"date", "effective"},
    "MedicationAdministration": {"effective-time", "date"},
    "Encounter": {"date"},
    "Procedure": {"date"},
    "QuestionnaireResponse": {"authored", "date"},
    "CarePlan": {"date"},
    "Goal": {"target-date"},
    "Condition": {"onset-date"},
}
_DATE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$",
    re.ASCII,  # not other scripts' digits
)
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}", re.ASCII)

ParameterType = Literal["token", "reference", "date", "uri"]


@dataclass(frozen=True)
class SearchParameter:
    """One supported search parameter: its FHIR type and the modifiers it takes (none unless listed)."""

    name: str
    type: ParameterType
    modifiers: frozenset[str] = frozenset()


def _parameters(resource_type: str) -> dict[str, SearchParameter]:
    declared = [
        SearchParameter("_id", "token"),
        SearchParameter("_lastUpdated", "date"),
        SearchParameter("identifier", "token"),
        SearchParameter("status", "token"),
    ]
    if resource_type != "Patient":
        # References only ever point at a Patient here: the type modifier may name it (subject:Patient=<id>).
        declared += [
            SearchParameter("patient", "reference", frozenset({"Patient"})),
            SearchParameter("subject", "reference", frozenset({"Patient"})),
            SearchParameter("code", "token"),
            SearchParameter("category", "token"),
        ]
    declared += [SearchParameter(name, "date") for name in sorted(DATE_PARAMETERS.get(resource_type, set()))]
    return {p.name: p for p in declared}


SEARCHABLE_TYPES = (
    "Patient", "MedicationAdministration", "Encounter", "QuestionnaireResponse", "Observation", "Procedure",
    "CarePlan", "Condition", "Goal", "Flag",
)  # fmt: skip
STATIC_TYPES = ("Questionnaire", "StructureDefinition", "CodeSystem")  # published by the service, not stored
_STATIC = {"_id": SearchParameter("_id", "token"), "url": SearchParameter("url", "uri")}
# The table: every parameter each type can be searched by. Anything else is refused (see the module docstring).
SEARCH_PARAMETERS: dict[str, dict[str, SearchParameter]] = {
    **{t: _parameters(t) for t in SEARCHABLE_TYPES},
    **{t: _STATIC for t in STATIC_TYPES},
    "AuditEvent": {
        "patient": SearchParameter("patient", "reference", frozenset({"Patient"})),
        "date": SearchParameter("date", "date"),
    },
}


class InvalidSearch(InvalidRequest):
    """FHIR answers a search it cannot run with 400 (http.html#search)."""

    status_code = 400
    title = "Invalid search"


def invalid(name: str, message: str) -> InvalidSearch:
    return InvalidSearch([FieldProblem(name, message)])


@dataclass(frozen=True)
class DateBound:
    prefix: str
    start: datetime
    end: datetime


@dataclass
class SearchQuery:
    resource_type: str
    ids: list[str] = field(default_factory=list)
    tokens: list[tuple[str, list[tuple[str | None, str | None]]]] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)
    dates: list[DateBound] = field(default_factory=list)
    last_updated: list[DateBound] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    count: int = 50
    offset: int = 0  # matches before this page (with a cursor: its position; the SQL skips nothing)
    cursor: paging.Cursor | None = None  # where the previous page ended (service.fhir.paging)
    sort: str | None = None
    include_patient: bool = False
    summary_count: bool = False
    total: str = "estimate"  # _total: none | estimate (the default: given when known without a count) | accurate
    applied: list[tuple[str, str]] = field(default_factory=list)
    # Restricted patients the caller may not see (service.break_glass.access): their resources never match.
    hidden_patients: frozenset[str] = frozenset()


def supported_parameters(resource_type: str) -> list[SearchParameter]:
    return list(SEARCH_PARAMETERS.get(resource_type, {}).values())


def whole_number(name: str, value: str, *, below: str = "10^9") -> int:
    """A count or offset: ASCII digits only, at most 9 of them (no int() of a 5,000-digit string)."""
    if _WHOLE_NUMBER.fullmatch(value) is None:
        raise invalid(name, f"must be a whole number below {below}")
    return int(value)


def not_supported(raw_name: str, resource_type: str, why: str) -> InvalidSearch:
    names = ", ".join(sorted(SEARCH_PARAMETERS.get(resource_type, {})))
    message = f"{raw_name}: {why}; {resource_type} is searched by {names} (no other modifiers or chains)"
    return InvalidSearch([FieldProblem(raw_name, message, "not-supported")])


def check_parameters(resource_type: str, params: Sequence[tuple[str, str]]) -> None:
    """For the searches not run by parse_search (the published types, AuditEvent): the same refusals."""
    for raw_name, _ in params:
        if raw_name not in RESULT_PARAMETERS:
            _declared(resource_type, raw_name)


def _declared(resource_type: str, raw_name: str) -> SearchParameter:
    """The table's entry for a parameter as sent (name[:modifier]); a 400 naming it for anything else."""
    name, _, modifier = raw_name.partition(":")
    if "." in name or name.startswith("_has"):
        raise not_supported(raw_name, resource_type, "chained and reverse-chained parameters are not supported")
    parameter = SEARCH_PARAMETERS.get(resource_type, {}).get(name)
    if parameter is None:
        raise not_supported(raw_name, resource_type, f"{name!r} is not a search parameter of this server")
    if ":" in raw_name and modifier not in parameter.modifiers:
        raise not_supported(raw_name, resource_type, f"the modifier :{modifier} is not supported on {name}")
    return parameter


def parse_search(
    resource_type: str, params: Sequence[tuple[str, str]], *, max_count: int, default_count: int, strict: bool
) -> SearchQuery:
    """strict (Prefer: handling=strict) and lenient ask the same: nothing a search was asked is ever dropped."""
    query = SearchQuery(resource_type=resource_type, count=default_count)
    for raw_name, value in params:
        if raw_name in RESULT_PARAMETERS:
            _result_parameter(query, raw_name, value, max_count)
            continue
        if raw_name.partition(":")[0] in RESULT_PARAMETERS:
            raise not_supported(raw_name, resource_type, "result parameters take no modifiers here")
        parameter = _declared(resource_type, raw_name)
        name = parameter.name
        values = [v for v in value.split(",") if v]
        if not values:
            continue
        query.applied.append((raw_name, value))
        if name == "_id":
            query.ids.extend(values)
        elif name == "status":
            query.statuses.extend(values)
        elif parameter.type == "token":
            query.tokens.append((name, [_token(name, v) for v in values]))
        elif parameter.type == "reference":
            query.patients.extend(_patient_id(name, v) for v in values)
        elif name == "_lastUpdated":
            query.last_updated.append(_date_bound(name, value))
        else:
            query.dates.append(_date_bound(name, value))
    if query.cursor is not None:
        if query.cursor.sort != query.sort:
            raise invalid("_cursor", "was made for another _sort: follow the next link as given")
        query.offset = query.cursor.position
    return query


def _result_parameter(query: SearchQuery, name: str, value: str, max_count: int) -> None:
    if name == "_count":
        query.count = min(whole_number("_count", value), max_count)  # capped, as the spec allows
    elif name == "_offset":
        query.offset = whole_number("_offset", value)
    elif name == "_cursor":
        try:
            query.cursor = paging.decode(value)
        except ValueError:
            raise invalid("_cursor", "not a cursor of this server: follow the next link of a search Bundle") from None
    elif name == "_sort":
        if value not in ("date", "-date", "_lastUpdated", "-_lastUpdated"):
            raise invalid("_sort", "supported: date, -date, _lastUpdated, -_lastUpdated")
        query.sort = value
    elif name == "_include":
        if value.split(":")[-1] not in ("patient", "subject", "*") and value != "*":
            raise invalid("_include", "supported: <Type>:patient and <Type>:subject")
        query.include_patient = True
    elif name == "_summary":
        if value == "count":
            query.summary_count = True
        elif value != "false":
            raise invalid("_summary", "supported: count, false")
    elif name == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise invalid("_total", "supported: none, estimate, accurate")
        query.total = value
    if name in ("_count", "_sort", "_include", "_summary", "_total"):
        query.applied.append((name, value))


def _token(name: str, value: str) -> tuple[str | None, str | None]:
    if "|" not in value:
        return None, value
    system, code = value.split("|", 1)
    if not system and not code:
        raise invalid(name, "a token is system|code, |code, system| or code")
    return (system or ""), (code or None)


def _patient_id(name: str, value: str) -> str:
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] != "Patient":
        raise invalid(name, f"{value!r} does not reference a Patient")
    return parts[-1]


def _date_bound(name: str, value: str) -> DateBound:
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    if prefix == "ne":
        raise invalid(name, "the ne prefix is not supported")
    match = _DATE.match(text)
    if match is None:
        raise invalid(name, f"{text!r} is not a FHIR date or dateTime")
    year, month, day, hour, minute, second, zone = match.groups()
    if hour is not None and zone is None:
        raise invalid(name, "a dateTime needs a time zone (Z or +hh:mm)")
    try:  # the pattern admits 2026-13-45T25:61 and 9999 (no year after it): out of range is a 400, not a 500
        start, end = _interval(year, month, day, hour, minute, second, zone)
        return DateBound(prefix, start.astimezone(UTC), end.astimezone(UTC))
    except (ValueError, OverflowError):
        raise invalid(name, f"{text!r} is not a date this server can search by (out of range)") from None


def _interval(
    year: str, month: str | None, day: str | None, hour: str | None, minute: str | None, second: str | None,
    zone: str | None,
) -> tuple[datetime, datetime]:  # fmt: skip
    tz = UTC if zone in (None, "Z") else datetime.strptime(zone.replace(":", ""), "%z").tzinfo
    start = datetime(
        int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=tz
    )
    if day is None and month is None:
        end = start.replace(year=start.year + 1)
    elif day is None:
        end = start + timedelta(days=calendar.monthrange(start.year, start.month)[1])
    elif hour is None:
        end = start + timedelta(days=1)
    elif second is None:
        end = start + timedelta(minutes=1)
    else:
        end = start + timedelta(seconds=1)
    return start, end


def _date_clause(column: Any, bound: DateBound) -> Any:
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
    the number of matches when it is known: counted on `_summary=count` or `_total=accurate`, otherwise only when
    the page shows it for free (the last page, reached with at least one match) — counting every match of a broad
    search costs a scan of all of them, the page only an index range (FHIR R4 search.html#total lets a server
    omit Bundle.total)."""

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
    return len(query.tokens) == 1 and not (query.ids or query.patients or query.statuses)


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
    conditions += [_date_clause(col(t.clinical_date), b) for b in query.dates]
    conditions += [_date_clause(col(t.last_updated), b) for b in query.last_updated]
    counted = query.summary_count or query.total == "accurate"
    total = session.exec(select(func.count(distinct(col(t.resource_id)))).where(*conditions)).one() if counted else None
    if query.summary_count:
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
    conditions += [_date_clause(col(r.clinical_date), b) for b in query.dates]
    conditions += [_date_clause(col(r.last_updated), b) for b in query.last_updated]
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
    counted = query.summary_count or query.total == "accurate"
    total = session.exec(select(func.count()).select_from(r).where(*conditions)).one() if counted else None
    if query.summary_count:
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


# The date-parameter grammar, for other searches (AuditEvent) that filter on an instant.
date_bound = _date_bound
date_clause = _date_clause
