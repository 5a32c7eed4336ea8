"""The programme outcomes as the care team and the quality office read them: the facts loaded for a period,
protocol, site or therapist, the pure report (service/outcomes), its CSV and FHIR MeasureReport exports, audited as
a population read."""
