"""The one cursor codec (service/db/cursor.py) under both pagers: the JSON API's and the FHIR facade's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.db.cursor import decode_cursor, encode_cursor
from service.fhir import paging


def test_values_come_back_as_written() -> None:
    token = encode_cursor("2026-12-02T18:00:00+00:00", "3f2a")
    assert "=" not in token and decode_cursor(token, 2) == ["2026-12-02T18:00:00+00:00", "3f2a"]


@pytest.mark.parametrize("token", ["", "not base64 !", encode_cursor("a", "b", "c"), "x" * 5000])
def test_a_token_we_did_not_write_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="not a cursor of ours"):
        decode_cursor(token, 2)


def test_an_api_cursor_is_not_a_fhir_cursor() -> None:
    fhir = paging.Cursor("-_lastUpdated", 20, datetime(2026, 12, 2, tzinfo=UTC), "r1")
    assert paging.decode(fhir.encode()) == fhir
    with pytest.raises(ValueError):
        paging.decode(encode_cursor(datetime(2026, 12, 2, tzinfo=UTC).isoformat(), "r1"))
