"""Patients and their medical record numbers."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy import ForeignKeyConstraint, Index, UniqueConstraint, delete
from sqlmodel import Field as SqlField
from sqlmodel import Session, SQLModel, col, select

from service.clock import today_utc
from service.records.base import ApiModel, RecordMeta, SourceIdentifier, TenantRecord, Text

AdministrativeSex = Literal["female", "male", "other", "unknown"]


class Patient(TenantRecord, table=True):
    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "id"),
        # Every read by a clinician or coordinator asks which of the tenant's patients are restricted.
        Index("ix_patients_restricted", "tenant_id", "restricted"),
    )

    family_name: str = SqlField(max_length=255)
    given_name: str | None = SqlField(default=None, max_length=255)
    birth_date: date
    sex: str = SqlField(max_length=16)
    restricted: bool = SqlField(default=False)
    # "family given" folded for search (`name_key`): a coordinator types "petrov" and finds "Pétrov".
    name_key: str = SqlField(default="", max_length=520)


def name_key(*names: str | None) -> str:
    """Names as searched: accents dropped (NFKD, combining marks removed), case folded, spaces collapsed."""
    text = unicodedata.normalize("NFKD", " ".join(n for n in names if n))
    folded = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(folded.split())


def with_name_key(values: dict[str, Any]) -> dict[str, Any]:
    """The columns of a patient, with the search key of its names."""
    return {**values, "name_key": name_key(values.get("family_name"), values.get("given_name"))}


def without_name_key(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != "name_key"}


class PatientIdentifier(SQLModel, table=True):
    """An MRN (or other business identifier): one patient per system|value within a tenant."""

    __tablename__ = "patient_identifiers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "system", "value"),
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"], ondelete="CASCADE"),
    )

    id: int | None = SqlField(default=None, primary_key=True)
    tenant_id: str = SqlField(max_length=64)
    patient_id: str = SqlField(max_length=36, index=True)
    system: str = SqlField(max_length=255)
    value: str = SqlField(max_length=255)


class MedicalRecordNumber(ApiModel):
    system: Text = Field(description="Identifier namespace URI of the issuing hospital, e.g. urn:oid:…")
    value: Text


class PatientFields(ApiModel):
    """What a client may set; the service owns id, version, timestamps and tenant."""

    identifiers: list[MedicalRecordNumber] = Field(default_factory=list, max_length=20)
    family_name: Text
    given_name: Text | None = None
    birth_date: date
    sex: AdministrativeSex
    restricted: bool = Field(
        default=False,
        description="Confidentiality R (e.g. a staff member or a public figure): the patient's data is hidden from "
        "clinicians and coordinators until a clinician breaks the glass (a reason, time-boxed, audited).",
    )

    @field_validator("birth_date")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > today_utc():
            raise ValueError("birth date is in the future")
        if value.year < 1900:
            raise ValueError("birth date is before 1900")
        return value

    @field_validator("identifiers")
    @classmethod
    def _no_repeats(cls, value: list[MedicalRecordNumber]) -> list[MedicalRecordNumber]:
        pairs = [(i.system, i.value) for i in value]
        if len(pairs) != len(set(pairs)):
            raise ValueError("the same identifier is listed twice")
        return value


class PatientCreate(PatientFields):
    source: SourceIdentifier | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": {"system": "urn:oid:2.16.840.1.113883.3.7418", "value": "E4471"},
                    "identifiers": [{"system": "urn:oid:2.16.840.1.113883.3.7418.2", "value": "MRN-000193"}],
                    "family_name": "Rivera",
                    "given_name": "Sam",
                    "birth_date": "1984-03-09",
                    "sex": "female",
                }
            ]
        }
    )


class PatientPublic(RecordMeta, PatientFields):
    pass


def save_identifiers(session: Session, row: TenantRecord, values: dict[str, Any]) -> None:
    """Replace the patient's MRNs; the unique constraint keeps one patient per MRN within a tenant."""
    if "identifiers" not in values:
        return
    session.execute(delete(PatientIdentifier).where(col(PatientIdentifier.patient_id) == row.id))
    session.add_all(
        PatientIdentifier(tenant_id=row.tenant_id, patient_id=row.id, system=i["system"], value=i["value"])
        for i in values["identifiers"]
    )
    session.flush()


def load_identifiers(session: Session, rows: Sequence[TenantRecord]) -> dict[str, dict[str, Any]]:
    ids = [row.id for row in rows]
    found: dict[str, dict[str, Any]] = {i: {"identifiers": []} for i in ids}
    if not ids:
        return found
    query = (
        select(PatientIdentifier).where(col(PatientIdentifier.patient_id).in_(ids)).order_by(col(PatientIdentifier.id))
    )
    for identifier in session.exec(query):
        found[identifier.patient_id]["identifiers"].append({"system": identifier.system, "value": identifier.value})
    return found
