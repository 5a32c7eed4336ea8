"""The JSON API under /api/v1 and the pieces every route shares."""
