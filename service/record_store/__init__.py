"""Storing clinical records: the kinds, the store, and what every stored change sets off (projection, plan
refresh, outbox). Above `service.records` (the tables), below the edges (API, FHIR facade, pages, CLI)."""
