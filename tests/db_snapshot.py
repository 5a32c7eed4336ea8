"""A checksum of every table, to prove a refused request changed nothing."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, text

from service.records.base import metadata


def database_checksum(engine: Engine, exclude: frozenset[str] | set[str] = frozenset()) -> str:
    digest = hashlib.sha256()
    with engine.connect() as connection:
        for table in sorted(set(metadata.tables) - set(exclude)):
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()
            digest.update(table.encode())
            for row in sorted(repr(tuple(row)) for row in rows):
                digest.update(row.encode())
    return digest.hexdigest()
