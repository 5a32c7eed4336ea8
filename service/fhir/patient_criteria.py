"""Patient?name=, family, given, birthdate, gender (US Core): the patients whose own columns match, as a
subquery of patient ids that a search narrows to (search.py).

Strings are R4 string search (search.html#string) on the folded keys the patients table keeps beside the names
(service.records.patient.name_key: accents dropped, case folded), so "petrov" finds "Pétrov" on both databases
with one LIKE: `family` starts the family name; `given` starts one of the given names; `name` is every word of
the value starting a word of the name (family, given or the text of a name sent only as text), so "dana pet"
finds "Petrov, Dana". `:contains` is anywhere in the part; `:exact` the whole part exactly as written (case and
accents count): the family name, the given names as one text ("Dana Maria"), or a name sent only as text. The
name searched is the one the patient is known by (the official one, else the first).

birthdate is R4 date search on a day: eq the day lies in the value's range (1984 is every day of 1984), lt/eb
before its start, le before its end, gt/sa from its end on, ge from its start on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, or_
from sqlmodel import col, select

from service.fhir.search_parameters import DateBound, PatientCriterion
from service.records.patient import Patient, name_key


def matching_patients(tenant_id: str, criteria: list[PatientCriterion]) -> Any:
    """The ids of the tenant's patients matching every criterion (a subquery)."""
    return select(Patient.id).where(col(Patient.tenant_id) == tenant_id, *(_criterion(c) for c in criteria))


def family_starts(value: str) -> Any:
    """The family name starts with `value`, case and accents ignored (also the chain subject:Patient.family)."""
    return col(Patient.family_key).startswith(name_key(value), autoescape=True)


def _criterion(criterion: PatientCriterion) -> Any:
    if criterion.name == "birthdate":
        return or_(*(_born(bound) for bound in criterion.days))
    if criterion.name == "gender":
        if "*" in criterion.values:  # gender=<administrative-gender>| : any gender, and every patient has one
            return col(Patient.sex).is_not(None)
        return col(Patient.sex).in_(criterion.values) if criterion.values else false()
    match = {"name": _name, "family": _family, "given": _given}[criterion.name]
    return or_(*(match(value, criterion.modifier) for value in criterion.values))


def _born(bound: DateBound) -> Any:
    # The bound is an instant range at UTC midnights (a date-only value): as days, compared with the date column.
    start, end = bound.start.date(), bound.end.date()
    born = col(Patient.birth_date)
    clauses: dict[str, Any] = {
        "eq": and_(born >= start, born < end),
        "lt": born < start,
        "eb": born < start,
        "le": born < end,
        "gt": born >= end,
        "sa": born >= end,
        "ge": born >= start,
    }
    return clauses[bound.prefix]


def _family(value: str, modifier: str) -> Any:
    if modifier == "exact":
        return col(Patient.family_name) == value
    if modifier == "contains":
        return col(Patient.family_key).contains(name_key(value), autoescape=True)
    return family_starts(value)


def _given(value: str, modifier: str) -> Any:
    # given_key holds every given name, space-separated ("dana maria"): a given name starts the key or a word.
    if modifier == "exact":
        return col(Patient.given_name) == value
    if modifier == "contains":
        return col(Patient.given_key).contains(name_key(value), autoescape=True)
    return _starts_a_word(col(Patient.given_key), name_key(value))


def _name(value: str, modifier: str) -> Any:
    if modifier == "exact":
        return or_(col(Patient.family_name) == value, col(Patient.given_name) == value, col(Patient.name_text) == value)
    words = name_key(value).split() or [""]  # only spaces: any name
    if modifier == "contains":
        return and_(*(col(Patient.name_key).contains(w, autoescape=True) for w in words))
    return and_(*(_starts_a_word(col(Patient.name_key), w) for w in words))


def _starts_a_word(column: Any, key: str) -> Any:
    return or_(column.startswith(key, autoescape=True), column.contains(f" {key}", autoescape=True))
