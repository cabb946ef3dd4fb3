"""The Neo4j write path when another writer changes the graph between the batches of a write.

A write creates the first relationships of the CIs that it created itself
with CREATE instead of MERGE, as long as the version counter shows that no
other transaction changed the graph in between. These tests make another
store write between two batches and check that no relationship is stored twice.
"""

from __future__ import annotations

from typing import Any

import neo4j
import pytest

from service.model import CI, Relationship, RelationshipType, Strength
from service.store.base import WriteResult
from service.store.neo4j import Neo4jStore
from tests.conftest import clear_neo4j

pytestmark = pytest.mark.neo4j

DEPENDS_ON = RelationshipType.DEPENDS_ON

# Written one record per batch: CI batches 1-3, then relationship batches 1-2.
# The two relationships have different sources, so that the second one would
# be created with CREATE if the other writer went unnoticed.
CIS = [
    CI(id="db", name="db", type="database"),
    CI(id="cache", name="cache", type="cache"),
    CI(id="app", name="app", type="service"),
]
RELATIONSHIPS = [Relationship("app", "db", DEPENDS_ON), Relationship("cache", "db", DEPENDS_ON)]
OTHER_WRITE = Relationship("cache", "db", DEPENDS_ON, strength=Strength.SOFT)


def relationship_count(server: Any, source: str, target: str) -> int:
    query = "MATCH (:CI {id: $source})-[r]->(:CI {id: $target}) RETURN count(r) AS relationships"
    with neo4j.GraphDatabase.driver(server.uri, auth=(server.user, server.password)) as driver:
        records, _, _ = driver.execute_query(query, source=source, target=target)
    return int(records[0]["relationships"])


@pytest.mark.parametrize(
    "records_done",
    [
        pytest.param(2, id="between-ci-batches"),
        pytest.param(3, id="before-relationship-batches"),
        pytest.param(4, id="between-relationship-batches"),
    ],
)
def test_write_other_writer_between_batches_stores_one_relationship(neo4j_server: Any, records_done: int) -> None:
    clear_neo4j(neo4j_server)
    store = Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password)
    other = Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password)

    def write_other(done: int, total: int) -> None:
        if done == records_done:
            assert other.write([], [OTHER_WRITE]) == WriteResult(relationships_created=1)

    result = store.write(CIS, RELATIONSHIPS, batch_size=1, progress=write_other)

    assert result == WriteResult(cis_created=3, relationships_created=1, relationships_updated=1)
    assert relationship_count(neo4j_server, "cache", "db") == 1
    assert store.relationships_of("db", "incoming") == RELATIONSHIPS
    store.close()
    other.close()


def test_write_without_other_writer_counts_created(neo4j_server: Any) -> None:
    clear_neo4j(neo4j_server)
    store = Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password)

    result = store.write(CIS, RELATIONSHIPS, batch_size=1)

    assert result == WriteResult(cis_created=3, relationships_created=2)
    assert store.relationships_of("db", "incoming") == RELATIONSHIPS
    assert store.write(CIS, RELATIONSHIPS, batch_size=1).changed is False
    store.close()


def ci_count(server: Any, ci_id: str) -> int:
    with neo4j.GraphDatabase.driver(server.uri, auth=(server.user, server.password)) as driver:
        records, _, _ = driver.execute_query("MATCH (c:CI {id: $id}) RETURN count(c) AS cis", id=ci_id)
    return int(records[0]["cis"])


def test_write_other_writer_stores_ci_between_batches(neo4j_server: Any) -> None:
    clear_neo4j(neo4j_server)
    store = Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password)
    other = Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password)
    renamed_app = CI(id="app", name="app (other writer)", type="service")

    def write_other(done: int, total: int) -> None:
        if done == 2:
            assert other.write([renamed_app], []) == WriteResult(cis_created=1)

    result = store.write(CIS, RELATIONSHIPS, batch_size=1, progress=write_other)

    assert result == WriteResult(cis_created=2, cis_updated=1, relationships_created=2)
    assert ci_count(neo4j_server, "app") == 1
    assert store.get_cis(["app"]) == {"app": CIS[2]}
    store.close()
    other.close()
