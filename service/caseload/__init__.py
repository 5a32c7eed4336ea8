"""The coordinator's caseload: plan statuses materialised on every write, flag acknowledgements, protocols."""
