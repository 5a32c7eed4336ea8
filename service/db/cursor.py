"""The one codec of paging cursors: a few JSON values (a sort key, an id, …) as an opaque URL-safe token.

Both the JSON API's `cursor` and the FHIR facade's `_cursor` are keyset positions written by this service; a
client follows them as given. What the values mean, and which are valid, is the caller's (service/fhir/paging.py,
the record store's list); this module only refuses a token it cannot have written.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

_MAX_CHARS = 2048  # a cursor is a handful of short values; anything longer was not written here


def encode_cursor(*values: str | int | None) -> str:
    text = json.dumps(list(values), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(token: str, count: int) -> list[Any]:
    """The `count` values of a token encode_cursor wrote; ValueError for anything else."""
    try:
        if len(token) > _MAX_CHARS:
            raise ValueError("too long")
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ValueError("not a cursor of ours") from error
    if not isinstance(values, list) or len(values) != count:
        raise ValueError("not a cursor of ours")
    return values
