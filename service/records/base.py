"""What every stored clinical record has: tenant, id, timestamps, version and source identifier."""

from __future__ import annotations

import re
import types
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NaiveDatetime,
    StringConstraints,
    model_validator,
)
from sqlalchemy import MetaData
from sqlmodel import Field as SqlField
from sqlmodel import SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime

# Constraint names are part of the schema: alembic needs them to be deterministic on both databases.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata

# Records we create ourselves still get a source identifier, so one unique constraint covers every resend.
OWN_SOURCE_SYSTEM = "urn:tandem:record"


def new_id() -> str:
    return str(uuid.uuid4())


class TenantRecord(SQLModel):
    """Columns shared by every tenant-owned table (not a table itself)."""

    id: str = SqlField(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = SqlField(foreign_key="tenants.id", max_length=64, index=True)
    created_at: datetime = SqlField(default_factory=now_utc, sa_type=UtcDateTime)
    updated_at: datetime = SqlField(default_factory=now_utc, sa_type=UtcDateTime)
    version: int = SqlField(default=1)
    source_system: str = SqlField(max_length=255)
    source_id: str = SqlField(max_length=255)


class PatientRecord(TenantRecord):
    """Columns of records that belong to one patient (not a table itself)."""

    patient_id: str = SqlField(max_length=36, index=True)


# ---- API shapes shared by every record kind --------------------------------------------------------------

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
RecordId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _in_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Clinical times must carry an offset (a naive time is ambiguous); they are kept and returned in UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class ApiModel(BaseModel):
    """Request bodies refuse unknown fields: a typo must not be silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refusing it here names the field instead of failing at the database.
        if isinstance(data, dict):
            for name, value in data.items():
                if nul_in(name) or nul_in(value):
                    raise ValueError(f"{name} contains a NUL character")
        return data

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        # Pydantic's lax mode reads 0 or "0" as a Unix time (a birth date of 1970-01-01) and 0, 1 or "yes" as
        # booleans: in request bodies a date or time must be ISO 8601 text and a boolean true or false. The check
        # is added to every such field of every request model here, so the models keep their plain types.
        super().__pydantic_init_subclass__(**kwargs)
        changed = False
        for field in cls.model_fields.values():
            expected = _strict_kind(field.annotation)
            if expected is not None and not any(isinstance(m, _StrictCheck) for m in field.metadata):
                field.metadata.append(_StrictCheck(expected))
                changed = True
        if changed:
            cls.model_rebuild(force=True)


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


STRICT_MESSAGES = {
    "bool": "expected true or false",
    "date": "expected a date as YYYY-MM-DD",
    "datetime": "expected a date and time as ISO 8601, e.g. 2026-10-07T09:00:00+00:00",
}


def _strictly(expected: str, value: Any) -> bool:
    if expected == "bool":
        return isinstance(value, bool)
    if isinstance(value, str):
        return bool((ISO_DATE if expected == "date" else ISO_DATETIME).match(value))
    if expected == "date":
        return isinstance(value, date) and not isinstance(value, datetime)
    return isinstance(value, datetime)


def _strict_kind(annotation: Any) -> Literal["bool", "date", "datetime"] | None:
    """Which strictly checked type an annotation is (optional or not), if any."""
    while get_origin(annotation) in (Union, types.UnionType, Annotated):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) is not Annotated and len(options) != 1:
            return None  # a real union: its members decide
        annotation = options[0]
    if annotation is bool:
        return "bool"
    if annotation is date:
        return "date"
    if annotation in (datetime, AwareDatetime, NaiveDatetime):
        return "datetime"
    return None


def _date_or_time_text(value: Any) -> Any:
    if isinstance(value, str) and not (ISO_DATE.match(value) or ISO_DATETIME.match(value)):
        raise ValueError("expected a date as YYYY-MM-DD or a date and time as ISO 8601 with an offset")
    return value


# Query parameters that take a date or an instant: ISO 8601 text only (lax mode would read `0.5` as a Unix time).
DateOrTimeText = BeforeValidator(_date_or_time_text)


class _StrictCheck(BeforeValidator):
    """Refuses what lax mode would coerce; Python values (from the FHIR mapping) pass."""

    def __init__(self, expected: str) -> None:
        def check(value: Any) -> Any:
            if value is not None and not _strictly(expected, value):
                raise ValueError(STRICT_MESSAGES[expected])
            return value

        super().__init__(check)


def nul_in(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(nul_in(k) or nul_in(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(nul_in(v) for v in value)
    return False


class SourceIdentifier(ApiModel):
    """The sending system and its own id for the record; a resend with the same pair returns the first record."""

    system: Text = Field(description="URI of the sending system, e.g. the EHR's identifier namespace")
    value: Text = Field(description="The sending system's id for this record")


class RecordMeta(BaseModel):
    """Fields the service owns; clients read them but can never set them."""

    id: str
    version: int
    created_at: Instant
    updated_at: Instant
    source: SourceIdentifier


def record_meta(row: TenantRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "source": {"system": row.source_system, "value": row.source_id},
    }
