"""The SPRAVATO REMS Patient Monitoring Form for esketamine sessions: prefill (`form`), PDF (`pdf`), and the
session's record of its submission (`session_form`). Tandem never submits the form to the REMS programme."""
