"""A registered external Questionnaire: the model `external` builds and `sdc_fhirpath` evaluates.

Its own module so the FHIRPath evaluator can read it without importing the registration code that calls it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .instrument import Instrument
from .registry import INSTRUMENTS


class ExternalQuestionnaire(BaseModel):
    """A registered Questionnaire: how its linkIds and answer codes map onto one of our instruments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    canonical: str
    version: str | None
    instrument_key: str
    # Their linkId -> our item link id.
    link_ids: dict[str, str]
    ignored_link_ids: tuple[str, ...]
    total_link_id: str | None
    # Their linkId -> {"system|code": ordinal}, from ordinalValue/itemWeight or a contained ValueSet.
    ordinals: dict[str, dict[str, int]]
    questionnaire: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.canonical}|{self.version}" if self.version else self.canonical

    @property
    def instrument(self) -> Instrument:
        return INSTRUMENTS[self.instrument_key]
