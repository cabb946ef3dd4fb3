"""Emergency-plan procedures in the embedded store's SQLite file.

A procedure is one ``procedure`` row: its id, a few columns to read it by,
and the whole record as JSON text (``procedure_document``), which is also
what a write compares to tell an unchanged procedure from an updated one.

These functions run inside the store's transactions; ``EmbeddedStore`` owns
the connections and the version counter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from service.model import Procedure
from service.store.base import (
    ProgressCallback,
    WriteResult,
    plan_procedure_writes,
    procedure_from_document,
)

PLAN_DDL = """
CREATE TABLE IF NOT EXISTS procedure (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    level TEXT NOT NULL,
    action TEXT NOT NULL,
    document TEXT NOT NULL
);
"""

_UPSERT = """
INSERT INTO procedure (id, title, level, action, document) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET title = excluded.title, level = excluded.level,
    action = excluded.action, document = excluded.document
"""

# Ids per ``IN (...)`` list, well below SQLite's limit on bound parameters.
_ID_CHUNK = 500


def _documents(connection: sqlite3.Connection, ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _ID_CHUNK):
        chunk = unique[start : start + _ID_CHUNK]
        placeholders = ", ".join("?" * len(chunk))
        rows = connection.execute(f"SELECT id, document FROM procedure WHERE id IN ({placeholders})", chunk)
        found.update(rows.fetchall())
    return found


def get_procedures(connection: sqlite3.Connection, ids: Sequence[str]) -> dict[str, Procedure]:
    return {procedure_id: procedure_from_document(document) for procedure_id, document in _documents(connection, ids).items()}


def load_procedures(connection: sqlite3.Connection) -> list[Procedure]:
    rows = connection.execute("SELECT document FROM procedure ORDER BY id").fetchall()
    return [procedure_from_document(document) for (document,) in rows]


def write_procedures(
    connection: sqlite3.Connection,
    procedures: Sequence[Procedure],
    result: WriteResult,
    *,
    done: int,
    total: int,
    progress: ProgressCallback | None,
) -> int:
    """Upsert the procedures, add their counts to ``result`` and return the records done so far."""
    if not procedures:
        return done
    stored = _documents(connection, [procedure.id for procedure in procedures])
    dirty = plan_procedure_writes(procedures, stored, result)
    by_id = {procedure.id: procedure for procedure in procedures}
    connection.executemany(
        _UPSERT,
        [
            (procedure_id, by_id[procedure_id].title, by_id[procedure_id].level.value, by_id[procedure_id].action.value, document)
            for procedure_id, document in dirty.items()
        ],
    )
    done += len(procedures)
    if progress:
        progress(done, total)
    return done


def delete_procedure(connection: sqlite3.Connection, procedure_id: str) -> bool:
    return connection.execute("DELETE FROM procedure WHERE id = ?", (procedure_id,)).rowcount > 0
