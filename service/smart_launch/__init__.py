"""SMART App Launch of the patient page (issue #20 part 2): Tandem as a SMART app of the hospital's EHR.

`registration` (the EHR registered per tenant as an authorization server), `pkce` (state and verifier),
`discovery` (the EHR's .well-known/smart-configuration), `flow` (launch and callback), `roles` (fhirUser and scopes
to a Tandem role), `patients` (the launch context's patient to Tandem's), `tables` (what is stored).
"""
