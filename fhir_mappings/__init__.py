"""Pure mappings between Tandem's records and HL7 FHIR R4 resources.

This package imports nothing from the service, the database or the web framework (a test enforces it).
"""

__all__: list[str] = []
