"""The embedded store: one SQLite file, zero set-up.

Each thread gets its own connection in WAL mode, so readers never block the
writer. A write runs in a single transaction: it is stored whole or not at
all, whatever its number of batches.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from service.errors import ConflictError, NotFoundError, StoreUnavailableError
from service.model import (
    CI,
    Change,
    Criticality,
    Incident,
    Procedure,
    Redundancy,
    Relationship,
    RelationshipType,
    Status,
    Strength,
    format_time,
    parse_time,
)
from service.store import embedded_events as events
from service.store import embedded_plan as plan
from service.store.base import (
    STATUS_CODES,
    ChangeFilter,
    ChangePage,
    CIFilter,
    CIPage,
    DeleteResult,
    Direction,
    IncidentFilter,
    IncidentPage,
    ProgressCallback,
    TopologyData,
    WriteResult,
    decode_cursor,
    delete_conflict_message,
    encode_cursor,
    search_text,
    validate_page_size,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_STATUS_CODE = {status.value: code for code, status in enumerate(STATUS_CODES)}
_UNKNOWN_STATUS = STATUS_CODES.index(Status.UNKNOWN)

_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ci (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    environment TEXT,
    criticality TEXT,
    owner TEXT,
    status TEXT NOT NULL,
    tags TEXT NOT NULL,
    attributes TEXT NOT NULL,
    source TEXT,
    source_id TEXT,
    valid_from TEXT,
    valid_until TEXT,
    search_text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ci_type ON ci(type);
CREATE INDEX IF NOT EXISTS ci_environment ON ci(environment);
CREATE TABLE IF NOT EXISTS relationship (
    pk INTEGER PRIMARY KEY,
    source_pk INTEGER NOT NULL REFERENCES ci(pk),
    target_pk INTEGER NOT NULL REFERENCES ci(pk),
    type TEXT NOT NULL,
    strength TEXT NOT NULL,
    redundancy_group TEXT,
    min_available INTEGER,
    min_available_percent REAL,
    attributes TEXT NOT NULL,
    valid_from TEXT,
    valid_until TEXT,
    UNIQUE (source_pk, target_pk, type)
);
CREATE INDEX IF NOT EXISTS relationship_target ON relationship(target_pk);
"""

_CI_COLUMNS = (
    "id, name, type, environment, criticality, owner, status, tags, attributes, "
    "source, source_id, valid_from, valid_until, search_text"
)

_UPSERT_CI = f"""
INSERT INTO ci ({_CI_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET
    name = excluded.name, type = excluded.type, environment = excluded.environment,
    criticality = excluded.criticality, owner = excluded.owner, status = excluded.status,
    tags = excluded.tags, attributes = excluded.attributes, source = excluded.source,
    source_id = excluded.source_id, valid_from = excluded.valid_from,
    valid_until = excluded.valid_until, search_text = excluded.search_text
WHERE name IS NOT excluded.name OR type IS NOT excluded.type
    OR environment IS NOT excluded.environment OR criticality IS NOT excluded.criticality
    OR owner IS NOT excluded.owner OR status IS NOT excluded.status
    OR tags IS NOT excluded.tags OR attributes IS NOT excluded.attributes
    OR source IS NOT excluded.source OR source_id IS NOT excluded.source_id
    OR valid_from IS NOT excluded.valid_from OR valid_until IS NOT excluded.valid_until
"""

_UPSERT_RELATIONSHIP = """
INSERT INTO relationship (
    source_pk, target_pk, type, strength, redundancy_group, min_available,
    min_available_percent, attributes, valid_from, valid_until
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(source_pk, target_pk, type) DO UPDATE SET
    strength = excluded.strength, redundancy_group = excluded.redundancy_group,
    min_available = excluded.min_available, min_available_percent = excluded.min_available_percent,
    attributes = excluded.attributes, valid_from = excluded.valid_from,
    valid_until = excluded.valid_until
WHERE strength IS NOT excluded.strength OR redundancy_group IS NOT excluded.redundancy_group
    OR min_available IS NOT excluded.min_available
    OR min_available_percent IS NOT excluded.min_available_percent
    OR attributes IS NOT excluded.attributes OR valid_from IS NOT excluded.valid_from
    OR valid_until IS NOT excluded.valid_until
"""

# SQL for the position of each relationship's type in ``RelationshipType``,
# or -1 for a type that this version does not know.
_TYPE_CODE_SQL = (
    "CASE type "
    + " ".join(f"WHEN '{member.value}' THEN {code}" for code, member in enumerate(RelationshipType))
    + " ELSE -1 END"
)

_RELATIONSHIP_SELECT = """
SELECT s.id, t.id, r.type, r.strength, r.redundancy_group, r.min_available,
       r.min_available_percent, r.attributes, r.valid_from, r.valid_until
FROM relationship r JOIN ci s ON s.pk = r.source_pk JOIN ci t ON t.pk = r.target_pk
"""


# Sorted keys make equal attributes compare equal as text, which keeps re-imports no-ops.
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _dump(value: Any) -> str:
    # Most tags and attributes are empty, so skip the encoder for those.
    if value == {} and isinstance(value, dict):
        return "{}"
    if value == [] and isinstance(value, list):
        return "[]"
    return _ENCODER.encode(value)


def _time_text(value: datetime | None) -> str | None:
    return format_time(value)


def _parse_stored_time(value: str | None) -> datetime | None:
    return None if value is None else parse_time(value, field_name="stored time")


def _epoch(value: str | None) -> float:
    return np.nan if value is None else parse_time(value, field_name="stored time").timestamp()


# Relationships per ``_edge_columns`` query, which keeps each text column far
# below SQLite's default maximum string length of 10**9 bytes.
_EDGE_COLUMNS_CHUNK = 4_000_000


def _edge_columns(connection: sqlite3.Connection) -> np.ndarray:
    """Return pk, source_pk, target_pk, type code and hard flag of every relationship, ordered by pk.

    The result has one row per relationship and 5 int64 columns. SQLite joins
    each column into one space-separated text in a single scan, so the rows
    of all columns line up.
    """
    low, high = connection.execute("SELECT min(pk), max(pk) FROM relationship").fetchone()
    chunks = []
    for start in range(low or 0, (high or -1) + 1, _EDGE_COLUMNS_CHUNK):
        texts = connection.execute(
            f"""
            SELECT group_concat(pk, ' '), group_concat(source_pk, ' '), group_concat(target_pk, ' '),
                   group_concat({_TYPE_CODE_SQL}, ' '), group_concat(strength = 'hard', ' ')
            FROM relationship WHERE pk >= ? AND pk < ?
            """,
            (start, start + _EDGE_COLUMNS_CHUNK),
        ).fetchone()
        if texts[0] is not None:
            chunks.append(np.stack([np.fromstring(text, dtype=np.int64, sep=" ") for text in texts], axis=1))
    if not chunks:
        return np.zeros((0, 5), dtype=np.int64)
    edges = np.concatenate(chunks)
    if (np.diff(edges[:, 0]) < 0).any():
        edges = edges[np.argsort(edges[:, 0], kind="stable")]
    return edges


def _validity_epochs(
    pks: np.ndarray, bounded_rows: list[tuple[int, str | None, str | None]]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the valid_from and valid_until epochs of the rows with these sorted pks, NaN where unbounded.

    ``bounded_rows`` holds (pk, valid_from, valid_until) of the rows that have a bound.
    """
    valid_from = np.full(len(pks), np.nan)
    valid_until = np.full(len(pks), np.nan)
    if bounded_rows:
        positions = np.searchsorted(pks, [row[0] for row in bounded_rows])
        valid_from[positions] = [_epoch(row[1]) for row in bounded_rows]
        valid_until[positions] = [_epoch(row[2]) for row in bounded_rows]
    return valid_from, valid_until


def _ci_row(ci: CI) -> tuple[Any, ...]:
    return (
        ci.id,
        ci.name,
        ci.type,
        ci.environment,
        # str() of a StrEnum member is its value, and faster than .value in bulk.
        str(ci.criticality) if ci.criticality else None,
        ci.owner,
        str(ci.status),
        _dump(list(ci.tags)),
        _dump(ci.attributes),
        ci.source,
        ci.source_id,
        _time_text(ci.valid_from),
        _time_text(ci.valid_until),
        search_text(ci),
    )


def _ci_from_row(row: sqlite3.Row | tuple[Any, ...]) -> CI:
    return CI(
        id=row[0],
        name=row[1],
        type=row[2],
        environment=row[3],
        criticality=Criticality(row[4]) if row[4] else None,
        owner=row[5],
        status=Status(row[6]),
        tags=tuple(json.loads(row[7])),
        attributes=json.loads(row[8]),
        source=row[9],
        source_id=row[10],
        valid_from=_parse_stored_time(row[11]),
        valid_until=_parse_stored_time(row[12]),
    )


def _relationship_row(relationship: Relationship, pk_of: dict[str, int]) -> tuple[Any, ...]:
    """Return the row of a relationship; an endpoint missing from ``pk_of`` becomes NULL."""
    redundancy = relationship.redundancy
    return (
        pk_of.get(relationship.source),
        pk_of.get(relationship.target),
        str(relationship.type),
        str(relationship.strength),
        redundancy.group if redundancy else None,
        redundancy.min_available if redundancy else None,
        redundancy.min_available_percent if redundancy else None,
        _dump(relationship.attributes),
        None if relationship.valid_from is None else format_time(relationship.valid_from),
        None if relationship.valid_until is None else format_time(relationship.valid_until),
    )


def _relationship_from_row(row: tuple[Any, ...]) -> Relationship:
    redundancy = None
    if row[4] is not None:
        redundancy = Redundancy(group=row[4], min_available=row[5], min_available_percent=row[6])
    return Relationship(
        source=row[0],
        target=row[1],
        type=RelationshipType(row[2]),
        strength=Strength(row[3]),
        redundancy=redundancy,
        attributes=json.loads(row[7]),
        valid_from=_parse_stored_time(row[8]),
        valid_until=_parse_stored_time(row[9]),
    )


# Page cache of a bulk write in KiB. With SQLite's default of 2 MiB, index
# updates spill to disk: the 1m graph of bench/generate.py took 10.3 CPU
# seconds to write against 8.9 s with 64 MiB (AMD EPYC, SQLite 3.40).
_BULK_CACHE_KIB = 65536
_BULK_ROWS = 10_000


@contextmanager
def _bulk_cache(connection: sqlite3.Connection, rows: int) -> Iterator[None]:
    """Give a write of at least ``_BULK_ROWS`` rows a larger page cache, and restore it after."""
    if rows < _BULK_ROWS:
        yield
        return
    previous = int(connection.execute("PRAGMA cache_size").fetchone()[0])
    connection.execute(f"PRAGMA cache_size = -{_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.execute(f"PRAGMA cache_size = {previous}")


def _pks_of(
    connection: sqlite3.Connection, relationships: Sequence[Relationship], *, stored_cis: int
) -> dict[str, int]:
    """Return the pk of every stored CI that the relationships name; missing CIs are left out."""
    ids = list({end for relationship in relationships for end in (relationship.source, relationship.target)})
    if len(ids) * 4 >= stored_cis:
        # A bulk write names most CIs, so one scan is cheaper than lookups by id.
        return dict(connection.execute("SELECT id, pk FROM ci"))
    pk_of: dict[str, int] = {}
    for chunk in _chunks(ids, 500):
        placeholders = ",".join("?" * len(chunk))
        pk_of.update(connection.execute(f"SELECT id, pk FROM ci WHERE id IN ({placeholders})", tuple(chunk)))
    return pk_of


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class EmbeddedStore:
    """A ``GraphStore`` kept in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._transaction() as connection:
                for statement in (_DDL + events.EVENTS_DDL + plan.PLAN_DDL).split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?), ('version', 0)",
                    (SCHEMA_VERSION,),
                )
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(
                f"cannot open the embedded store at {self.path}: {exc}; "
                "check that the directory exists and is writable, or set FAULTGRAPH_DB"
            ) from exc
        logger.info("embedded store opened at %s", self.path)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            # SQLite's lower() folds ASCII letters only; the name filter needs Unicode case folding.
            connection.create_function("unicode_lower", 1, str.lower, deterministic=True)
            self._local.connection = connection
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        else:
            connection.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN")
        try:
            yield connection
        finally:
            connection.execute("COMMIT")

    # Reads

    def version(self) -> int:
        row = self._connection().execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0])

    def check(self) -> None:
        try:
            self._connection().execute("SELECT 1 FROM meta LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"embedded store at {self.path} does not respond: {exc}; check the file and its directory") from exc

    def get_cis(self, ids: Sequence[str]) -> dict[str, CI]:
        result: dict[str, CI] = {}
        connection = self._connection()
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            placeholders = ",".join("?" * len(chunk))
            rows = connection.execute(
                f"SELECT {_CI_COLUMNS} FROM ci WHERE id IN ({placeholders})", tuple(chunk)
            )
            for row in rows:
                result[row[0]] = _ci_from_row(row)
        return result

    def list_cis(self, filter: CIFilter, first: int, after: str | None) -> CIPage:
        validate_page_size(first)
        conditions: list[str] = []
        parameters: list[Any] = []
        if filter.name:
            conditions.append("instr(unicode_lower(name), ?) > 0")
            parameters.append(filter.name.lower())
        if filter.type:
            conditions.append("type = ?")
            parameters.append(filter.type)
        if filter.environment:
            conditions.append("environment = ?")
            parameters.append(filter.environment)
        if filter.tag:
            conditions.append("EXISTS (SELECT 1 FROM json_each(ci.tags) WHERE json_each.value = ?)")
            parameters.append(filter.tag)
        if filter.text:
            conditions.append("instr(search_text, ?) > 0")
            parameters.append(filter.text.lower())
        where = " AND ".join(conditions) if conditions else "1"

        with self._read() as connection:
            total = connection.execute(f"SELECT count(*) FROM ci WHERE {where}", parameters).fetchone()[0]
            page_conditions, page_parameters = where, list(parameters)
            if after is not None:
                page_conditions += " AND id > ?"
                page_parameters.append(decode_cursor(after))
            rows = connection.execute(
                f"SELECT {_CI_COLUMNS} FROM ci WHERE {page_conditions} ORDER BY id LIMIT ?",
                [*page_parameters, first + 1],
            ).fetchall()
        items = [_ci_from_row(row) for row in rows[:first]]
        end_cursor = encode_cursor(items[-1].id) if items else None
        return CIPage(items=items, has_next_page=len(rows) > first, end_cursor=end_cursor, total_count=total)

    def relationships_of(self, ci_id: str, direction: Direction) -> list[Relationship]:
        column = "s.id" if direction == "outgoing" else "t.id"
        rows = self._connection().execute(
            f"{_RELATIONSHIP_SELECT} WHERE {column} = ? ORDER BY s.id, t.id, r.type", (ci_id,)
        )
        return [_relationship_from_row(row) for row in rows]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        connection = self._connection()
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            placeholders = ",".join("?" * len(chunk))
            rows = connection.execute(f"SELECT id FROM ci WHERE id IN ({placeholders})", tuple(chunk))
            found.update(row[0] for row in rows)
        return found

    def redundancy_members(self, consumer_ids: Sequence[str]) -> list[Relationship]:
        members: list[Relationship] = []
        connection = self._connection()
        for chunk in _chunks(list(dict.fromkeys(consumer_ids)), 400):
            placeholders = ",".join("?" * len(chunk))
            # The consumer is the source, except for PART_OF where it is the target.
            rows = connection.execute(
                f"""
                {_RELATIONSHIP_SELECT}
                WHERE r.redundancy_group IS NOT NULL
                  AND ((r.type <> 'PART_OF' AND s.id IN ({placeholders}))
                       OR (r.type = 'PART_OF' AND t.id IN ({placeholders})))
                """,
                (*chunk, *chunk),
            )
            members.extend(_relationship_from_row(row) for row in rows)
        return members

    def get_changes(self, ids: Sequence[str]) -> dict[str, Change]:
        with self._read() as connection:
            return events.get_changes(connection, ids)

    def get_incidents(self, ids: Sequence[str]) -> dict[str, Incident]:
        with self._read() as connection:
            return events.get_incidents(connection, ids)

    def list_changes(self, filter: ChangeFilter, first: int, after: str | None) -> ChangePage:
        with self._read() as connection:
            return events.list_changes(connection, filter, first, after)

    def list_incidents(self, filter: IncidentFilter, first: int, after: str | None) -> IncidentPage:
        with self._read() as connection:
            return events.list_incidents(connection, filter, first, after)

    # Writes

    def write(
        self,
        cis: Sequence[CI],
        relationships: Sequence[Relationship],
        *,
        changes: Sequence[Change] = (),
        incidents: Sequence[Incident] = (),
        procedures: Sequence[Procedure] = (),
        batch_size: int = 5000,
        progress: ProgressCallback | None = None,
    ) -> WriteResult:
        result = WriteResult()
        total = len(cis) + len(relationships) + len(changes) + len(incidents) + len(procedures)
        done = 0
        try:
            with self._write_lock, self._transaction() as connection, _bulk_cache(connection, total):
                before = connection.execute("SELECT count(*) FROM ci").fetchone()[0]
                rows_changed = connection.total_changes
                for chunk in _chunks(cis, batch_size):
                    connection.executemany(_UPSERT_CI, [_ci_row(ci) for ci in chunk])
                    done += len(chunk)
                    if progress:
                        progress(done, total)
                after = connection.execute("SELECT count(*) FROM ci").fetchone()[0]
                result.cis_created = after - before
                result.cis_updated = connection.total_changes - rows_changed - result.cis_created
                result.cis_unchanged = len(cis) - result.cis_created - result.cis_updated

                pk_of = _pks_of(connection, relationships, stored_cis=after)
                before = connection.execute("SELECT count(*) FROM relationship").fetchone()[0]
                rows_changed = connection.total_changes
                for chunk in _chunks(relationships, batch_size):
                    connection.executemany(_UPSERT_RELATIONSHIP, [_relationship_row(r, pk_of) for r in chunk])
                    done += len(chunk)
                    if progress:
                        progress(done, total)
                after = connection.execute("SELECT count(*) FROM relationship").fetchone()[0]
                result.relationships_created = after - before
                result.relationships_updated = (
                    connection.total_changes - rows_changed - result.relationships_created
                )
                result.relationships_unchanged = (
                    len(relationships) - result.relationships_created - result.relationships_updated
                )
                done = events.write_events(
                    connection,
                    changes,
                    incidents,
                    result,
                    batch_size=batch_size,
                    done=done,
                    total=total,
                    progress=progress,
                )
                done = plan.write_procedures(
                    connection, procedures, result, done=done, total=total, progress=progress
                )
                if result.changed:
                    self._bump_version(connection)
        except sqlite3.IntegrityError as exc:
            # The loader checks endpoints first; this only happens when a CI was
            # deleted between that check and this write.
            raise ConflictError(
                f"write rejected, nothing was written: {exc}; a relationship names a CI "
                "that is not stored, so import its CIs first"
            ) from exc
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"write to {self.path} failed, nothing was written: {exc}") from exc
        return result

    def _bump_version(self, connection: sqlite3.Connection) -> None:
        connection.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")

    def delete_ci(self, ci_id: str, *, cascade: bool) -> DeleteResult:
        with self._write_lock, self._transaction() as connection:
            row = connection.execute("SELECT pk FROM ci WHERE id = ?", (ci_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"CI {ci_id!r} not found; nothing was deleted")
            pk = row[0]
            attached = connection.execute(
                "SELECT count(*) FROM relationship WHERE source_pk = ? OR target_pk = ?", (pk, pk)
            ).fetchone()[0]
            change_links, incident_links = events.count_links(connection, pk)
            if (attached or change_links or incident_links) and not cascade:
                raise ConflictError(delete_conflict_message(ci_id, attached, change_links, incident_links))
            connection.execute("DELETE FROM relationship WHERE source_pk = ? OR target_pk = ?", (pk, pk))
            events.delete_links(connection, pk)
            connection.execute("DELETE FROM ci WHERE pk = ?", (pk,))
            self._bump_version(connection)
        return DeleteResult(
            cis_deleted=1,
            relationships_deleted=attached,
            change_links_deleted=change_links,
            incident_links_deleted=incident_links,
        )

    def delete_relationship(self, source: str, target: str, type_: str) -> bool:
        with self._write_lock, self._transaction() as connection:
            cursor = connection.execute(
                """
                DELETE FROM relationship WHERE type = ?
                  AND source_pk = (SELECT pk FROM ci WHERE id = ?)
                  AND target_pk = (SELECT pk FROM ci WHERE id = ?)
                """,
                (type_, source, target),
            )
            deleted = cursor.rowcount > 0
            if deleted:
                self._bump_version(connection)
        return deleted

    # Bulk read for analysis

    def load_topology(self) -> TopologyData:
        # Integer columns come back as text that numpy parses, and only the
        # rows with a redundancy group or a validity bound are read one by one,
        # so a million relationships load without per-row Python work.
        with self._read() as connection:
            version = connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0]
            node_rows = connection.execute("SELECT pk, id, type FROM ci ORDER BY pk").fetchall()
            status_rows = connection.execute(
                "SELECT pk, status FROM ci WHERE status <> 'operational'"
            ).fetchall()
            node_bounds = connection.execute(
                "SELECT pk, valid_from, valid_until FROM ci "
                "WHERE valid_from IS NOT NULL OR valid_until IS NOT NULL"
            ).fetchall()
            edges = _edge_columns(connection)
            group_rows = connection.execute(
                "SELECT pk, redundancy_group, min_available, min_available_percent FROM relationship "
                "WHERE redundancy_group IS NOT NULL"
            ).fetchall()
            edge_bounds = connection.execute(
                "SELECT pk, valid_from, valid_until FROM relationship "
                "WHERE valid_from IS NOT NULL OR valid_until IS NOT NULL"
            ).fetchall()

        node_pks = np.array([row[0] for row in node_rows], dtype=np.int64)
        index_of_pk = np.full(int(node_pks.max()) + 1 if len(node_pks) else 1, -1, dtype=np.int64)
        index_of_pk[node_pks] = np.arange(len(node_pks))
        edge_pks, type_codes = edges[:, 0], edges[:, 3]
        if (type_codes < 0).any():
            unknown = connection.execute(
                f"SELECT DISTINCT type FROM relationship WHERE {_TYPE_CODE_SQL} < 0"
            ).fetchall()
            raise StoreUnavailableError(
                f"embedded store at {self.path} holds relationship types that this version does not know: "
                f"{', '.join(row[0] for row in unknown)}; upgrade faultgraph or delete those relationships"
            )

        edge_count = len(edges)
        edge_group: list[str | None] = [None] * edge_count
        min_available = np.full(edge_count, np.nan)
        min_percent = np.full(edge_count, np.nan)
        if group_rows:
            positions = np.searchsorted(edge_pks, [row[0] for row in group_rows])
            for position, row in zip(positions.tolist(), group_rows):
                edge_group[position] = row[1]
            min_available[positions] = [np.nan if row[2] is None else row[2] for row in group_rows]
            min_percent[positions] = [np.nan if row[3] is None else row[3] for row in group_rows]

        node_valid_from, node_valid_until = _validity_epochs(node_pks, node_bounds)
        edge_valid_from, edge_valid_until = _validity_epochs(edge_pks, edge_bounds)
        node_status = np.zeros(len(node_pks), dtype=np.int8)
        if status_rows:
            positions = np.searchsorted(node_pks, [row[0] for row in status_rows])
            node_status[positions] = [_STATUS_CODE.get(row[1], _UNKNOWN_STATUS) for row in status_rows]
        return TopologyData(
            version=int(version),
            ids=[row[1] for row in node_rows],
            types=[row[2] for row in node_rows],
            node_valid_from=node_valid_from,
            node_valid_until=node_valid_until,
            edge_source=index_of_pk[edges[:, 1]],
            edge_target=index_of_pk[edges[:, 2]],
            edge_type=type_codes.astype(np.int8),
            edge_hard=edges[:, 4].astype(bool),
            edge_group=edge_group,
            edge_min_available=min_available,
            edge_min_percent=min_percent,
            edge_valid_from=edge_valid_from,
            edge_valid_until=edge_valid_until,
            node_status=node_status,
        )

    def load_events(self) -> tuple[int, list[Change], list[Incident]]:
        with self._read() as connection:
            version = connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0]
            changes, incidents = events.load_events(connection)
        return int(version), changes, incidents

    def get_procedures(self, ids: Sequence[str]) -> dict[str, Procedure]:
        with self._read() as connection:
            return plan.get_procedures(connection, ids)

    def load_procedures(self) -> tuple[int, list[Procedure]]:
        with self._read() as connection:
            version = connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0]
            procedures = plan.load_procedures(connection)
        return int(version), procedures

    def delete_procedure(self, procedure_id: str) -> bool:
        try:
            with self._write_lock, self._transaction() as connection:
                deleted = plan.delete_procedure(connection, procedure_id)
                if deleted:
                    self._bump_version(connection)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"write to {self.path} failed, nothing was written: {exc}") from exc
        return deleted

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
