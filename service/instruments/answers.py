"""The raw answer to one instrument item, as the API receives it and the database stores it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

_VALUE_FIELDS = ("value_coding", "value_integer", "value_decimal", "value_string", "value_boolean")


class Coding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Optional because real senders omit it (the uwcirg GAD-7 codes carry no system).
    system: str | None = None
    code: str = Field(min_length=1, max_length=255)
    display: str | None = None


class ItemAnswer(BaseModel):
    """One answer, mirroring FHIR QuestionnaireResponse.item.answer.value[x]: exactly one value is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    link_id: str = Field(min_length=1, max_length=255)
    value_coding: Coding | None = None
    value_integer: int | None = None
    value_decimal: float | None = None
    value_string: str | None = None
    value_boolean: bool | None = None
    # The item's text as the sender wrote it: kept and served back, never read by scoring.
    text: str | None = Field(default=None, min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _exactly_one_value(self) -> ItemAnswer:
        present = [name for name in _VALUE_FIELDS if getattr(self, name) is not None]
        if len(present) != 1:
            found = ", ".join(present) if present else "none"
            raise ValueError(
                f"answer to item {self.link_id!r} must set exactly one of {', '.join(_VALUE_FIELDS)}; found {found}"
            )
        return self

    def describe_value(self) -> str:
        """The value as a short human string, for error messages and findings."""
        if self.value_coding is not None:
            system = self.value_coding.system
            return f"code {self.value_coding.code!r}" + (f" (system {system})" if system else "")
        for name in _VALUE_FIELDS[1:]:
            value = getattr(self, name)
            if value is not None:
                return f"{name.removeprefix('value_')} {value!r}"
        return "no value"  # unreachable: the validator guarantees one value
