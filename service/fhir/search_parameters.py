"""FHIR search parameters: the declared table, and a query string parsed once into a SearchQuery (no SQL here;
search.py runs it).


What each type can be searched by is one declared table (SEARCH_PARAMETERS), which the CapabilityStatement is
built from. A parameter name, modifier or chain outside it is refused (400), with `Prefer: handling=lenient` too:
ignoring it would widen the result — `subject:identifier=…` or `patient.identifier=…` dropped is the whole
tenant — and R4 says a server SHALL reject a modifier it does not support (search.html#modifiers).

One chain is served (CHAINS): a patient reference by the patient's family name, `subject:Patient.family=…`
(also `subject.family`, `patient.family`, `patient:Patient.family`; search.html#chaining), as clients find a
patient's results by name; R4's string match (starts with, case and accents ignored).

A Patient is also searched by its own demographics (PATIENT_CRITERIA: US Core's name, family, given, birthdate,
gender), which live on the patients table, not in the projection: parsed here into PatientCriterion values,
run by patient_criteria.py.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from service.errors import FieldProblem, InvalidRequest
from service.fhir import paging

RESULT_PARAMETERS = {
    "_count", "_sort", "_include", "_summary", "_offset", "_cursor", "_format", "_total", "_elements",
    "_totalMethod",
}  # fmt: skip
# Aidbox's name for how to total, sent by fhirpy's count() (`_count=0&_totalMethod=count`): the R4 `_total` it means.
TOTAL_METHODS = {"count": "accurate", "estimate": "estimate", "none": "none"}
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
    "Appointment": {"date"},
}
_DATE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$",
    re.ASCII,  # not other scripts' digits
)
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}", re.ASCII)

ParameterType = Literal["token", "reference", "date", "uri", "string"]


@dataclass(frozen=True)
class SearchParameter:
    """One supported search parameter: its FHIR type and the modifiers it takes (none unless listed)."""

    name: str
    type: ParameterType
    modifiers: frozenset[str] = frozenset()


# The token parameters beyond identifier, per type: only those whose element the type has in R4, so that a declared
# parameter can match (the projection indexes `code`, `category` and `status` as the resource holds them).
# Patient has no status, Encounter and Appointment no code or category, Condition and Goal no status element.
TOKEN_PARAMETERS: dict[str, tuple[str, ...]] = {
    "Patient": (),
    "MedicationAdministration": ("status", "code"),  # code: the drug, medicationCodeableConcept
    "Encounter": ("status",),
    "QuestionnaireResponse": ("status",),
    "Observation": ("status", "code", "category"),
    "Procedure": ("status", "code", "category"),
    "CarePlan": ("status", "category"),
    "Condition": ("code", "category"),
    "Goal": ("category",),
    "Flag": ("status", "code", "category"),
    "ServiceRequest": ("status", "code", "category"),
    "Appointment": ("status",),
}

# US Core's Patient search parameters, searched on the patients table (patient_criteria.py). Strings take
# :exact (the whole part, as written) and :contains (anywhere in it, case and accents ignored).
_STRING_MODIFIERS = frozenset({"exact", "contains"})
PATIENT_CRITERIA = {
    "name": SearchParameter("name", "string", _STRING_MODIFIERS),
    "family": SearchParameter("family", "string", _STRING_MODIFIERS),
    "given": SearchParameter("given", "string", _STRING_MODIFIERS),
    "birthdate": SearchParameter("birthdate", "date"),
    "gender": SearchParameter("gender", "token"),
}


def _parameters(resource_type: str) -> dict[str, SearchParameter]:
    declared = [
        SearchParameter("_id", "token"),
        SearchParameter("_lastUpdated", "date"),
        SearchParameter("identifier", "token"),
    ]
    if resource_type != "Patient":
        # References only ever point at a Patient here: the type modifier may name it (subject:Patient=<id>).
        declared += [
            SearchParameter("patient", "reference", frozenset({"Patient"})),
            SearchParameter("subject", "reference", frozenset({"Patient"})),
        ]
    declared += [SearchParameter(name, "token") for name in TOKEN_PARAMETERS[resource_type]]
    declared += [SearchParameter(name, "date") for name in sorted(DATE_PARAMETERS.get(resource_type, set()))]
    if resource_type == "Patient":
        declared += PATIENT_CRITERIA.values()
    return {p.name: p for p in declared}


SEARCHABLE_TYPES = (
    "Patient", "MedicationAdministration", "Encounter", "QuestionnaireResponse", "Observation", "Procedure",
    "CarePlan", "Condition", "Goal", "Flag", "ServiceRequest", "Appointment",
)  # fmt: skip
# Published by the service, not stored.
STATIC_TYPES = ("Questionnaire", "StructureDefinition", "CodeSystem", "SearchParameter", "Measure")
_STATIC = {"_id": SearchParameter("_id", "token"), "url": SearchParameter("url", "uri")}
# The table: every parameter each type can be searched by. Anything else is refused (see the module docstring).
SEARCH_PARAMETERS: dict[str, dict[str, SearchParameter]] = {
    **{t: _parameters(t) for t in SEARCHABLE_TYPES},
    **{t: _STATIC for t in STATIC_TYPES},
    "AuditEvent": {
        "patient": SearchParameter("patient", "reference", frozenset({"Patient"})),
        "date": SearchParameter("date", "date"),
    },
    # FHIR Subscriptions (service/fhir/subscriptions.py): R4's names; criteria holds the topic canonical
    "Subscription": {
        "status": SearchParameter("status", "token"),
        "criteria": SearchParameter("criteria", "string"),
        "url": SearchParameter("url", "uri"),
    },
    "Basic": {"_id": SearchParameter("_id", "token"), "code": SearchParameter("code", "token")},
}


# Chained parameters served: reference parameter -> the Patient parameters it may be chained with.
CHAINS: dict[str, frozenset[str]] = {"subject": frozenset({"family"}), "patient": frozenset({"family"})}


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


@dataclass(frozen=True)
class PatientCriterion:
    """One Patient parameter as sent (name[:modifier]=a,b): a patient matches when it matches any value."""

    name: str
    modifier: str  # "" when none
    values: tuple[str, ...] = ()  # strings as sent; gender codes (system|code checked: the code)
    days: tuple[DateBound, ...] = ()  # birthdate


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
    # Chained patient criteria (Patient parameter, value): the search narrows to the patients they match.
    chained: list[tuple[str, str]] = field(default_factory=list)
    # Patient?name=…, family, given, birthdate, gender: each one must match (AND), a comma's values any (OR).
    patient_criteria: list[PatientCriterion] = field(default_factory=list)

    @property
    def counts_only(self) -> bool:
        """`_summary=count`, or `_count=0`: the answer is the number of matches. With `_count=0` and no total, a
        client asking only how many (fhirpy's count()) got nothing, and a `next` link equal to `self` that paging
        clients followed forever."""
        return self.summary_count or self.count == 0

    @property
    def counted(self) -> bool:
        return self.counts_only or self.total == "accurate"


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
        if raw_name not in RESULT_PARAMETERS and _chain(resource_type, raw_name) is None:
            _declared(resource_type, raw_name)


def _chain(resource_type: str, raw_name: str) -> str | None:
    """The Patient parameter of a served chain (`subject:Patient.family` -> "family"), or None."""
    head, dot, chained = raw_name.partition(".")
    reference, _, modifier = head.partition(":")
    served = CHAINS.get(reference, frozenset())
    if not dot or chained not in served or modifier not in ("", "Patient"):
        return None
    return chained if reference in SEARCH_PARAMETERS.get(resource_type, {}) else None


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
        chain = _chain(resource_type, raw_name)
        if chain is not None:
            if value:
                query.applied.append((raw_name, value))
                query.chained.append((chain, value))
            continue
        parameter = _declared(resource_type, raw_name)
        name = parameter.name
        values = [v for v in value.split(",") if v]
        if not values:
            continue
        query.applied.append((raw_name, value))
        if resource_type == "Patient" and name in PATIENT_CRITERIA:
            query.patient_criteria.append(_patient_criterion(name, raw_name.partition(":")[2], values))
        elif name == "_id":
            query.ids.extend(values)
        elif name == "status":
            query.statuses.extend(values)
        elif parameter.type == "token":
            query.tokens.append((name, [_token(name, v) for v in values]))
        elif parameter.type == "reference":
            query.patients.extend(_patient_id(name, v) for v in values)
        elif name == "_lastUpdated":
            query.last_updated.append(date_bound(name, value))
        else:
            query.dates.append(date_bound(name, value))
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
    elif name == "_totalMethod":
        if value not in TOTAL_METHODS:
            raise invalid("_totalMethod", "supported: count, estimate, none (or R4's _total)")
        query.total = TOTAL_METHODS[value]
    if name in ("_count", "_sort", "_include", "_summary", "_total"):
        query.applied.append((name, value))


ADMINISTRATIVE_GENDER = "http://hl7.org/fhir/administrative-gender"
_DAY = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?", re.ASCII)


def _patient_criterion(name: str, modifier: str, values: list[str]) -> PatientCriterion:
    if name == "birthdate":
        # A birth date is a day with no time or zone: a time of day cannot be compared with it.
        texts = [v[2:] if v[:2] in DATE_PREFIXES else v for v in values]
        for text in texts:
            if _DAY.fullmatch(text) is None:
                raise invalid(name, f"{text!r} is not a date: birthdate takes YYYY, YYYY-MM or YYYY-MM-DD")
        return PatientCriterion(name, modifier, days=tuple(date_bound(name, v) for v in values))
    if name == "gender":
        codes = []
        for value in values:
            system, code = _token(name, value)
            if system in (None, ADMINISTRATIVE_GENDER):
                codes.append(code or "*")  # system| alone: any gender
            # another system (or |code, no system) holds no patient's gender: that value matches nothing
        return PatientCriterion(name, modifier, values=tuple(codes))
    return PatientCriterion(name, modifier, values=tuple(values))


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


def date_bound(name: str, value: str) -> DateBound:
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
