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
//   (:FaultgraphMeta {key: 'graph', version})
// `attributes` is a JSON object as text, `tags` a list of strings, and times
// are ISO 8601 text in UTC with a Z suffix. Absent values are absent properties.

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

CREATE CONSTRAINT faultgraph_meta_key_unique IF NOT EXISTS
FOR (m:FaultgraphMeta) REQUIRE m.key IS UNIQUE;

// The version counter: every transaction that changes the graph increments it.
MERGE (m:FaultgraphMeta {key: 'graph'})
ON CREATE SET m.version = 0;
