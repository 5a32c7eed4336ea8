"""CDS Hooks 2.0: Tandem's plan status as a card in the EHR (discovery, patient-view, the EHR's signed JWTs)."""
