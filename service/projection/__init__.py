"""The FHIR projection: the stored resources the facade reads and searches (tables.py) and their writing, kept in
step with the records inside each write's transaction (writes.py).

Below the store and the facade: the store and the plan refresh write it, the /fhir facade reads it.
"""
