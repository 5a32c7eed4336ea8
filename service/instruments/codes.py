"""Code systems and extension URLs shared by the instrument definitions, intake and publication."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

LOINC: Final = "http://loinc.org"

# Placeholder base for our own canonical URLs, kept in one place so a deployment can change it.
CANONICAL_BASE: Final = "https://tandem.example.org/fhir"
QUESTIONNAIRE_BASE: Final = f"{CANONICAL_BASE}/Questionnaire"
CODESYSTEM_BASE: Final = f"{CANONICAL_BASE}/CodeSystem"

# R4 4.0.1 core extension "ordinalValue" (http://hl7.org/fhir/R4/extension-ordinalvalue.html); R5 replaced
# it by the element/extension itemWeight (http://hl7.org/fhir/StructureDefinition/itemWeight), which SDC
# also documents. We publish ordinalValue (R4) and read both.
ORDINAL_VALUE_URL: Final = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
ITEM_WEIGHT_URL: Final = "http://hl7.org/fhir/StructureDefinition/itemWeight"
# SDC calculatedExpression and variable extensions (SDC 3.0, http://hl7.org/fhir/uv/sdc/expressions.html).
CALCULATED_EXPRESSION_URL: Final = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)
VARIABLE_URL: Final = "http://hl7.org/fhir/StructureDefinition/variable"

# PHQ answer list LL358-3 (LOINC; also US Core 7.0.0 Questionnaire-phq-9-example answerOption ordinals).
NOT_AT_ALL: Final = "LA6568-5"
SEVERAL_DAYS: Final = "LA6569-3"
MORE_THAN_HALF_THE_DAYS: Final = "LA6570-1"
NEARLY_EVERY_DAY: Final = "LA6571-9"

# Yes/No answers of the C-SSRS items: LOINC answer list LL5384-4 (https://cdn.loinc.org/93245-9/panel),
# used by the ONC BHP C-SSRS-example-1 QuestionnaireResponse.
YES: Final = "LA33-6"
NO: Final = "LA32-8"


def coding_key(system: str | None, code: str) -> str:
    """Key of a coding in an ordinal table (a registered Questionnaire's answer code -> its ordinal)."""
    return f"{system or ''}|{code}"


def lookup_coding(table: Mapping[str, int], system: str | None, code: str) -> int | None:
    """Value for a coding; a missing system on either side matches any system, if that is unambiguous."""
    exact = table.get(coding_key(system, code))
    if exact is not None:
        return exact
    if system is not None:
        return table.get(coding_key(None, code))
    values = {value for key, value in table.items() if key.split("|", 1)[1] == code}
    return values.pop() if len(values) == 1 else None
