"""Patient self-report between visits (issue #22): invitations with single-use links, the patient's form, the
crisis path, and the answers written as QuestionnaireResponses through the one write path.

`invitations` is the interface the delivery channels use (see its docstring)."""
