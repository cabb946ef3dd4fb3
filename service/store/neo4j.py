"""The Neo4j store: the production ``GraphStore``, over Bolt with the official driver.

CIs are ``:CI`` nodes and each ``RelationshipType`` is a real Neo4j
relationship type (``(:CI)-[:DEPENDS_ON]->(:CI)``), so the graph reads as it
is meant in Neo4j Browser. Cypher takes no relationship type as a parameter,
so every query that names one exists once per enum member, built at import
time from constant text. Values always travel as ``$parameters``. The graph
shape, constraints and indexes are in ``schema/neo4j.cypher``.

Every unit of work runs through ``execute_read`` or ``execute_write``, which
retry it on transient errors, so each one is safe to run twice. Upserts are
``MERGE`` based, except that CIs and relationships which the version counter
proves absent are written with ``CREATE`` (see ``_NewCIs``), and a transaction
function only returns plain data. Each
transaction that changes the graph also increments the version counter on the
single ``:FaultgraphMeta`` node; a transaction that finds every record stored
as given changes nothing, the version included.

Unlike the embedded store, ``write`` commits one transaction per batch, so a
write can stop part way (``PartialWriteError``), and the version grows by one
per batch that changed something rather than by one per write.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import neo4j
import numpy as np
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConfigurationError,
    ConnectionAcquisitionTimeoutError,
    DatabaseError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from service.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PartialWriteError,
    StoreUnavailableError,
    WriteProgress,
)
from service.model import (
    CI,
    Change,
    ChangeKind,
    ChangeStatus,
    Criticality,
    Incident,
    IncidentStatus,
    Procedure,
    Redundancy,
    Relationship,
    RelationshipType,
    Risk,
    Severity,
    Status,
    Strength,
    format_time,
    parse_time,
)
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
    change_search_text,
    plan_procedure_writes,
    procedure_from_document,
    change_window_texts,
    decode_cursor,
    delete_conflict_message,
    encode_cursor,
    event_time_text,
    incident_search_text,
    search_text,
    validate_page_size,
)

logger = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "neo4j.cypher"

# Rows per UNWIND in reads by id; writes use the caller's batch size.
_READ_CHUNK = 10_000

_T = TypeVar("_T")

# Errors of a server that is down, unreachable or failing. The driver has
# already retried the transient ones for max_retry_time seconds before they
# reach the store, and the server may accept queries again later.
_UNREACHABLE_ERRORS = (ServiceUnavailable, SessionExpired, ConnectionAcquisitionTimeoutError)
_UNAVAILABLE_ERRORS = (*_UNREACHABLE_ERRORS, TransientError, DatabaseError, AuthError)

_TYPES = "|".join(t.value for t in RelationshipType)
# Topology edge types are numbered in enum order, as ``service.analysis.topology`` expects.
_TYPE_CODES = {member.value: code for code, member in enumerate(RelationshipType)}
_CONSUMER_IS_SOURCE_TYPES = "|".join(t.value for t in RelationshipType if not t.provider_is_source)
_CONSUMER_IS_TARGET_TYPES = "|".join(t.value for t in RelationshipType if t.provider_is_source)

_VERSION = "OPTIONAL MATCH (m:FaultgraphMeta {key: 'graph'}) RETURN coalesce(m.version, 0) AS version"

# SET m.version = m.version + 1 reads the property it writes, so Cypher locks
# the node before reading it and concurrent increments are not lost.
_BUMP_VERSION = """
MERGE (m:FaultgraphMeta {key: 'graph'})
ON CREATE SET m.version = 0
SET m.version = m.version + 1
RETURN m.version AS version
"""

# Setting the version to itself takes the same exclusive lock without a change,
# so no other transaction can change the graph and commit until this one ends.
_LOCK_VERSION = """
MERGE (m:FaultgraphMeta {key: 'graph'})
ON CREATE SET m.version = 0
SET m.version = m.version
RETURN m.version AS version
"""

_GET_CIS = "UNWIND $ids AS id MATCH (c:CI {id: id}) RETURN properties(c) AS c"

_EXISTING_IDS = "UNWIND $ids AS id MATCH (c:CI {id: id}) RETURN c.id AS id"

# Each condition of a CIFilter; a listing joins the ones its filter sets.
# NOTE: toLower is Java's lower-casing, which differs from Python's str.lower
# (used by the embedded store) for a few context-dependent letters such as a
# word-final capital sigma.
_FILTER_CONDITIONS = {
    "name": "toLower(c.name) CONTAINS $name",
    "type": "c.type = $type",
    "tag": "$tag IN c.tags",
    "environment": "c.environment = $environment",
    "text": "c.search_text CONTAINS $text",
}

_RELATIONSHIP_COLUMNS = "s.id AS source, t.id AS target, type(r) AS type, properties(r) AS properties"

_OUTGOING = f"""
MATCH (s:CI {{id: $id}})-[r:{_TYPES}]->(t:CI)
RETURN {_RELATIONSHIP_COLUMNS}
"""

_INCOMING = f"""
MATCH (s:CI)-[r:{_TYPES}]->(t:CI {{id: $id}})
RETURN {_RELATIONSHIP_COLUMNS}
"""

# One record of column lists per chunk of consumer ids: the driver decodes it
# about twice as fast as one record per relationship, which matters when an
# import checks the stored members of a hundred thousand groups.
_REDUNDANCY_MEMBERS = f"""
UNWIND $ids AS id
MATCH (c:CI {{id: id}})
CALL (c) {{
    MATCH (c)-[r:{_CONSUMER_IS_SOURCE_TYPES}]->(t:CI)
    WHERE r.redundancy_group IS NOT NULL
    RETURN c AS s, r, t
  UNION ALL
    MATCH (s:CI)-[r:{_CONSUMER_IS_TARGET_TYPES}]->(c)
    WHERE r.redundancy_group IS NOT NULL
    RETURN s, r, c AS t
}}
RETURN collect(s.id) AS sources, collect(t.id) AS targets, collect(type(r)) AS types,
       collect(properties(r)) AS properties
"""

# A row contains ``props``, the properties to store, and ``first``, the first
# record of a key given several times in one batch, which decides whether the
# stored record counts as created, updated or unchanged. Properties are
# compared as whole maps, so a record stored as given is not written again.
# FOREACH over a one- or zero-element list is a conditional write.
_UPSERT_CIS = """
UNWIND $rows AS row
OPTIONAL MATCH (old:CI {id: row.props.id})
WITH row,
     old IS NULL AS created,
     old IS NOT NULL AND properties(old) <> coalesce(row.first, row.props) AS updated,
     old IS NULL OR properties(old) <> row.props AS dirty
FOREACH (_ IN CASE WHEN dirty THEN [1] ELSE [] END |
    MERGE (c:CI {id: row.props.id})
    SET c = row.props)
RETURN sum(CASE WHEN created THEN 1 ELSE 0 END) AS created,
       sum(CASE WHEN updated THEN 1 ELSE 0 END) AS updated
"""

_COUNT_STORED_CIS = "UNWIND $ids AS id MATCH (c:CI {id: id}) RETURN count(c) AS stored"

# A batch whose CIs are all new needs no comparison with stored properties,
# which saved about a tenth of the CI write time at 162,000 CIs. MERGE rather
# than CREATE keeps one node per id when another transaction stores one of
# these CIs after the count.
_MERGE_NEW_CIS = """
UNWIND $rows AS row
MERGE (c:CI {id: row.props.id})
SET c = row.props
RETURN count(row) AS created, 0 AS updated
"""

# Used by a batch that holds the version lock (see _NewCIs) and counted none of
# its CIs as stored. No other transaction can commit a change before this one
# ends, so those ids stay absent. CREATE skips the locking index lookup and the
# Eager step of _MERGE_NEW_CIS. In the CI batches of a first import of the
# generated 1M graph, that cut the Neo4j worker's CPU time from about 10.3 s
# to 8.3 s (one run against four, 2-core VM).
_CREATE_NEW_CIS = """
UNWIND $rows AS row
CREATE (c:CI)
SET c = row.props
RETURN count(row) AS created, 0 AS updated
"""


def _upsert_relationships_query(type_: RelationshipType) -> str:
    return f"""
UNWIND $rows AS row
MATCH (s:CI {{id: row.source}})
MATCH (t:CI {{id: row.target}})
OPTIONAL MATCH (s)-[old:{type_.value}]->(t)
WITH row, s, t,
     old IS NULL AS created,
     old IS NOT NULL AND properties(old) <> coalesce(row.first, row.props) AS updated,
     old IS NULL OR properties(old) <> row.props AS dirty
FOREACH (_ IN CASE WHEN dirty THEN [1] ELSE [] END |
    MERGE (s)-[r:{type_.value}]->(t)
    SET r = row.props)
RETURN count(row) AS matched,
       sum(CASE WHEN created THEN 1 ELSE 0 END) AS created,
       sum(CASE WHEN updated THEN 1 ELSE 0 END) AS updated
"""


def _create_relationships_query(type_: RelationshipType) -> str:
    # Only for relationships known to be absent (see _NewCIs): CREATE skips
    # the two lookups of the relationship that the upsert makes, which took
    # about a fifth of the relationship write time of a first import at 1M.
    return f"""
UNWIND $rows AS row
MATCH (s:CI {{id: row.source}})
MATCH (t:CI {{id: row.target}})
CREATE (s)-[r:{type_.value}]->(t)
SET r = row.props
RETURN count(row) AS matched, count(row) AS created, 0 AS updated
"""


def _delete_relationship_query(type_: RelationshipType) -> str:
    return f"""
MATCH (s:CI {{id: $source}})-[r:{type_.value}]->(t:CI {{id: $target}})
DELETE r
RETURN count(*) AS deleted
"""


_UPSERT_RELATIONSHIPS = {t: _upsert_relationships_query(t) for t in RelationshipType}
_CREATE_RELATIONSHIPS = {t: _create_relationships_query(t) for t in RelationshipType}
_DELETE_RELATIONSHIP = {t: _delete_relationship_query(t) for t in RelationshipType}

_COUNT_ATTACHED = f"""
MATCH (c:CI {{id: $id}})
OPTIONAL MATCH (c)-[r:{_TYPES}]-(:CI)
WITH c, count(r) AS attached
RETURN attached,
       COUNT {{ (:Change)-[:AFFECTS]->(c) }} AS change_links,
       COUNT {{ (:Incident)-[:IMPACTED|ROOT_CAUSE]->(c) }} AS incident_links
"""

_DELETE_CI = "MATCH (c:CI {id: $id}) DETACH DELETE c"

# Changes and incidents. A change is a (:Change) node that AFFECTS each of its
# CIs. An incident is an (:Incident) node that has IMPACTED and ROOT_CAUSE
# relationships to CIs and a CAUSED_BY relationship to a change. Each
# relationship to a CI keeps the position of the CI in its list, so that lists
# read back in the order they were written. An upsert row contains ``state``
# (``props``, the node properties, and ``links``, the ids it links to) and,
# for an id given several times in one batch, ``first``, as for CIs above.
# Lists compare equal only without nulls, so a missing cause is an empty list.

_CHANGE_LINKS = "COLLECT { MATCH (ch)-[a:AFFECTS]->(c:CI) RETURN c.id ORDER BY a.position }"
_INCIDENT_LINKS = (
    "[COLLECT { MATCH (i)-[r:IMPACTED]->(c:CI) RETURN c.id ORDER BY r.position }, "
    "COLLECT { MATCH (i)-[r:ROOT_CAUSE]->(c:CI) RETURN c.id ORDER BY r.position }, "
    "COLLECT { MATCH (i)-[:CAUSED_BY]->(cause:Change) RETURN cause.id }]"
)

_GET_CHANGES = f"UNWIND $ids AS id MATCH (ch:Change {{id: id}}) RETURN properties(ch) AS node, {_CHANGE_LINKS} AS links"
_GET_INCIDENTS = (
    f"UNWIND $ids AS id MATCH (i:Incident {{id: id}}) RETURN properties(i) AS node, {_INCIDENT_LINKS} AS links"
)
_ALL_CHANGES = f"MATCH (ch:Change) RETURN properties(ch) AS node, {_CHANGE_LINKS} AS links ORDER BY ch.id_order"
_ALL_INCIDENTS = f"MATCH (i:Incident) RETURN properties(i) AS node, {_INCIDENT_LINKS} AS links ORDER BY i.id_order"
_EXISTING_CHANGE_IDS = "UNWIND $ids AS id MATCH (ch:Change {id: id}) RETURN ch.id AS id"

# A procedure is one node: the whole record as JSON text in ``document`` (what
# a write compares), plus a few properties to read it by in Cypher.
_PROCEDURE_DOCUMENTS = "UNWIND $ids AS id MATCH (p:Procedure {id: id}) RETURN p.id AS id, p.document AS document"
_ALL_PROCEDURES = "MATCH (p:Procedure) RETURN p.document AS document"
_WRITE_PROCEDURES = """
UNWIND $rows AS row
MERGE (p:Procedure {id: row.id})
SET p = row
"""
_DELETE_PROCEDURE = "MATCH (p:Procedure {id: $id}) DELETE p RETURN count(*) AS deleted"

# Each condition of a ChangeFilter or IncidentFilter; a listing joins the ones its filter sets.
_CHANGE_CONDITIONS = {
    "ci_ids": "EXISTS { MATCH (ch)-[:AFFECTS]->(c:CI) WHERE c.id IN $ci_ids }",
    "since": "ch.window_start IS NOT NULL AND (ch.window_end IS NULL OR ch.window_end >= $since)",
    "until": "ch.window_start IS NOT NULL AND ch.window_start <= $until",
    "status": "ch.status = $status",
    "kind": "ch.kind = $kind",
    "text": "ch.search_text CONTAINS $text",
}
_INCIDENT_CONDITIONS = {
    "ci_ids": "EXISTS { MATCH (i)-[:IMPACTED|ROOT_CAUSE]->(c:CI) WHERE c.id IN $ci_ids }",
    "since": "i.started_at >= $since",
    "until": "i.started_at <= $until",
    "status": "i.status = $status",
    "severity": "i.severity = $severity",
    "caused_by_change": "EXISTS { MATCH (i)-[:CAUSED_BY]->(:Change {id: $caused_by_change}) }",
    "text": "i.search_text CONTAINS $text",
}

_UPSERT_CHANGES = f"""
UNWIND $rows AS row
OPTIONAL MATCH (ch:Change {{id: row.state.props.id}})
WITH row, ch, {_CHANGE_LINKS} AS old_links, coalesce(row.first, row.state) AS first
WITH row,
     ch IS NULL AS created,
     ch IS NOT NULL AND (properties(ch) <> first.props OR old_links <> first.links) AS updated,
     ch IS NULL OR properties(ch) <> row.state.props OR old_links <> row.state.links AS dirty
CALL (row, dirty) {{
    WITH row WHERE dirty
    MERGE (written:Change {{id: row.state.props.id}})
    SET written = row.state.props
    WITH written, row
    CALL (written) {{ MATCH (written)-[a:AFFECTS]->(:CI) DELETE a }}
    WITH written, row
    UNWIND range(0, size(row.state.links) - 1) AS position
    MATCH (c:CI {{id: row.state.links[position]}})
    CREATE (written)-[:AFFECTS {{position: position}}]->(c)
    RETURN count(c) AS linked
}}
RETURN sum(CASE WHEN created THEN 1 ELSE 0 END) AS created,
       sum(CASE WHEN updated THEN 1 ELSE 0 END) AS updated,
       sum(CASE WHEN dirty THEN size(row.state.links) - linked ELSE 0 END) AS missing
"""

_UPSERT_INCIDENTS = f"""
UNWIND $rows AS row
OPTIONAL MATCH (i:Incident {{id: row.state.props.id}})
WITH row, i, {_INCIDENT_LINKS} AS old_links, coalesce(row.first, row.state) AS first
WITH row,
     i IS NULL AS created,
     i IS NOT NULL AND (properties(i) <> first.props OR old_links <> first.links) AS updated,
     i IS NULL OR properties(i) <> row.state.props OR old_links <> row.state.links AS dirty
CALL (row, dirty) {{
    WITH row WHERE dirty
    MERGE (written:Incident {{id: row.state.props.id}})
    SET written = row.state.props
    WITH written, row
    CALL (written) {{ MATCH (written)-[r:IMPACTED|ROOT_CAUSE|CAUSED_BY]->() DELETE r }}
    CALL (written, row) {{
        UNWIND range(0, size(row.state.links[0]) - 1) AS position
        MATCH (c:CI {{id: row.state.links[0][position]}})
        CREATE (written)-[:IMPACTED {{position: position}}]->(c)
        RETURN count(c) AS impacted
    }}
    CALL (written, row) {{
        UNWIND range(0, size(row.state.links[1]) - 1) AS position
        MATCH (c:CI {{id: row.state.links[1][position]}})
        CREATE (written)-[:ROOT_CAUSE {{position: position}}]->(c)
        RETURN count(c) AS root_causes
    }}
    CALL (written, row) {{
        UNWIND row.state.links[2] AS change_id
        MATCH (cause:Change {{id: change_id}})
        CREATE (written)-[:CAUSED_BY]->(cause)
        RETURN count(cause) AS causes
    }}
    RETURN sum(impacted + root_causes + causes) AS linked
}}
WITH row, created, updated, dirty, linked,
     size(row.state.links[0]) + size(row.state.links[1]) + size(row.state.links[2]) AS wanted
RETURN sum(CASE WHEN created THEN 1 ELSE 0 END) AS created,
       sum(CASE WHEN updated THEN 1 ELSE 0 END) AS updated,
       sum(CASE WHEN dirty THEN wanted - linked ELSE 0 END) AS missing
"""

# Default CIs per topology query. Each query returns one record of column
# lists: the chunk's CIs in id order and their outgoing relationships, each
# source given by its position in the chunk. The driver decodes a few long
# lists several times faster than one record per relationship.
_TOPOLOGY_CHUNK = 10_000


def _topology_chunk_query(condition: str) -> str:
    return f"""
MATCH (c:CI) WHERE {condition}
WITH c ORDER BY c.id_order LIMIT $limit
WITH collect(c) AS nodes
CALL (nodes) {{
    UNWIND range(0, size(nodes) - 1) AS position
    WITH position, nodes[position] AS s
    MATCH (s)-[r:{_TYPES}]->(t:CI)
    RETURN collect([position, t.id, type(r), r.strength = 'hard', r.redundancy_group, r.min_available,
                    r.min_available_percent, r.valid_from, r.valid_until]) AS edges
}}
RETURN [n IN nodes | n.id] AS ids, [n IN nodes | n.type] AS types,
       [n IN nodes | n.valid_from] AS valid_from, [n IN nodes | n.valid_until] AS valid_until,
       [n IN nodes | n.status] AS statuses,
       nodes[-1].id_order AS last,
       [e IN edges | e[0]] AS edge_source, [e IN edges | e[1]] AS edge_target,
       [e IN edges | e[2]] AS edge_type, [e IN edges | e[3]] AS edge_hard,
       [e IN edges | e[4]] AS edge_group, [e IN edges | e[5]] AS edge_min_available,
       [e IN edges | e[6]] AS edge_min_percent, [e IN edges | e[7]] AS edge_valid_from,
       [e IN edges | e[8]] AS edge_valid_until
"""


# Range conditions on the indexed id_order let Neo4j read CIs in index order
# and stop at the LIMIT, with no sort.
_FROM_START = "c.id_order >= ''"
_AFTER_CURSOR = "c.id_order > $after"

_TOPOLOGY_FIRST_CHUNK = _topology_chunk_query(_FROM_START)
_TOPOLOGY_NEXT_CHUNK = _topology_chunk_query(_AFTER_CURSOR)
_NODE_COLUMNS = ("ids", "types", "valid_from", "valid_until", "statuses")
_STATUS_CODE = {status.value: code for code, status in enumerate(STATUS_CODES)}
_UNKNOWN_STATUS = STATUS_CODES.index(Status.UNKNOWN)
_EDGE_COLUMNS = (
    "edge_source",
    "edge_target",
    "edge_type",
    "edge_hard",
    "edge_group",
    "edge_min_available",
    "edge_min_percent",
    "edge_valid_from",
    "edge_valid_until",
)


def read_schema(path: Path = SCHEMA_PATH) -> list[str]:
    """Return the statements of a ``.cypher`` file: ``;``-terminated, ``//`` comment lines dropped."""
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("//")
    ]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


# Conversion between model objects and property maps. Absent values are left
# out of the map, because Neo4j stores no null property and a map compares
# equal to the stored properties only when both have the same keys.


def _dump(value: Any) -> str:
    # The same text as the embedded store: sorted keys make equal attributes equal as text.
    if isinstance(value, dict) and not value:
        # Most records have no attributes, and the encoder costs a few µs per call.
        return "{}"
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def id_order_key(ci_id: str) -> str:
    """Return a text that Neo4j orders like the embedded store orders ``ci_id``.

    Neo4j compares strings by UTF-16 code units, SQLite and Python by code
    points, and the two disagree when a character above U+FFFF (such as an
    emoji) meets one in U+E000..U+FFFF. The key keeps every character below
    U+E000 and writes each other one as U+E000 followed by two characters in
    U+4E00..U+55FF, which encode its offset from U+E000 in base 2048. All of
    these are single UTF-16 code units in code point order, and the keys of
    most ids equal the ids.
    """
    if all(ord(char) < 0xE000 for char in ci_id):
        return ci_id
    parts = []
    for char in ci_id:
        code = ord(char)
        if code < 0xE000:
            parts.append(char)
        else:
            offset = code - 0xE000
            parts.append(f"\ue000{chr(0x4E00 + (offset >> 11))}{chr(0x4E00 + (offset & 0x7FF))}")
    return "".join(parts)


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _ci_properties(ci: CI) -> dict[str, Any]:
    return _without_none(
        {
            "id": ci.id,
            "name": ci.name,
            "type": ci.type,
            "environment": ci.environment,
            "criticality": ci.criticality.value if ci.criticality else None,
            "owner": ci.owner,
            "status": ci.status.value,
            "tags": list(ci.tags),
            "attributes": _dump(ci.attributes),
            "source": ci.source,
            "source_id": ci.source_id,
            "valid_from": format_time(ci.valid_from),
            "valid_until": format_time(ci.valid_until),
            "search_text": search_text(ci),
            "id_order": id_order_key(ci.id),
        }
    )


def _ci_from_properties(properties: Mapping[str, Any]) -> CI:
    criticality = properties.get("criticality")
    return CI(
        id=properties["id"],
        name=properties["name"],
        type=properties["type"],
        environment=properties.get("environment"),
        criticality=Criticality(criticality) if criticality else None,
        owner=properties.get("owner"),
        status=Status(properties["status"]),
        tags=tuple(properties.get("tags") or ()),
        attributes=json.loads(properties.get("attributes", "{}")),
        source=properties.get("source"),
        source_id=properties.get("source_id"),
        valid_from=_parse_stored_time(properties.get("valid_from")),
        valid_until=_parse_stored_time(properties.get("valid_until")),
    )


def _relationship_properties(relationship: Relationship) -> dict[str, Any]:
    # Set key by key rather than filtered through _without_none, because an
    # import calls this once per relationship.
    properties: dict[str, Any] = {"strength": relationship.strength.value}
    redundancy = relationship.redundancy
    if redundancy is not None:
        properties["redundancy_group"] = redundancy.group
        if redundancy.min_available is not None:
            properties["min_available"] = redundancy.min_available
        if redundancy.min_available_percent is not None:
            properties["min_available_percent"] = float(redundancy.min_available_percent)
    properties["attributes"] = _dump(relationship.attributes)
    if relationship.valid_from is not None:
        properties["valid_from"] = format_time(relationship.valid_from)
    if relationship.valid_until is not None:
        properties["valid_until"] = format_time(relationship.valid_until)
    return properties


def _relationship_from_record(
    source: str, target: str, type_: str, properties: Mapping[str, Any]
) -> Relationship:
    redundancy = None
    group = properties.get("redundancy_group")
    if group is not None:
        redundancy = Redundancy(
            group=group,
            min_available=properties.get("min_available"),
            min_available_percent=properties.get("min_available_percent"),
        )
    return Relationship(
        source=source,
        target=target,
        type=RelationshipType(type_),
        strength=Strength(properties["strength"]),
        redundancy=redundancy,
        attributes=json.loads(properties.get("attributes", "{}")),
        valid_from=_parse_stored_time(properties.get("valid_from")),
        valid_until=_parse_stored_time(properties.get("valid_until")),
    )


def _event_time(value: datetime | None) -> str | None:
    return None if value is None else event_time_text(value)


def _change_properties(change: Change) -> dict[str, Any]:
    window_start, window_end = change_window_texts(change)
    return _without_none(
        {
            "id": change.id,
            "title": change.title,
            "kind": change.kind.value,
            "status": change.status.value,
            "risk": change.risk.value,
            "planned_start": _event_time(change.planned_start),
            "planned_end": _event_time(change.planned_end),
            "actual_start": _event_time(change.actual_start),
            "actual_end": _event_time(change.actual_end),
            "implementer": change.implementer,
            "description": change.description,
            "rollback_procedure": change.rollback_procedure,
            "attributes": _dump(change.attributes),
            "window_start": window_start,
            "window_end": window_end,
            "search_text": change_search_text(change),
            "id_order": id_order_key(change.id),
        }
    )


def _change_links(change: Change) -> list[str]:
    return list(change.affected)


def _change_from_record(properties: Mapping[str, Any], affected: list[str]) -> Change:
    return Change(
        id=properties["id"],
        title=properties["title"],
        kind=ChangeKind(properties["kind"]),
        status=ChangeStatus(properties["status"]),
        risk=Risk(properties["risk"]),
        affected=tuple(affected),
        planned_start=_parse_stored_time(properties.get("planned_start")),
        planned_end=_parse_stored_time(properties.get("planned_end")),
        actual_start=_parse_stored_time(properties.get("actual_start")),
        actual_end=_parse_stored_time(properties.get("actual_end")),
        implementer=properties.get("implementer"),
        description=properties.get("description"),
        rollback_procedure=properties.get("rollback_procedure"),
        attributes=json.loads(properties.get("attributes", "{}")),
    )


def _incident_properties(incident: Incident) -> dict[str, Any]:
    return _without_none(
        {
            "id": incident.id,
            "title": incident.title,
            "severity": incident.severity.value,
            "status": incident.status.value,
            "started_at": event_time_text(incident.started_at),
            "detected_at": _event_time(incident.detected_at),
            "resolved_at": _event_time(incident.resolved_at),
            "symptom_text": incident.symptom_text,
            "symptom_tags": list(incident.symptom_tags),
            "resolved_with": incident.resolved_with,
            "attributes": _dump(incident.attributes),
            "search_text": incident_search_text(incident),
            "id_order": id_order_key(incident.id),
        }
    )


def _incident_links(incident: Incident) -> list[list[str]]:
    """Return the impacted CI ids, the root-cause CI ids and the causing change id (empty or one)."""
    cause = [incident.caused_by_change] if incident.caused_by_change else []
    return [list(incident.impacted), list(incident.root_causes), cause]


def _incident_from_record(properties: Mapping[str, Any], links: list[list[str]]) -> Incident:
    impacted, root_causes, cause = links
    return Incident(
        id=properties["id"],
        title=properties["title"],
        severity=Severity(properties["severity"]),
        status=IncidentStatus(properties["status"]),
        started_at=parse_time(properties["started_at"], field_name="stored time"),
        impacted=tuple(impacted),
        root_causes=tuple(root_causes),
        detected_at=_parse_stored_time(properties.get("detected_at")),
        resolved_at=_parse_stored_time(properties.get("resolved_at")),
        symptom_text=properties.get("symptom_text"),
        symptom_tags=tuple(properties.get("symptom_tags") or ()),
        caused_by_change=cause[0] if cause else None,
        resolved_with=properties.get("resolved_with"),
        attributes=json.loads(properties.get("attributes", "{}")),
    )


def _parse_stored_time(value: str | None) -> datetime | None:
    return None if value is None else parse_time(value, field_name="stored time")


@lru_cache(maxsize=4096)
def _epoch_of_text(value: str) -> float:
    return parse_time(value, field_name="stored time").timestamp()


def _epochs(values: list[str | None]) -> np.ndarray:
    # Many records share a few validity bounds, so parsed texts are cached.
    return np.array(
        [math.nan if value is None else _epoch_of_text(value) for value in values], dtype=np.float64
    )


def _numbers(values: list[float | None]) -> np.ndarray:
    return np.array([math.nan if value is None else value for value in values], dtype=np.float64)


@dataclass
class _BatchCounts:
    created: int = 0
    updated: int = 0
    # The version counter when a batch that follows _NewCIs locked it, and at its end.
    version_before: int | None = None
    version_after: int | None = None

    def add(self, other: _BatchCounts) -> None:
        self.created += other.created
        self.updated += other.updated


@dataclass
class _NewCIs:
    """The CIs that one ``write`` created, so that their relationships can be created without a lookup.

    A relationship cannot be stored yet when this write created its source CI,
    has written no relationship of its type from that CI since, and no other
    transaction has changed the graph since this write's previous batch. Every
    transaction that changes the graph increments the version counter. A batch
    that relies on these facts first locks the counter node and reads it, so a
    counter equal to the one after the previous batch proves the last
    condition. Transaction functions only read this object, and ``write``
    updates it after each commit.
    """

    tracking: bool
    version: int | None = None
    ids: set[str] = field(default_factory=set)
    # (source id, relationship type) pairs that this write has written.
    sources: set[tuple[str, str]] = field(default_factory=set)

    @property
    def has_ids(self) -> bool:
        return self.tracking and bool(self.ids)

    def continues(self, locked_version: int) -> bool:
        """Return True when no other transaction changed the graph since this write's previous batch."""
        return self.tracking and (self.version is None or locked_version == self.version)

    def can_create(self, row: dict[str, Any]) -> bool:
        return row["source"] in self.ids and (row["source"], row["type"]) not in self.sources

    def after_ci_batch(self, rows: list[dict[str, Any]], counts: _BatchCounts) -> None:
        if self._follow(counts) and counts.created == len(rows):
            self.ids.update(row["props"]["id"] for row in rows)

    def after_relationship_batch(self, rows: list[dict[str, Any]], counts: _BatchCounts) -> None:
        if self._follow(counts):
            self.sources.update((row["source"], row["type"]) for row in rows)

    def _follow(self, counts: _BatchCounts) -> bool:
        if not self.tracking or counts.version_before is None:
            return False
        if not self.continues(counts.version_before):
            logger.debug("another transaction changed the graph during this write; the rest is upserted with MERGE")
            self.tracking = False
            return False
        self.version = counts.version_after
        return True


def _upsert_rows(
    records: Sequence[_T],
    key: Callable[[_T], Hashable],
    properties: Callable[[_T], dict[str, Any]],
    fields: Callable[[_T], dict[str, Any]],
) -> tuple[list[dict[str, Any]], _BatchCounts]:
    """Build one UNWIND row per key, as if the records were written one after another.

    A row contains the ``fields`` that locate the record, ``props`` and, for a
    key given several times in one batch, ``first``. Such a key is stored
    once, with its last record, and each repeat counts as an update when it
    differs from the record before it, as it would in the embedded store. The
    returned counts hold those repeats only.
    """
    rows: dict[Hashable, dict[str, Any]] = {}
    repeats = _BatchCounts()
    for record in records:
        record_key = key(record)
        props = properties(record)
        row = rows.get(record_key)
        if row is None:
            rows[record_key] = {**fields(record), "props": props}
            continue
        if row["props"] != props:
            repeats.updated += 1
        row.setdefault("first", row["props"])
        row["props"] = props
    return list(rows.values()), repeats


def _ci_row_fields(ci: CI) -> dict[str, Any]:
    return {}


def _relationship_row_fields(relationship: Relationship) -> dict[str, Any]:
    return {"source": relationship.source, "target": relationship.target, "type": relationship.type.value}


_E = TypeVar("_E", Change, Incident)


def _event_rows(
    records: Sequence[_E], properties: Callable[[_E], dict[str, Any]], links: Callable[[_E], list[Any]]
) -> tuple[list[dict[str, Any]], _BatchCounts]:
    """Build one UNWIND row per change or incident id, as ``_upsert_rows`` does for CIs.

    A repeated id counts as an update when its properties or links differ
    from the record before it.
    """
    rows: dict[str, dict[str, Any]] = {}
    repeats = _BatchCounts()
    for record in records:
        state = {"props": properties(record), "links": links(record)}
        row = rows.get(record.id)
        if row is None:
            rows[record.id] = {"state": state}
            continue
        if row["state"] != state:
            repeats.updated += 1
        row.setdefault("first", row["state"])
        row["state"] = state
    return list(rows.values()), repeats


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _public_uri(uri: str) -> str:
    """Return the URI without any user information, for messages."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


class Neo4jStore:
    """A ``GraphStore`` kept in a Neo4j 5 database.

    The store connects lazily: it can be built while Neo4j is down, ``check``
    raises ``StoreUnavailableError`` until the server responds, and the same
    object works once it does. The schema in ``schema/neo4j.cypher`` is
    applied on the first successful contact.

    Args:
        uri: Bolt URI, e.g. ``neo4j://127.0.0.1:7687``.
        user: database user.
        password: the user's password; it appears in no message or log.
        database: database name, or None for the server's default database.
        max_retry_time: seconds the driver keeps retrying a transaction that
            failed on a transient error or a lost connection.
        connection_timeout: seconds to wait for a TCP connection to open.
        topology_chunk_size: CIs per query of ``load_topology``.
        schema_path: the ``.cypher`` file of constraints and indexes.
    """

    def __init__(
        self,
        uri: str,
        user: str,
        password: str,
        *,
        database: str | None = None,
        max_retry_time: float = 30.0,
        connection_timeout: float = 10.0,
        topology_chunk_size: int = _TOPOLOGY_CHUNK,
        schema_path: Path = SCHEMA_PATH,
    ) -> None:
        self.uri = uri
        self.user = user
        self.database = database
        self._public_uri = _public_uri(uri)
        self._topology_chunk_size = topology_chunk_size
        self._schema = read_schema(schema_path)
        self._schema_applied = False
        self._schema_lock = threading.Lock()
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri,
                auth=(user, password),
                max_transaction_retry_time=max_retry_time,
                connection_timeout=connection_timeout,
                user_agent="faultgraph",
                # Queries name every relationship type and optional property, so
                # the server warns about those that no record uses yet, and the
                # schema's IF NOT EXISTS statements note existing indexes.
                notifications_disabled_classifications=[
                    neo4j.NotificationDisabledClassification.UNRECOGNIZED,
                    neo4j.NotificationDisabledClassification.SCHEMA,
                ],
            )
        except (ConfigurationError, ValueError) as exc:
            raise StoreUnavailableError(
                f"Neo4j URI {self._public_uri!r} is invalid: {exc}; "
                "set FAULTGRAPH_NEO4J_URI to a URI such as neo4j://127.0.0.1:7687"
            ) from exc
        logger.info("Neo4j store configured for %s as %s", self._public_uri, user)

    # Sessions, errors and schema

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn driver errors that mean "Neo4j cannot serve now" into ``StoreUnavailableError``."""
        try:
            yield
        except AuthError as exc:
            raise StoreUnavailableError(
                f"cannot {action}: Neo4j at {self._public_uri} rejected the credentials of user "
                f"{self.user!r} ({exc.message}); check FAULTGRAPH_NEO4J_USER and FAULTGRAPH_NEO4J_PASSWORD"
            ) from exc
        except _UNREACHABLE_ERRORS as exc:
            raise StoreUnavailableError(
                f"cannot {action}: Neo4j at {self._public_uri} is unreachable ({exc}); "
                "check that the server is running and that FAULTGRAPH_NEO4J_URI points to it"
            ) from exc
        except ClientError as exc:
            if exc.code != "Neo.ClientError.Database.DatabaseNotFound":
                raise
            raise StoreUnavailableError(
                f"cannot {action}: Neo4j at {self._public_uri} has no database {self.database!r}; "
                "set FAULTGRAPH_NEO4J_DATABASE to an existing database, or unset it for the default one"
            ) from exc
        except (TransientError, DatabaseError) as exc:
            raise StoreUnavailableError(
                f"cannot {action}: Neo4j at {self._public_uri} failed ({exc.code}: {exc.message}); "
                "retry later, and see the Neo4j server log if it persists"
            ) from exc

    def _session(self) -> neo4j.Session:
        return self._driver.session(
            database=self.database,
            bookmark_manager=self._driver.execute_query_bookmark_manager,
        )

    def _ensure_schema(self) -> None:
        """Apply the constraints and indexes once per store object, on first contact.

        A failed attempt leaves the flag unset, so the next call tries again:
        that is how a store built while Neo4j was down gets its schema.
        """
        if self._schema_applied:
            return
        with self._schema_lock:
            if self._schema_applied:
                return
            with self._session() as session:
                for statement in self._schema:
                    session.execute_write(_run_statement, statement)
            self._schema_applied = True
        logger.info("Neo4j schema applied at %s (%d statements)", self._public_uri, len(self._schema))

    def _read(self, action: str, work: Callable[..., _T], *args: Any) -> _T:
        with self._errors(action):
            self._ensure_schema()
            with self._session() as session:
                return session.execute_read(work, *args)

    def _write(self, action: str, work: Callable[..., _T], *args: Any) -> _T:
        with self._errors(action):
            self._ensure_schema()
            with self._session() as session:
                return session.execute_write(work, *args)

    # Reads

    def version(self) -> int:
        return self._read("read the version", _read_version)

    def check(self) -> None:
        # verify_connectivity fails at once, where a transaction would be retried for max_retry_time.
        with self._errors("reach the store"):
            self._driver.verify_connectivity()
        self._read("reach the store", _read_version)

    def get_cis(self, ids: Sequence[str]) -> dict[str, CI]:
        unique = list(dict.fromkeys(ids))
        found = self._read("read CIs", _get_cis, unique)
        return {properties["id"]: _ci_from_properties(properties) for properties in found}

    def list_cis(self, filter: CIFilter, first: int, after: str | None) -> CIPage:
        validate_page_size(first)
        after_id = decode_cursor(after) if after is not None else None
        parameters: dict[str, Any] = {}
        conditions: list[str] = []
        for name, condition in _FILTER_CONDITIONS.items():
            value = getattr(filter, name)
            if value:
                conditions.append(condition)
                parameters[name] = value.lower() if name in ("name", "text") else value

        total, items = self._read("list CIs", _list_cis, conditions, parameters, after_id, first)
        cis = [_ci_from_properties(properties) for properties in items[:first]]
        end_cursor = encode_cursor(cis[-1].id) if cis else None
        return CIPage(items=cis, has_next_page=len(items) > first, end_cursor=end_cursor, total_count=total)

    def relationships_of(self, ci_id: str, direction: Direction) -> list[Relationship]:
        query = _OUTGOING if direction == "outgoing" else _INCOMING
        rows = self._read("read relationships", _relationship_rows, [(query, {"id": ci_id})])
        # Sorted here rather than in Cypher, whose string order differs from the embedded store's.
        rows.sort(key=lambda row: (row[0], row[1], row[2]))
        return [_relationship_from_record(*row) for row in rows]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        unique = list(dict.fromkeys(ids))
        return set(self._read("look up CI ids", _existing_ids, unique))

    def redundancy_members(self, consumer_ids: Sequence[str]) -> list[Relationship]:
        unique = list(dict.fromkeys(consumer_ids))
        rows = self._read("read redundancy groups", _redundancy_member_rows, unique)
        return [_relationship_from_record(*row) for row in rows]

    def get_changes(self, ids: Sequence[str]) -> dict[str, Change]:
        records = self._read("read changes", _records_by_id, _GET_CHANGES, list(dict.fromkeys(ids)))
        return {change.id: change for change in (_change_from_record(*record) for record in records)}

    def get_incidents(self, ids: Sequence[str]) -> dict[str, Incident]:
        records = self._read("read incidents", _records_by_id, _GET_INCIDENTS, list(dict.fromkeys(ids)))
        return {incident.id: incident for incident in (_incident_from_record(*record) for record in records)}

    def list_changes(self, filter: ChangeFilter, first: int, after: str | None) -> ChangePage:
        validate_page_size(first, noun="changes")
        conditions, parameters = _event_conditions(_CHANGE_CONDITIONS, filter)
        after_id = decode_cursor(after) if after is not None else None
        total, records = self._read(
            "list changes", _list_events, "Change", "ch", _CHANGE_LINKS, conditions, parameters, after_id, first
        )
        items = [_change_from_record(*record) for record in records[:first]]
        end_cursor = encode_cursor(items[-1].id) if items else None
        return ChangePage(items=items, has_next_page=len(records) > first, end_cursor=end_cursor, total_count=total)

    def list_incidents(self, filter: IncidentFilter, first: int, after: str | None) -> IncidentPage:
        validate_page_size(first, noun="incidents")
        conditions, parameters = _event_conditions(_INCIDENT_CONDITIONS, filter)
        after_id = decode_cursor(after) if after is not None else None
        total, records = self._read(
            "list incidents", _list_events, "Incident", "i", _INCIDENT_LINKS, conditions, parameters, after_id, first
        )
        items = [_incident_from_record(*record) for record in records[:first]]
        end_cursor = encode_cursor(items[-1].id) if items else None
        return IncidentPage(
            items=items, has_next_page=len(records) > first, end_cursor=end_cursor, total_count=total
        )

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
        """Upsert CIs, relationships, changes, incidents and procedures, in that order, one transaction per batch.

        Raises:
            ConflictError: a relationship, change or incident names a CI that
                is neither in ``cis`` nor stored. Or an incident names a change
                that is neither in ``changes`` nor stored. Nothing was written.
            PartialWriteError: Neo4j became unavailable after some batches
                were committed; its ``progress`` lists which records were written.
                Writing the same records again completes the data.
            StoreUnavailableError: Neo4j was unavailable before any batch was
                committed; nothing was written.
        """
        if batch_size < 1:
            raise InvalidInputError(f"batch_size={batch_size} is invalid; pass 1 or more", field="batch_size")
        with self._errors("write"):
            self._ensure_schema()
        self._check_endpoints(cis, relationships)
        self._check_event_references(cis, changes, incidents)

        result = WriteResult()
        state = WriteProgress(
            cis_not_written=len(cis),
            relationships_not_written=len(relationships),
            changes_not_written=len(changes),
            incidents_not_written=len(incidents),
            procedures_not_written=len(procedures),
        )
        total = len(cis) + len(relationships) + len(changes) + len(incidents) + len(procedures)
        new_cis = _NewCIs(tracking=bool(relationships))
        with self._session() as session:
            ci_counts = _BatchCounts()
            for number, chunk in enumerate(_chunks(cis, batch_size), start=1):
                rows, repeats = _upsert_rows(chunk, lambda ci: ci.id, _ci_properties, _ci_row_fields)
                label = f"CI batch {number} (CIs {state.cis_written + 1}-{state.cis_written + len(chunk)})"
                work = partial(_upsert_ci_batch, new_cis=new_cis)
                counts = self._write_batch(session, work, rows, repeats, label, state)
                new_cis.after_ci_batch(rows, counts)
                ci_counts.add(counts)
                state.cis_written += len(chunk)
                state.cis_not_written -= len(chunk)
                if progress:
                    progress(state.cis_written, total)

            relationship_counts = _BatchCounts()
            for number, chunk in enumerate(_chunks(relationships, batch_size), start=1):
                rows, repeats = _upsert_rows(
                    chunk, lambda r: r.key, _relationship_properties, _relationship_row_fields
                )
                written = state.relationships_written
                label = f"relationship batch {number} (relationships {written + 1}-{written + len(chunk)})"
                work = partial(_upsert_relationship_batch, new_cis=new_cis)
                counts = self._write_batch(session, work, rows, repeats, label, state)
                new_cis.after_relationship_batch(rows, counts)
                relationship_counts.add(counts)
                state.relationships_written += len(chunk)
                state.relationships_not_written -= len(chunk)
                if progress:
                    progress(state.cis_written + state.relationships_written, total)

            change_counts = _BatchCounts()
            for number, change_chunk in enumerate(_chunks(changes, batch_size), start=1):
                rows, repeats = _event_rows(change_chunk, _change_properties, _change_links)
                written = state.changes_written
                label = f"change batch {number} (changes {written + 1}-{written + len(change_chunk)})"
                counts = self._write_batch(session, _upsert_change_batch, rows, repeats, label, state)
                change_counts.add(counts)
                state.changes_written += len(change_chunk)
                state.changes_not_written -= len(change_chunk)
                if progress:
                    progress(state.cis_written + state.relationships_written + state.changes_written, total)

            incident_counts = _BatchCounts()
            for number, incident_chunk in enumerate(_chunks(incidents, batch_size), start=1):
                rows, repeats = _event_rows(incident_chunk, _incident_properties, _incident_links)
                written = state.incidents_written
                label = f"incident batch {number} (incidents {written + 1}-{written + len(incident_chunk)})"
                counts = self._write_batch(session, _upsert_incident_batch, rows, repeats, label, state)
                incident_counts.add(counts)
                state.incidents_written += len(incident_chunk)
                state.incidents_not_written -= len(incident_chunk)
                if progress:
                    progress(total - state.incidents_not_written - state.procedures_not_written, total)

            for number, procedure_chunk in enumerate(_chunks(procedures, batch_size), start=1):
                written = state.procedures_written
                label = f"procedure batch {number} (procedures {written + 1}-{written + len(procedure_chunk)})"
                counts = self._write_batch(
                    session, _upsert_procedure_batch, list(procedure_chunk), _BatchCounts(), label, state
                )
                result.procedures_created += counts.created
                result.procedures_updated += counts.updated
                state.procedures_written += len(procedure_chunk)
                state.procedures_not_written -= len(procedure_chunk)
                if progress:
                    progress(total - state.procedures_not_written, total)
            result.procedures_unchanged = len(procedures) - result.procedures_created - result.procedures_updated

        result.changes_created = change_counts.created
        result.changes_updated = change_counts.updated
        result.changes_unchanged = len(changes) - change_counts.created - change_counts.updated
        result.incidents_created = incident_counts.created
        result.incidents_updated = incident_counts.updated
        result.incidents_unchanged = len(incidents) - incident_counts.created - incident_counts.updated
        result.cis_created = ci_counts.created
        result.cis_updated = ci_counts.updated
        result.cis_unchanged = len(cis) - ci_counts.created - ci_counts.updated
        result.relationships_created = relationship_counts.created
        result.relationships_updated = relationship_counts.updated
        result.relationships_unchanged = (
            len(relationships) - relationship_counts.created - relationship_counts.updated
        )
        return result

    def _check_endpoints(self, cis: Sequence[CI], relationships: Sequence[Relationship]) -> None:
        written = {ci.id for ci in cis}
        referenced = {end for r in relationships for end in (r.source, r.target)} - written
        if not referenced:
            return
        missing = sorted(referenced - self.existing_ids(sorted(referenced)))
        if missing:
            shown = ", ".join(repr(ci_id) for ci_id in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise ConflictError(
                f"write rejected, nothing was written: relationships name CI(s) {shown}{more} "
                "that are not stored, so import those CIs first"
            )

    def _check_event_references(
        self, cis: Sequence[CI], changes: Sequence[Change], incidents: Sequence[Incident]
    ) -> None:
        """Raise ``ConflictError`` before any write when a change or incident names a record that will not exist."""
        written = {ci.id for ci in cis}
        referenced = {
            *(ci_id for change in changes for ci_id in change.affected),
            *(ci_id for incident in incidents for ci_id in (*incident.impacted, *incident.root_causes)),
        } - written
        missing = sorted(referenced - self.existing_ids(sorted(referenced))) if referenced else []
        causes = {incident.caused_by_change for incident in incidents if incident.caused_by_change}
        causes -= {change.id for change in changes}
        if causes:
            stored = self._read("look up change ids", _existing_change_ids, sorted(causes))
            missing_causes = sorted(causes - set(stored))
        else:
            missing_causes = []
        if not (missing or missing_causes):
            return
        parts = []
        if missing:
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            parts.append(f"CI(s) {', '.join(repr(ci_id) for ci_id in missing[:10])}{more}")
        if missing_causes:
            more = f" and {len(missing_causes) - 10} more" if len(missing_causes) > 10 else ""
            parts.append(f"change(s) {', '.join(repr(c) for c in missing_causes[:10])}{more}")
        raise ConflictError(
            f"write rejected, nothing was written: changes or incidents name {' and '.join(parts)} "
            "that are not stored, so import those first"
        )

    def _write_batch(
        self,
        session: neo4j.Session,
        work: Callable[..., _BatchCounts],
        rows: list[dict[str, Any]],
        repeats: _BatchCounts,
        label: str,
        state: WriteProgress,
    ) -> _BatchCounts:
        try:
            counts = session.execute_write(work, rows, repeats)
        except _UNAVAILABLE_ERRORS as exc:
            state.failed_batches.append(label)
            raise self._stopped_write_error(label, state, exc) from exc
        logger.debug("Neo4j %s committed: %d created, %d updated", label, counts.created, counts.updated)
        return counts

    def _stopped_write_error(self, label: str, state: WriteProgress, exc: Exception) -> StoreUnavailableError:
        try:
            with self._errors(f"write {label}"):
                raise exc
        except StoreUnavailableError as unavailable:
            reason = unavailable.message
        # A lost connection during the commit leaves the batch's outcome
        # unknown. It counts as not written, because writing it again is harmless.
        if not (
            state.cis_written
            or state.relationships_written
            or state.changes_written
            or state.incidents_written
            or state.procedures_written
        ):
            return StoreUnavailableError(f"{reason}; nothing was written")
        logger.warning(
            "Neo4j write stopped at %s: %d CIs, %d relationships, %d changes and %d incidents written, "
            "%d, %d, %d and %d not",
            label,
            state.cis_written,
            state.relationships_written,
            state.changes_written,
            state.incidents_written,
            state.cis_not_written,
            state.relationships_not_written,
            state.changes_not_written,
            state.incidents_not_written,
        )
        events_written = ""
        events_not_written = ""
        if state.changes_written or state.changes_not_written or state.incidents_written or state.incidents_not_written:
            events_written = f", {state.changes_written} changes and {state.incidents_written} incidents"
            events_not_written = f", {state.changes_not_written} changes and {state.incidents_not_written} incidents"
        if state.procedures_written or state.procedures_not_written:
            events_written += f", {state.procedures_written} procedures"
            events_not_written += f", {state.procedures_not_written} procedures"
        return PartialWriteError(
            f"{reason}; the write stopped part way: {state.cis_written} CIs and "
            f"{state.relationships_written} relationships{events_written} were written in whole batches, "
            f"{state.cis_not_written} CIs and {state.relationships_not_written} relationships{events_not_written} "
            "were not; run the same write again once Neo4j is back to complete it",
            state,
        )

    def delete_ci(self, ci_id: str, *, cascade: bool) -> DeleteResult:
        attached, change_links, incident_links = self._write("delete a CI", _delete_ci, ci_id, cascade)
        return DeleteResult(
            cis_deleted=1,
            relationships_deleted=attached,
            change_links_deleted=change_links,
            incident_links_deleted=incident_links,
        )

    def delete_relationship(self, source: str, target: str, type_: str) -> bool:
        try:
            relationship_type = RelationshipType(type_)
        except ValueError:
            return False
        return self._write("delete a relationship", _delete_relationship, source, target, relationship_type)

    def get_procedures(self, ids: Sequence[str]) -> dict[str, Procedure]:
        documents = self._read("read procedures", _procedure_documents, list(dict.fromkeys(ids)))
        return {procedure_id: procedure_from_document(document) for procedure_id, document in documents.items()}

    def load_procedures(self) -> tuple[int, list[Procedure]]:
        version, documents = self._read("load procedures", _load_procedures)
        procedures = sorted((procedure_from_document(document) for document in documents), key=lambda p: p.id)
        return version, procedures

    def delete_procedure(self, procedure_id: str) -> bool:
        return self._write("delete a procedure", _delete_procedure, procedure_id)

    # Bulk read for analysis

    def load_topology(self) -> TopologyData:
        """Read every CI and relationship in one read transaction, in chunks of CIs in id order.

        Neo4j reads at read-committed isolation, so a write that commits
        between two chunk queries can show up in part. The version is read
        before and after: when it moved, the snapshot keeps the older version
        so that the next ``version()`` call makes the caller rebuild it, and
        relationships to CIs missing from the node list are dropped.
        """
        columns = self._read("load the topology", _load_topology, self._topology_chunk_size)
        if columns["changed"]:
            logger.info(
                "the graph changed while the topology was read; the snapshot keeps version %d",
                columns["version"],
            )

        ids = columns["ids"]
        index = {ci_id: i for i, ci_id in enumerate(ids)}
        source = np.asarray(columns["edge_source"], dtype=np.int64)
        target = np.fromiter(
            (index.get(ci_id, -1) for ci_id in columns["edge_target"]), dtype=np.int64, count=len(source)
        )
        kept = np.flatnonzero(target >= 0)
        if len(kept) < len(source):
            logger.info(
                "topology read dropped %d relationships to CIs deleted meanwhile", len(source) - len(kept)
            )

        def pick(values: list[Any]) -> list[Any]:
            return values if len(kept) == len(values) else [values[i] for i in kept]

        return TopologyData(
            version=columns["version"],
            ids=ids,
            types=columns["types"],
            node_valid_from=_epochs(columns["valid_from"]),
            node_valid_until=_epochs(columns["valid_until"]),
            edge_source=source[kept],
            edge_target=target[kept],
            edge_type=np.fromiter((_TYPE_CODES[name] for name in pick(columns["edge_type"])), dtype=np.int8),
            edge_hard=np.array(pick(columns["edge_hard"]), dtype=bool),
            edge_group=pick(columns["edge_group"]),
            edge_min_available=_numbers(pick(columns["edge_min_available"])),
            edge_min_percent=_numbers(pick(columns["edge_min_percent"])),
            edge_valid_from=_epochs(pick(columns["edge_valid_from"])),
            edge_valid_until=_epochs(pick(columns["edge_valid_until"])),
            node_status=np.fromiter(
                (_STATUS_CODE.get(status, _UNKNOWN_STATUS) for status in columns["statuses"]),
                dtype=np.int8,
                count=len(ids),
            ),
        )

    def load_events(self) -> tuple[int, list[Change], list[Incident]]:
        version, change_records, incident_records = self._read("load changes and incidents", _load_events)
        changes = [_change_from_record(*record) for record in change_records]
        incidents = [_incident_from_record(*record) for record in incident_records]
        return version, changes, incidents

    def close(self) -> None:
        self._driver.close()


# Transaction functions. The driver may run each more than once, so they only
# read their arguments and return plain data. Callers apply the result after
# the commit.


def _run_statement(tx: neo4j.ManagedTransaction, statement: str) -> None:
    tx.run(statement).consume()


def _read_version(tx: neo4j.ManagedTransaction) -> int:
    return int(tx.run(_VERSION).single(strict=True)["version"])


def _bump_version(tx: neo4j.ManagedTransaction) -> int:
    return int(tx.run(_BUMP_VERSION).single(strict=True)["version"])


def _lock_version(tx: neo4j.ManagedTransaction) -> int:
    return int(tx.run(_LOCK_VERSION).single(strict=True)["version"])


def _get_cis(tx: neo4j.ManagedTransaction, ids: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for chunk in _chunks(ids, _READ_CHUNK):
        found.extend(record["c"] for record in tx.run(_GET_CIS, ids=chunk))
    return found


def _existing_ids(tx: neo4j.ManagedTransaction, ids: list[str]) -> list[str]:
    found: list[str] = []
    for chunk in _chunks(ids, _READ_CHUNK):
        found.extend(record["id"] for record in tx.run(_EXISTING_IDS, ids=chunk))
    return found


def _list_cis(
    tx: neo4j.ManagedTransaction,
    conditions: list[str],
    parameters: dict[str, Any],
    after_id: str | None,
    first: int,
) -> tuple[int, list[dict[str, Any]]]:
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    total = tx.run(f"MATCH (c:CI) {where} RETURN count(c) AS total", parameters).single(strict=True)["total"]

    page_where = " AND ".join([*conditions, _FROM_START if after_id is None else _AFTER_CURSOR])
    after = None if after_id is None else id_order_key(after_id)
    result = tx.run(
        f"MATCH (c:CI) WHERE {page_where} WITH c ORDER BY c.id_order LIMIT $limit RETURN properties(c) AS c",
        {**parameters, "after": after, "limit": first + 1},
    )
    return int(total), [record["c"] for record in result]


def _relationship_rows(
    tx: neo4j.ManagedTransaction, queries: list[tuple[str, dict[str, Any]]]
) -> list[tuple[str, str, str, dict[str, Any]]]:
    rows: list[tuple[str, str, str, dict[str, Any]]] = []
    for query, parameters in queries:
        result = tx.run(query, parameters)
        rows.extend((r["source"], r["target"], r["type"], r["properties"]) for r in result)
    return rows


def _redundancy_member_rows(
    tx: neo4j.ManagedTransaction, consumer_ids: list[str]
) -> list[tuple[str, str, str, dict[str, Any]]]:
    rows: list[tuple[str, str, str, dict[str, Any]]] = []
    for chunk in _chunks(consumer_ids, _READ_CHUNK):
        record = tx.run(_REDUNDANCY_MEMBERS, ids=chunk).single(strict=True)
        rows.extend(zip(record["sources"], record["targets"], record["types"], record["properties"], strict=True))
    return rows


def _upsert_ci_batch(
    tx: neo4j.ManagedTransaction,
    rows: list[dict[str, Any]],
    repeats: _BatchCounts,
    new_cis: _NewCIs | None = None,
) -> _BatchCounts:
    counts = _BatchCounts()
    if new_cis is not None and new_cis.tracking:
        counts.version_before = _lock_version(tx)
    ids = [row["props"]["id"] for row in rows]
    stored = tx.run(_COUNT_STORED_CIS, ids=ids).single(strict=True)["stored"]
    if stored:
        query = _UPSERT_CIS
    elif counts.version_before is not None:
        query = _CREATE_NEW_CIS
    else:
        query = _MERGE_NEW_CIS
    record = tx.run(query, rows=rows).single(strict=True)
    counts.created = record["created"]
    counts.updated = record["updated"] + repeats.updated
    counts.version_after = counts.version_before
    if counts.created or counts.updated:
        counts.version_after = _bump_version(tx)
    return counts


def _upsert_relationship_batch(
    tx: neo4j.ManagedTransaction,
    rows: list[dict[str, Any]],
    repeats: _BatchCounts,
    new_cis: _NewCIs | None = None,
) -> _BatchCounts:
    counts = _BatchCounts(updated=repeats.updated)
    can_create: Callable[[dict[str, Any]], bool] | None = None
    if new_cis is not None and new_cis.has_ids:
        counts.version_before = _lock_version(tx)
        if new_cis.continues(counts.version_before):
            can_create = new_cis.can_create

    # Per type, the rows known to be absent (created with CREATE) and the others (upserted).
    by_type: dict[RelationshipType, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for row in rows:
        absent, others = by_type.setdefault(RelationshipType(row["type"]), ([], []))
        (absent if can_create is not None and can_create(row) else others).append(row)
    for type_, (absent, others) in by_type.items():
        for query, typed_rows in ((_CREATE_RELATIONSHIPS[type_], absent), (_UPSERT_RELATIONSHIPS[type_], others)):
            if not typed_rows:
                continue
            record = tx.run(query, rows=typed_rows).single(strict=True)
            if record["matched"] < len(typed_rows):
                # Raising rolls back this batch; the endpoints were checked before
                # the write began, so a CI was deleted while it ran.
                missing = len(typed_rows) - record["matched"]
                raise ConflictError(
                    f"{missing} {type_.value} relationship(s) of this batch name a CI that is no longer "
                    "stored; the batch was not written, so import those CIs and write again"
                )
            counts.created += record["created"]
            counts.updated += record["updated"]
    counts.version_after = counts.version_before
    if counts.created or counts.updated:
        counts.version_after = _bump_version(tx)
    return counts


def _delete_ci(tx: neo4j.ManagedTransaction, ci_id: str, cascade: bool) -> tuple[int, int, int]:
    """Delete a CI with DETACH DELETE, which also removes the links of changes and incidents to it."""
    record = tx.run(_COUNT_ATTACHED, id=ci_id).single()
    if record is None:
        raise NotFoundError(f"CI {ci_id!r} not found; nothing was deleted")
    attached = int(record["attached"])
    change_links = int(record["change_links"])
    incident_links = int(record["incident_links"])
    if (attached or change_links or incident_links) and not cascade:
        raise ConflictError(delete_conflict_message(ci_id, attached, change_links, incident_links))
    tx.run(_DELETE_CI, id=ci_id).consume()
    _bump_version(tx)
    return attached, change_links, incident_links


def _delete_relationship(
    tx: neo4j.ManagedTransaction, source: str, target: str, type_: RelationshipType
) -> bool:
    deleted = tx.run(_DELETE_RELATIONSHIP[type_], source=source, target=target).single(strict=True)["deleted"]
    if deleted:
        _bump_version(tx)
    return bool(deleted)


def _load_topology(tx: neo4j.ManagedTransaction, chunk_size: int) -> dict[str, Any]:
    version = _read_version(tx)
    columns: dict[str, list[Any]] = {name: [] for name in (*_NODE_COLUMNS, *_EDGE_COLUMNS)}
    query, after = _TOPOLOGY_FIRST_CHUNK, None
    while True:
        chunk = tx.run(query, after=after, limit=chunk_size).single(strict=True)
        offset = len(columns["ids"])
        for name in _NODE_COLUMNS:
            columns[name].extend(chunk[name])
        columns["edge_source"].extend(offset + position for position in chunk["edge_source"])
        for name in _EDGE_COLUMNS[1:]:
            columns[name].extend(chunk[name])
        if len(chunk["ids"]) < chunk_size:
            break
        query, after = _TOPOLOGY_NEXT_CHUNK, chunk["last"]
    return {"version": version, "changed": _read_version(tx) != version, **columns}


def _records_by_id(tx: neo4j.ManagedTransaction, query: str, ids: list[str]) -> list[tuple[dict[str, Any], Any]]:
    found: list[tuple[dict[str, Any], Any]] = []
    for chunk in _chunks(ids, _READ_CHUNK):
        found.extend((record["node"], record["links"]) for record in tx.run(query, ids=chunk))
    return found


def _existing_change_ids(tx: neo4j.ManagedTransaction, ids: list[str]) -> list[str]:
    found: list[str] = []
    for chunk in _chunks(ids, _READ_CHUNK):
        found.extend(record["id"] for record in tx.run(_EXISTING_CHANGE_IDS, ids=chunk))
    return found


def _event_conditions(
    templates: Mapping[str, str], filter: ChangeFilter | IncidentFilter
) -> tuple[list[str], dict[str, Any]]:
    """Return the Cypher conditions and parameters of the fields that a change or incident filter sets."""
    conditions: list[str] = []
    parameters: dict[str, Any] = {}
    for name, condition in templates.items():
        value = getattr(filter, name)
        if value is None or (name != "ci_ids" and not value):
            continue
        conditions.append(condition)
        if name == "ci_ids":
            parameters[name] = list(value)
        elif name in ("since", "until"):
            parameters[name] = event_time_text(value)
        elif name == "text":
            parameters[name] = value.lower()
        else:
            parameters[name] = value
    return conditions, parameters


def _list_events(
    tx: neo4j.ManagedTransaction,
    label: str,
    variable: str,
    links: str,
    conditions: list[str],
    parameters: dict[str, Any],
    after_id: str | None,
    first: int,
) -> tuple[int, list[tuple[dict[str, Any], Any]]]:
    """Count the ``label`` nodes that meet the conditions and return a page of them in id order."""
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    total = tx.run(f"MATCH ({variable}:{label}) {where} RETURN count({variable}) AS total", parameters).single(
        strict=True
    )["total"]

    position = f"{variable}.id_order >= ''" if after_id is None else f"{variable}.id_order > $after"
    page_where = " AND ".join([*conditions, position])
    after = None if after_id is None else id_order_key(after_id)
    result = tx.run(
        f"MATCH ({variable}:{label}) WHERE {page_where} WITH {variable} ORDER BY {variable}.id_order LIMIT $limit "
        f"RETURN properties({variable}) AS node, {links} AS links",
        {**parameters, "after": after, "limit": first + 1},
    )
    return int(total), [(record["node"], record["links"]) for record in result]


def _upsert_event_batch(
    tx: neo4j.ManagedTransaction, query: str, rows: list[dict[str, Any]], what: str
) -> _BatchCounts:
    record = tx.run(query, rows=rows).single(strict=True)
    if record["missing"]:
        # Raising rolls back this batch; the references were checked before
        # the write began, so a CI or change was deleted while it ran.
        raise ConflictError(
            f"{record['missing']} link(s) of this batch of {what} name a CI or change that is no longer "
            "stored; the batch was not written, so import those records and write again"
        )
    return _BatchCounts(created=record["created"], updated=record["updated"])


def _upsert_change_batch(
    tx: neo4j.ManagedTransaction, rows: list[dict[str, Any]], repeats: _BatchCounts
) -> _BatchCounts:
    counts = _upsert_event_batch(tx, _UPSERT_CHANGES, rows, "changes")
    counts.updated += repeats.updated
    if counts.created or counts.updated:
        _bump_version(tx)
    return counts


def _upsert_incident_batch(
    tx: neo4j.ManagedTransaction, rows: list[dict[str, Any]], repeats: _BatchCounts
) -> _BatchCounts:
    counts = _upsert_event_batch(tx, _UPSERT_INCIDENTS, rows, "incidents")
    counts.updated += repeats.updated
    if counts.created or counts.updated:
        _bump_version(tx)
    return counts


_EventRecord = tuple[dict[str, Any], Any]


def _load_events(tx: neo4j.ManagedTransaction) -> tuple[int, list[_EventRecord], list[_EventRecord]]:
    """Return the version and the records of every change and incident.

    Like ``_load_topology``, it returns the version read before the records,
    so that a write committed meanwhile makes the next version check rebuild.
    """
    version = _read_version(tx)
    changes = [(record["node"], record["links"]) for record in tx.run(_ALL_CHANGES)]
    incidents = [(record["node"], record["links"]) for record in tx.run(_ALL_INCIDENTS)]
    return version, changes, incidents


def _procedure_documents(tx: neo4j.ManagedTransaction, ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(ids, _READ_CHUNK):
        found.update((record["id"], record["document"]) for record in tx.run(_PROCEDURE_DOCUMENTS, ids=chunk))
    return found


def _load_procedures(tx: neo4j.ManagedTransaction) -> tuple[int, list[str]]:
    version = _read_version(tx)
    return version, [record["document"] for record in tx.run(_ALL_PROCEDURES)]


def _upsert_procedure_batch(
    tx: neo4j.ManagedTransaction, procedures: list[Procedure], _repeats: _BatchCounts
) -> _BatchCounts:
    stored = _procedure_documents(tx, list(dict.fromkeys(procedure.id for procedure in procedures)))
    result = WriteResult()
    dirty = plan_procedure_writes(procedures, stored, result)
    if dirty:
        by_id = {procedure.id: procedure for procedure in procedures}
        rows = [
            {
                "id": procedure_id,
                "title": by_id[procedure_id].title,
                "level": by_id[procedure_id].level.value,
                "action": by_id[procedure_id].action.value,
                "applies_to": list(by_id[procedure_id].applies_to),
                "document": document,
            }
            for procedure_id, document in dirty.items()
        ]
        tx.run(_WRITE_PROCEDURES, rows=rows).consume()
        _bump_version(tx)
    return _BatchCounts(created=result.procedures_created, updated=result.procedures_updated)


def _delete_procedure(tx: neo4j.ManagedTransaction, procedure_id: str) -> bool:
    deleted = int(tx.run(_DELETE_PROCEDURE, id=procedure_id).single(strict=True)["deleted"])
    if deleted:
        _bump_version(tx)
    return deleted > 0
