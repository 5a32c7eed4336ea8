"""The FHIR R4 facade at /fhir: a translator over the domain records, never a second system of record."""
