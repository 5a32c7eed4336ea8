"""Test infrastructure for EHR sync: a real sekmet-fhir peer (open or SMART), a fault-injecting proxy."""
