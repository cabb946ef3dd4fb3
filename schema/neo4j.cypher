// Constraints, indexes and the version counter node of the faultgraph Neo4j store.
//
// service/store/neo4j.py runs each statement below in its own transaction when
// it first reaches the database, so every statement must be idempotent.
// Statements end with a semicolon; lines starting with // are comments.
//
// Graph shape:
//   (:CI {id, name, type, environment, criticality, owner, status, tags,
//         attributes, source, source_id, valid_from, valid_until, search_text,
//         id_order})
//   (:CI)-[:DEPENDS_ON|RUNS_ON|HOSTED_ON|CONNECTS_TO|PART_OF
//          {strength, redundancy_group, min_available, min_available_percent,
//           attributes, valid_from, valid_until}]->(:CI)
//   (:Change {id, title, kind, status, risk, planned_start, planned_end,
//             actual_start, actual_end, implementer, description,
//             rollback_procedure, attributes, window_start, window_end,
//             search_text, id_order})-[:AFFECTS {position}]->(:CI)
//   (:Incident {id, title, severity, status, started_at, detected_at,
//               resolved_at, symptom_text, symptom_tags, resolved_with,
//               attributes, search_text, id_order})
//   (:Incident)-[:IMPACTED {position}]->(:CI)
//   (:Incident)-[:ROOT_CAUSE {position}]->(:CI)
//   (:Incident)-[:CAUSED_BY]->(:Change)
//   (:Procedure {id, title, level, action, applies_to, document})
//   (:FaultgraphMeta {key: 'graph', version})
// `attributes` is a JSON object as text, `tags` a list of strings, and times
// are ISO 8601 text in UTC with a Z suffix. Change and incident times always
// have six decimals (2026-03-02T08:30:00.000000Z), so that their text order is
// time order. window_start and window_end are the actual start and end of a
// change, else the planned ones. `position` is a CI's place in the change's or
// incident's list of CIs. Absent values are absent properties. A procedure's
// `document` is its whole bundle record as JSON text; `applies_to` lists the
// ids of the CIs it names directly, kept even when such a CI is deleted, so
// that the plan-gaps report can name the stale link.

// One CI per id; the constraint's index also serves lookups and ordering by id.
CREATE CONSTRAINT ci_id_unique IF NOT EXISTS
FOR (c:CI) REQUIRE c.id IS UNIQUE;

// The id in an order that Neo4j compares like code points (see id_order_key
// in service/store/neo4j.py); listings page through CIs in this order.
CREATE INDEX ci_id_order IF NOT EXISTS
FOR (c:CI) ON (c.id_order);

CREATE INDEX ci_type IF NOT EXISTS
FOR (c:CI) ON (c.type);

CREATE INDEX ci_environment IF NOT EXISTS
FOR (c:CI) ON (c.environment);

// Lower-case id, name, owner and tags: the text filter's CONTAINS search.
CREATE TEXT INDEX ci_search_text IF NOT EXISTS
FOR (c:CI) ON (c.search_text);

// One change and one incident per id; the same id_order and text search as CIs.
CREATE CONSTRAINT change_id_unique IF NOT EXISTS
FOR (ch:Change) REQUIRE ch.id IS UNIQUE;

CREATE INDEX change_id_order IF NOT EXISTS
FOR (ch:Change) ON (ch.id_order);

CREATE INDEX change_window_start IF NOT EXISTS
FOR (ch:Change) ON (ch.window_start);

CREATE TEXT INDEX change_search_text IF NOT EXISTS
FOR (ch:Change) ON (ch.search_text);

CREATE CONSTRAINT incident_id_unique IF NOT EXISTS
FOR (i:Incident) REQUIRE i.id IS UNIQUE;

CREATE INDEX incident_id_order IF NOT EXISTS
FOR (i:Incident) ON (i.id_order);

CREATE INDEX incident_started_at IF NOT EXISTS
FOR (i:Incident) ON (i.started_at);

CREATE TEXT INDEX incident_search_text IF NOT EXISTS
FOR (i:Incident) ON (i.search_text);

CREATE CONSTRAINT procedure_id_unique IF NOT EXISTS
FOR (p:Procedure) REQUIRE p.id IS UNIQUE;

CREATE CONSTRAINT faultgraph_meta_key_unique IF NOT EXISTS
FOR (m:FaultgraphMeta) REQUIRE m.key IS UNIQUE;

// The version counter: every transaction that changes the graph increments it.
MERGE (m:FaultgraphMeta {key: 'graph'})
ON CREATE SET m.version = 0;
