"""Practitioners: the clinicians who give ketamine, the therapists who run CBT, the coordinators."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from sqlalchemy import UniqueConstraint
from sqlmodel import Field as SqlField

from service.records.base import ApiModel, RecordMeta, SourceIdentifier, TenantRecord, Text

PractitionerRole = Literal["psychiatrist", "anesthesiologist", "nurse", "therapist", "coordinator", "other"]


class Practitioner(TenantRecord, table=True):
    __tablename__ = "practitioners"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "id"),
    )

    family_name: str = SqlField(max_length=255)
    given_name: str | None = SqlField(default=None, max_length=255)
    role: str = SqlField(max_length=32)
    active: bool = True


class PractitionerFields(ApiModel):
    """What a client may set; the service owns id, version, timestamps and tenant."""

    family_name: Text
    given_name: Text | None = None
    role: PractitionerRole
    active: bool = True


class PractitionerCreate(PractitionerFields):
    source: SourceIdentifier | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.697780", "value": "T-1042"},
                    "family_name": "Okafor",
                    "given_name": "Ada",
                    "role": "therapist",
                }
            ]
        }
    )


class PractitionerPublic(RecordMeta, PractitionerFields):
    pass
