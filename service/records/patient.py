"""Patients and their medical record numbers."""

from __future__ import annotations

import unicodedata
import zoneinfo
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)
from sqlalchemy import JSON, ForeignKeyConstraint, Index, UniqueConstraint, delete
from sqlmodel import Field as SqlField
from sqlmodel import Session, SQLModel, col, select

import fhir_mappings as fm
from service.clock import now_utc, today_utc
from service.records.base import ApiModel, RecordMeta, SourceIdentifier, TenantRecord, Text

AdministrativeSex = Literal["female", "male", "other", "unknown"]
# An R4 dateTime as sent (fhir_mappings checks its form on /fhir; here its shape).
FhirDateTime = Annotated[
    str,
    StringConstraints(
        pattern=r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?)?)?$", max_length=64
    ),
]
FhirJson = dict[str, Any]


class Patient(TenantRecord, table=True):
    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "id"),
        # Every read by a clinician or coordinator asks which of the tenant's patients are restricted.
        Index("ix_patients_restricted", "tenant_id", "restricted"),
    )

    family_name: str | None = SqlField(default=None, max_length=255)
    given_name: str | None = SqlField(default=None, max_length=255)
    # The whole name as one text, kept when the sender gave no parts (HumanName.text only).
    name_text: str | None = SqlField(default=None, max_length=255)
    birth_date: date | None = None
    sex: str = SqlField(max_length=16)
    restricted: bool = SqlField(default=False)
    deceased: bool = SqlField(default=False)
    # Patient.deceasedDateTime as sent (an R4 dateTime may be a year, a month, a day or an instant).
    deceased_at: str | None = SqlField(default=None, max_length=64)
    # The patient's own IANA time zone (FHIR: the timezone extension), for calling at a sensible local hour.
    time_zone: str | None = SqlField(default=None, max_length=64)
    # FHIR R4 JSON as the sender wrote it, served back as written (fhir_mappings/patient.py checks each entry).
    names: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)
    telecom: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)
    addresses: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)
    contacts: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)
    communication: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)
    # "family given" folded for search (`name_key`): a coordinator types "petrov" and finds "Pétrov".
    name_key: str = SqlField(default="", max_length=520)
    # The family and the given names apart, folded the same way: FHIR searches them apart (Patient?family=,
    # Patient?given=, service/fhir/patient_criteria.py), and "Petrov Dana" in name_key does not say where the
    # family name ends.
    family_key: str = SqlField(default="", max_length=255)
    given_key: str = SqlField(default="", max_length=255)


def name_key(*names: str | None) -> str:
    """Names as searched: accents dropped (NFKD, combining marks removed), case folded, spaces collapsed."""
    text = unicodedata.normalize("NFKD", " ".join(n for n in names if n))
    folded = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(folded.split())


_NAME_KEYS = ("name_key", "family_key", "given_key")


def with_name_key(values: dict[str, Any]) -> dict[str, Any]:
    """The columns of a patient, with the search keys of its names."""
    family, given = values.get("family_name"), values.get("given_name")
    return {
        **values,
        "name_key": name_key(family, given) if family or given else name_key(values.get("name_text")),
        "family_key": name_key(family),
        "given_key": name_key(given),
    }


def without_name_key(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in _NAME_KEYS}


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
    family_name: Text | None = None
    given_name: Text | None = None
    name_text: Text | None = Field(
        default=None,
        validate_default=True,  # checks that some name is given
        description="The whole name as one text, when it is not sent in parts (HumanName.text)",
    )
    birth_date: date | None = None
    sex: AdministrativeSex
    restricted: bool = Field(
        default=False,
        description="Confidentiality R (e.g. a staff member or a public figure): the patient's data is hidden from "
        "clinicians and coordinators until a clinician breaks the glass (a reason, time-boxed, audited).",
    )
    deceased: bool = Field(default=False, description="Patient.deceased[x]: the enrolment ends and outreach stops")
    deceased_at: FhirDateTime | None = Field(
        default=None, description="When the patient died (R4 dateTime: YYYY, YYYY-MM, YYYY-MM-DD or an instant)"
    )
    time_zone: str | None = Field(
        default=None,
        description="The patient's IANA time zone, e.g. America/Chicago (FHIR: the timezone extension)",
    )
    names: list[FhirJson] = Field(
        default_factory=list, max_length=20, description="Every name as sent (FHIR R4 HumanName JSON)"
    )
    telecom: list[FhirJson] = Field(default_factory=list, max_length=20, description="FHIR R4 ContactPoint JSON")
    addresses: list[FhirJson] = Field(default_factory=list, max_length=20, description="FHIR R4 Address JSON")
    contacts: list[FhirJson] = Field(
        default_factory=list, max_length=20, description="FHIR R4 Patient.contact JSON (next of kin, guardian, …)"
    )
    communication: list[FhirJson] = Field(
        default_factory=list, max_length=20, description="FHIR R4 Patient.communication JSON (languages)"
    )

    @field_validator("birth_date")
    @classmethod
    def _not_in_future(cls, value: date | None) -> date | None:
        if value is None:
            return value
        if value > today_utc():
            raise ValueError("birth date is in the future")
        if value.year < 1900:
            raise ValueError("birth date is before 1900")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in iana_zones():
            raise ValueError(f"{value!r} is not an IANA time zone; send one such as America/Chicago or Europe/Oslo")
        return value

    @field_validator("deceased_at")
    @classmethod
    def _death_not_in_future(cls, value: str | None) -> str | None:
        if value is not None and earliest_instant(value) > now_utc():
            raise ValueError("the date of death is in the future; send when the patient died, or leave it out")
        return value

    @field_validator("names", "telecom", "addresses", "contacts", "communication")
    @classmethod
    def _valid_fhir(cls, value: list[dict[str, Any]], info: ValidationInfo) -> list[dict[str, Any]]:
        element = _ELEMENTS[str(info.field_name)]
        try:
            return fm.kept_datatypes({element: value}, element)
        except fm.MappingError as error:
            raise ValueError(f"{error.location.removeprefix('Patient.')}: {error.message}") from None

    @field_validator("name_text", mode="after")
    @classmethod
    def _named(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and not (info.data.get("family_name") or info.data.get("given_name")):
            raise ValueError("a patient needs a name: family_name, given_name, or the whole name as name_text")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PatientFields:
        if self.deceased_at is not None and not self.deceased:
            self.deceased = True  # a date of death says the patient died
        return self

    @field_validator("identifiers")
    @classmethod
    def _no_repeats(cls, value: list[MedicalRecordNumber]) -> list[MedicalRecordNumber]:
        pairs = [(i.system, i.value) for i in value]
        if len(pairs) != len(set(pairs)):
            raise ValueError("the same identifier is listed twice")
        return value


# API field -> the FHIR Patient element it holds.
_ELEMENTS = {
    "names": "name",
    "telecom": "telecom",
    "addresses": "address",
    "contacts": "contact",
    "communication": "communication",
}
# Where a refusal of a field is told on /fhir: the FHIR element (the intake names elements, not fields).
FHIR_ELEMENTS = {
    **_ELEMENTS,
    "family_name": "name.family",
    "given_name": "name.given",
    "name_text": "name.text",
    "birth_date": "birthDate",
    "sex": "gender",
    "deceased_at": "deceasedDateTime",
    "deceased": "deceasedBoolean",
    "time_zone": "extension",
}


@cache
def iana_zones() -> frozenset[str]:
    """The zone names zoneinfo knows (read once: available_timezones walks the tz database on every call)."""
    return frozenset(zoneinfo.available_timezones())


def earliest_instant(value: str) -> datetime:
    """The first instant an R4 dateTime can mean (2015 -> 2015-01-01T00:00Z; an instant is itself)."""
    if len(value) > 10:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    year, month, day = (int(part) for part in (value + "-01-01")[:10].split("-"))
    return datetime(year, month, day, tzinfo=UTC)


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


class ContactPhone(ApiModel):
    number: str
    use: str | None = Field(default=None, description="ContactPoint.use: home, work, mobile, temp")


class PatientContact(ApiModel):
    """How to reach the patient, read from telecom, addresses and communication as sent (fhir_mappings
    patient_contact.py): a contact point or address whose use is `old` is left out, rank 1 is preferred."""

    phones: list[ContactPhone] = Field(description="Phone and text-message numbers, the preferred (rank) first")
    email: str | None
    address: str | None = Field(description="The home address (else the first current one), as one line")
    preferred_channel: str | None = Field(
        description="phone, text message, e-mail, fax or pager: the contact point ranked first (none unranked)"
    )
    language: str | None = Field(description="The preferred language (communication.preferred), else the first")


class PatientPublic(RecordMeta, PatientFields):
    @computed_field(description="How to reach the patient (read-only: set telecom, addresses and communication)")
    def contact(self) -> PatientContact:
        found = fm.contact_summary(self.telecom, self.addresses, self.communication)
        return PatientContact(
            phones=[ContactPhone(number=p.number, use=p.use) for p in found.phones],
            email=found.email,
            address=found.address,
            preferred_channel=found.preferred_channel,
            language=found.language,
        )


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
