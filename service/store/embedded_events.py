"""Changes and incidents in the embedded store's SQLite file.

A change is a ``change`` row plus one ``change_affects`` row per affected CI;
an incident is an ``incident`` row plus one ``incident_ci`` row per impacted
or root-cause CI, and refers to the change that caused it by its pk. Link rows
keep the position of each CI id in its list, so lists read back in the order
they were written. Times are ``event_time_text``: fixed-width UTC text whose
string order is time order, so the time filters compare text.

These functions run inside the store's transactions; ``EmbeddedStore`` owns
the connections and the version counter.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from service.errors import ConflictError
from service.model import (
    Change,
    ChangeKind,
    ChangeStatus,
    Incident,
    IncidentStatus,
    Risk,
    Severity,
    parse_time,
)
from service.store.base import (
    ChangeFilter,
    ChangePage,
    IncidentFilter,
    IncidentPage,
    ProgressCallback,
    WriteResult,
    change_search_text,
    change_window_texts,
    decode_cursor,
    encode_cursor,
    event_time_text,
    incident_search_text,
    validate_page_size,
)

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS change (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    risk TEXT NOT NULL,
    planned_start TEXT,
    planned_end TEXT,
    actual_start TEXT,
    actual_end TEXT,
    implementer TEXT,
    description TEXT,
    rollback_procedure TEXT,
    attributes TEXT NOT NULL,
    window_start TEXT,
    window_end TEXT,
    search_text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS change_window_start ON change(window_start);
CREATE TABLE IF NOT EXISTS change_affects (
    change_pk INTEGER NOT NULL REFERENCES change(pk),
    ci_pk INTEGER NOT NULL REFERENCES ci(pk),
    position INTEGER NOT NULL,
    PRIMARY KEY (change_pk, ci_pk)
);
CREATE INDEX IF NOT EXISTS change_affects_ci ON change_affects(ci_pk);
CREATE TABLE IF NOT EXISTS incident (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    detected_at TEXT,
    resolved_at TEXT,
    symptom_text TEXT,
    symptom_tags TEXT NOT NULL,
    caused_by_change_pk INTEGER REFERENCES change(pk),
    resolved_with TEXT,
    attributes TEXT NOT NULL,
    search_text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_started_at ON incident(started_at);
CREATE INDEX IF NOT EXISTS incident_caused_by ON incident(caused_by_change_pk);
CREATE TABLE IF NOT EXISTS incident_ci (
    incident_pk INTEGER NOT NULL REFERENCES incident(pk),
    ci_pk INTEGER NOT NULL REFERENCES ci(pk),
    role TEXT NOT NULL CHECK (role IN ('impacted', 'root_cause')),
    position INTEGER NOT NULL,
    PRIMARY KEY (incident_pk, role, ci_pk)
);
CREATE INDEX IF NOT EXISTS incident_ci_ci ON incident_ci(ci_pk);
"""

_IMPACTED = "impacted"
_ROOT_CAUSE = "root_cause"

_CHANGE_COLUMNS = (
    "id, title, kind, status, risk, planned_start, planned_end, actual_start, actual_end, "
    "implementer, description, rollback_procedure, attributes, window_start, window_end, search_text"
)
_CHANGE_UPDATES = ", ".join(f"{name} = excluded.{name}" for name in _CHANGE_COLUMNS.split(", ") if name != "id")
_UPSERT_CHANGE = f"""
INSERT INTO change ({_CHANGE_COLUMNS}) VALUES ({", ".join("?" * 16)})
ON CONFLICT(id) DO UPDATE SET {_CHANGE_UPDATES}
RETURNING pk
"""

# Incident columns as written; reads put the causing change's id in place of its pk.
_INCIDENT_COLUMNS = (
    "id, title, severity, status, started_at, detected_at, resolved_at, symptom_text, symptom_tags, "
    "caused_by_change_pk, resolved_with, attributes, search_text"
)
_INCIDENT_UPDATES = ", ".join(f"{name} = excluded.{name}" for name in _INCIDENT_COLUMNS.split(", ") if name != "id")
_UPSERT_INCIDENT = f"""
INSERT INTO incident ({_INCIDENT_COLUMNS}) VALUES ({", ".join("?" * 13)})
ON CONFLICT(id) DO UPDATE SET {_INCIDENT_UPDATES}
RETURNING pk
"""
_INCIDENT_SELECT = """
SELECT i.pk, i.id, i.title, i.severity, i.status, i.started_at, i.detected_at, i.resolved_at,
       i.symptom_text, i.symptom_tags, c.id, i.resolved_with, i.attributes, i.search_text
FROM incident i LEFT JOIN change c ON c.pk = i.caused_by_change_pk
"""

# Ids per ``IN (...)`` list, well below SQLite's limit on bound parameters.
_ID_CHUNK = 500


def _dump(value: Any) -> str:
    # The same text as the CI columns: sorted keys make equal attributes equal as text.
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _time(value: Any) -> str | None:
    return None if value is None else event_time_text(value)


def _parse(value: str | None) -> Any:
    return None if value is None else parse_time(value, field_name="stored time")


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _change_row(change: Change) -> tuple[Any, ...]:
    window_start, window_end = change_window_texts(change)
    return (
        change.id,
        change.title,
        change.kind.value,
        change.status.value,
        change.risk.value,
        _time(change.planned_start),
        _time(change.planned_end),
        _time(change.actual_start),
        _time(change.actual_end),
        change.implementer,
        change.description,
        change.rollback_procedure,
        _dump(change.attributes),
        window_start,
        window_end,
        change_search_text(change),
    )


def _change_from_row(row: Sequence[Any], affected: tuple[str, ...]) -> Change:
    return Change(
        id=row[0],
        title=row[1],
        kind=ChangeKind(row[2]),
        status=ChangeStatus(row[3]),
        risk=Risk(row[4]),
        planned_start=_parse(row[5]),
        planned_end=_parse(row[6]),
        actual_start=_parse(row[7]),
        actual_end=_parse(row[8]),
        implementer=row[9],
        description=row[10],
        rollback_procedure=row[11],
        attributes=json.loads(row[12]),
        affected=affected,
    )


def _incident_row(incident: Incident) -> tuple[Any, ...]:
    """Return the incident's columns, with the causing change's id where the table has its pk."""
    return (
        incident.id,
        incident.title,
        incident.severity.value,
        incident.status.value,
        event_time_text(incident.started_at),
        _time(incident.detected_at),
        _time(incident.resolved_at),
        incident.symptom_text,
        _dump(list(incident.symptom_tags)),
        incident.caused_by_change,
        incident.resolved_with,
        _dump(incident.attributes),
        incident_search_text(incident),
    )


def _incident_from_row(row: Sequence[Any], impacted: tuple[str, ...], root_causes: tuple[str, ...]) -> Incident:
    return Incident(
        id=row[0],
        title=row[1],
        severity=Severity(row[2]),
        status=IncidentStatus(row[3]),
        started_at=parse_time(row[4], field_name="stored time"),
        detected_at=_parse(row[5]),
        resolved_at=_parse(row[6]),
        symptom_text=row[7],
        symptom_tags=tuple(json.loads(row[8])),
        caused_by_change=row[9],
        resolved_with=row[10],
        attributes=json.loads(row[11]),
        impacted=impacted,
        root_causes=root_causes,
    )


# Reads


def _change_rows(
    connection: sqlite3.Connection, where: str, parameters: Sequence[Any]
) -> list[tuple[int, tuple[Any, ...]]]:
    rows = connection.execute(f"SELECT pk, {_CHANGE_COLUMNS} FROM change WHERE {where}", parameters)
    return [(row[0], tuple(row[1:])) for row in rows]


def _affected_of(connection: sqlite3.Connection, pks: Sequence[int] | None) -> dict[int, list[str]]:
    """Return the affected CI ids of each change pk, in order; None reads every change."""
    query = (
        "SELECT a.change_pk, ci.id FROM change_affects a JOIN ci ON ci.pk = a.ci_pk {where} "
        "ORDER BY a.change_pk, a.position"
    )
    affected: dict[int, list[str]] = {}
    if pks is None:
        batches: list[tuple[str, Sequence[Any]]] = [(query.format(where=""), ())]
    else:
        batches = [
            (query.format(where=f"WHERE a.change_pk IN ({','.join('?' * len(chunk))})"), chunk)
            for chunk in _chunks(list(pks), _ID_CHUNK)
        ]
    for statement, parameters in batches:
        for change_pk, ci_id in connection.execute(statement, tuple(parameters)):
            affected.setdefault(change_pk, []).append(ci_id)
    return affected


def _build_changes(
    connection: sqlite3.Connection, rows: list[tuple[int, tuple[Any, ...]]], *, every: bool = False
) -> list[Change]:
    affected = _affected_of(connection, None if every else [pk for pk, _ in rows])
    return [_change_from_row(row, tuple(affected.get(pk, ()))) for pk, row in rows]


def _incident_rows(
    connection: sqlite3.Connection, where: str, parameters: Sequence[Any]
) -> list[tuple[int, tuple[Any, ...]]]:
    rows = connection.execute(f"{_INCIDENT_SELECT} WHERE {where}", parameters)
    return [(row[0], tuple(row[1:])) for row in rows]


def _links_of(connection: sqlite3.Connection, pks: Sequence[int] | None) -> dict[tuple[int, str], list[str]]:
    """Return the CI ids of each (incident pk, role), in order; None reads every incident."""
    query = (
        "SELECT l.incident_pk, l.role, ci.id FROM incident_ci l JOIN ci ON ci.pk = l.ci_pk {where} "
        "ORDER BY l.incident_pk, l.role, l.position"
    )
    links: dict[tuple[int, str], list[str]] = {}
    if pks is None:
        batches: list[tuple[str, Sequence[Any]]] = [(query.format(where=""), ())]
    else:
        batches = [
            (query.format(where=f"WHERE l.incident_pk IN ({','.join('?' * len(chunk))})"), chunk)
            for chunk in _chunks(list(pks), _ID_CHUNK)
        ]
    for statement, parameters in batches:
        for incident_pk, role, ci_id in connection.execute(statement, tuple(parameters)):
            links.setdefault((incident_pk, role), []).append(ci_id)
    return links


def _build_incidents(
    connection: sqlite3.Connection, rows: list[tuple[int, tuple[Any, ...]]], *, every: bool = False
) -> list[Incident]:
    links = _links_of(connection, None if every else [pk for pk, _ in rows])
    return [
        _incident_from_row(row, tuple(links.get((pk, _IMPACTED), ())), tuple(links.get((pk, _ROOT_CAUSE), ())))
        for pk, row in rows
    ]


def get_changes(connection: sqlite3.Connection, ids: Sequence[str]) -> dict[str, Change]:
    rows: list[tuple[int, tuple[Any, ...]]] = []
    for chunk in _chunks(list(dict.fromkeys(ids)), _ID_CHUNK):
        rows.extend(_change_rows(connection, f"id IN ({','.join('?' * len(chunk))})", tuple(chunk)))
    return {change.id: change for change in _build_changes(connection, rows)}


def get_incidents(connection: sqlite3.Connection, ids: Sequence[str]) -> dict[str, Incident]:
    rows: list[tuple[int, tuple[Any, ...]]] = []
    for chunk in _chunks(list(dict.fromkeys(ids)), _ID_CHUNK):
        rows.extend(_incident_rows(connection, f"i.id IN ({','.join('?' * len(chunk))})", tuple(chunk)))
    return {incident.id: incident for incident in _build_incidents(connection, rows)}


def list_changes(connection: sqlite3.Connection, filter: ChangeFilter, first: int, after: str | None) -> ChangePage:
    validate_page_size(first, noun="changes")
    conditions: list[str] = []
    parameters: list[Any] = []
    if filter.ci_ids is not None:
        # A JSON array keeps any number of ids within one bound parameter.
        conditions.append(
            "EXISTS (SELECT 1 FROM change_affects a JOIN ci ON ci.pk = a.ci_pk "
            "WHERE a.change_pk = change.pk AND ci.id IN (SELECT value FROM json_each(?)))"
        )
        parameters.append(json.dumps(list(filter.ci_ids)))
    if filter.since is not None:
        conditions.append("window_start IS NOT NULL AND (window_end IS NULL OR window_end >= ?)")
        parameters.append(event_time_text(filter.since))
    if filter.until is not None:
        conditions.append("window_start IS NOT NULL AND window_start <= ?")
        parameters.append(event_time_text(filter.until))
    if filter.status:
        conditions.append("status = ?")
        parameters.append(filter.status)
    if filter.kind:
        conditions.append("kind = ?")
        parameters.append(filter.kind)
    if filter.text:
        conditions.append("instr(search_text, ?) > 0")
        parameters.append(filter.text.lower())
    where = " AND ".join(conditions) if conditions else "1"

    total = connection.execute(f"SELECT count(*) FROM change WHERE {where}", parameters).fetchone()[0]
    page_where, page_parameters = where, list(parameters)
    if after is not None:
        page_where += " AND id > ?"
        page_parameters.append(decode_cursor(after))
    rows = _change_rows(connection, f"{page_where} ORDER BY id LIMIT ?", [*page_parameters, first + 1])
    items = _build_changes(connection, rows[:first])
    end_cursor = encode_cursor(items[-1].id) if items else None
    return ChangePage(items=items, has_next_page=len(rows) > first, end_cursor=end_cursor, total_count=total)


def list_incidents(
    connection: sqlite3.Connection, filter: IncidentFilter, first: int, after: str | None
) -> IncidentPage:
    validate_page_size(first, noun="incidents")
    conditions: list[str] = []
    parameters: list[Any] = []
    if filter.ci_ids is not None:
        conditions.append(
            "EXISTS (SELECT 1 FROM incident_ci l JOIN ci ON ci.pk = l.ci_pk "
            "WHERE l.incident_pk = i.pk AND ci.id IN (SELECT value FROM json_each(?)))"
        )
        parameters.append(json.dumps(list(filter.ci_ids)))
    if filter.since is not None:
        conditions.append("i.started_at >= ?")
        parameters.append(event_time_text(filter.since))
    if filter.until is not None:
        conditions.append("i.started_at <= ?")
        parameters.append(event_time_text(filter.until))
    if filter.status:
        conditions.append("i.status = ?")
        parameters.append(filter.status)
    if filter.severity:
        conditions.append("i.severity = ?")
        parameters.append(filter.severity)
    if filter.caused_by_change:
        conditions.append("c.id = ?")
        parameters.append(filter.caused_by_change)
    if filter.text:
        conditions.append("instr(i.search_text, ?) > 0")
        parameters.append(filter.text.lower())
    where = " AND ".join(conditions) if conditions else "1"

    total = connection.execute(
        f"SELECT count(*) FROM incident i LEFT JOIN change c ON c.pk = i.caused_by_change_pk WHERE {where}",
        parameters,
    ).fetchone()[0]
    page_where, page_parameters = where, list(parameters)
    if after is not None:
        page_where += " AND i.id > ?"
        page_parameters.append(decode_cursor(after))
    rows = _incident_rows(connection, f"{page_where} ORDER BY i.id LIMIT ?", [*page_parameters, first + 1])
    items = _build_incidents(connection, rows[:first])
    end_cursor = encode_cursor(items[-1].id) if items else None
    return IncidentPage(items=items, has_next_page=len(rows) > first, end_cursor=end_cursor, total_count=total)


def load_events(connection: sqlite3.Connection) -> tuple[list[Change], list[Incident]]:
    """Return every change and incident; the caller keeps one read transaction open around the call."""
    changes = _build_changes(connection, _change_rows(connection, "1 ORDER BY pk", ()), every=True)
    incidents = _build_incidents(connection, _incident_rows(connection, "1 ORDER BY i.pk", ()), every=True)
    return changes, incidents


# Writes


def _pks_by_id(connection: sqlite3.Connection, table: str, ids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(list(ids), _ID_CHUNK):
        placeholders = ",".join("?" * len(chunk))
        found.update(connection.execute(f"SELECT id, pk FROM {table} WHERE id IN ({placeholders})", tuple(chunk)))
    return found


def _require(found: dict[str, int], wanted: set[str], what: str) -> None:
    missing = sorted(wanted - found.keys())
    if missing:
        shown = ", ".join(repr(item) for item in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ConflictError(f"write rejected, nothing was written: {what} {shown}{more} not stored; import them first")


def _stored_change_state(connection: sqlite3.Connection, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    rows: list[tuple[int, tuple[Any, ...]]] = []
    for chunk in _chunks(list(dict.fromkeys(ids)), _ID_CHUNK):
        rows.extend(_change_rows(connection, f"id IN ({','.join('?' * len(chunk))})", tuple(chunk)))
    affected = _affected_of(connection, [pk for pk, _ in rows])
    return {row[0]: (row, tuple(affected.get(pk, ()))) for pk, row in rows}


def _stored_incident_state(connection: sqlite3.Connection, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    rows: list[tuple[int, tuple[Any, ...]]] = []
    for chunk in _chunks(list(dict.fromkeys(ids)), _ID_CHUNK):
        rows.extend(_incident_rows(connection, f"i.id IN ({','.join('?' * len(chunk))})", tuple(chunk)))
    links = _links_of(connection, [pk for pk, _ in rows])
    return {
        row[0]: (row, tuple(links.get((pk, _IMPACTED), ())), tuple(links.get((pk, _ROOT_CAUSE), ())))
        for pk, row in rows
    }


def write_events(
    connection: sqlite3.Connection,
    changes: Sequence[Change],
    incidents: Sequence[Incident],
    result: WriteResult,
    *,
    batch_size: int,
    done: int,
    total: int,
    progress: ProgressCallback | None,
) -> int:
    """Upsert changes, then incidents, with their links; count them in ``result``; return ``done`` advanced.

    A record counts as updated when a column or a link differs from what is
    stored, and a repeated id counts as if the records were written one after
    another.

    Raises:
        ConflictError: a record names a CI, or an incident a change, that is
            not stored; the caller's transaction rolls back.
    """
    if changes:
        ci_pk = _pks_by_id(connection, "ci", list({ci_id for change in changes for ci_id in change.affected}))
        _require(ci_pk, {ci_id for change in changes for ci_id in change.affected}, "changes name CI(s)")
        current = _stored_change_state(connection, [change.id for change in changes])
        for chunk in _chunks(changes, batch_size):
            for change in chunk:
                state = (_change_row(change), tuple(change.affected))
                previous = current.get(change.id)
                if previous == state:
                    result.changes_unchanged += 1
                    continue
                if previous is None:
                    result.changes_created += 1
                else:
                    result.changes_updated += 1
                current[change.id] = state
                (change_pk,) = connection.execute(_UPSERT_CHANGE, state[0]).fetchone()
                connection.execute("DELETE FROM change_affects WHERE change_pk = ?", (change_pk,))
                connection.executemany(
                    "INSERT INTO change_affects (change_pk, ci_pk, position) VALUES (?, ?, ?)",
                    [(change_pk, ci_pk[ci_id], position) for position, ci_id in enumerate(change.affected)],
                )
            done += len(chunk)
            if progress:
                progress(done, total)

    if incidents:
        referenced = {ci_id for incident in incidents for ci_id in (*incident.impacted, *incident.root_causes)}
        ci_pk = _pks_by_id(connection, "ci", list(referenced))
        _require(ci_pk, referenced, "incidents name CI(s)")
        causes = {incident.caused_by_change for incident in incidents if incident.caused_by_change}
        change_pk_of = _pks_by_id(connection, "change", list(causes))
        _require(change_pk_of, causes, "incidents name causing change(s)")
        stored_incidents = _stored_incident_state(connection, [incident.id for incident in incidents])
        for chunk in _chunks(incidents, batch_size):
            for incident in chunk:
                row = _incident_row(incident)
                incident_state = (row, tuple(incident.impacted), tuple(incident.root_causes))
                previous_incident = stored_incidents.get(incident.id)
                if previous_incident == incident_state:
                    result.incidents_unchanged += 1
                    continue
                if previous_incident is None:
                    result.incidents_created += 1
                else:
                    result.incidents_updated += 1
                stored_incidents[incident.id] = incident_state
                cause = incident.caused_by_change
                stored_row = (*row[:9], change_pk_of[cause] if cause else None, *row[10:])
                (incident_pk,) = connection.execute(_UPSERT_INCIDENT, stored_row).fetchone()
                connection.execute("DELETE FROM incident_ci WHERE incident_pk = ?", (incident_pk,))
                connection.executemany(
                    "INSERT INTO incident_ci (incident_pk, ci_pk, role, position) VALUES (?, ?, ?, ?)",
                    [
                        (incident_pk, ci_pk[ci_id], role, position)
                        for role, ci_ids in ((_IMPACTED, incident.impacted), (_ROOT_CAUSE, incident.root_causes))
                        for position, ci_id in enumerate(ci_ids)
                    ],
                )
            done += len(chunk)
            if progress:
                progress(done, total)
    return done


def count_links(connection: sqlite3.Connection, ci_pk: int) -> tuple[int, int]:
    """Return how many change links and incident links name the CI."""
    change_links = connection.execute("SELECT count(*) FROM change_affects WHERE ci_pk = ?", (ci_pk,)).fetchone()[0]
    incident_links = connection.execute("SELECT count(*) FROM incident_ci WHERE ci_pk = ?", (ci_pk,)).fetchone()[0]
    return int(change_links), int(incident_links)


def delete_links(connection: sqlite3.Connection, ci_pk: int) -> None:
    """Delete the links of changes and incidents to the CI; the changes and incidents stay."""
    connection.execute("DELETE FROM change_affects WHERE ci_pk = ?", (ci_pk,))
    connection.execute("DELETE FROM incident_ci WHERE ci_pk = ?", (ci_pk,))
