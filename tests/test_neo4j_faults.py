"""The Neo4j store when Neo4j is down, comes back, or stops in the middle of an import.

These tests stop and start a Neo4j server of their own, so the session's
shared server keeps running for the other tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import neo4j
import pytest

from service.errors import PartialWriteError, StoreUnavailableError
from service.model import CI, Relationship, RelationshipType
from service.store.base import CIFilter, WriteResult
from service.store.neo4j import Neo4jStore
from tests.conftest import in_ci
from tests.support.neo4j_server import Neo4jServer, find_free_port, java_and_maven_available

pytestmark = pytest.mark.neo4j

# Seconds the driver retries a failed transaction. They are few, so that a
# stopped server fails the write quickly.
RETRY_SECONDS = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jServer]:
    """A Neo4j server of this module, stopped at first. Each test starts it when it needs it."""
    available, reason = java_and_maven_available()
    if not available:
        if in_ci():
            pytest.fail(f"Neo4j tests must run when CI=true, but {reason}")
        pytest.skip(f"Neo4j tests skipped: {reason}")
    own = Neo4jServer(tmp_path_factory.mktemp("neo4j-faults"), port=find_free_port())
    yield own
    own.close()


@pytest.fixture
def running(server: Neo4jServer) -> Neo4jServer:
    """The module's server, started, with an empty database."""
    if not server.is_running:
        server.start()
    with neo4j.GraphDatabase.driver(server.uri, auth=server.auth) as driver, driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
    return server


def open_store(server: Neo4jServer) -> Neo4jStore:
    return Neo4jStore(server.uri, server.user, server.password or "", max_retry_time=RETRY_SECONDS)


def stored_counts(server: Neo4jServer) -> tuple[int, int, int]:
    """Return the number of CI nodes, of distinct CI ids and of relationships between CIs."""
    query = """
    MATCH (c:CI)
    OPTIONAL MATCH (c)-[r]->(:CI)
    RETURN count(DISTINCT c) AS nodes, count(DISTINCT c.id) AS ids, count(r) AS relationships
    """
    with neo4j.GraphDatabase.driver(server.uri, auth=server.auth) as driver:
        records, _, _ = driver.execute_query(query)
    return records[0]["nodes"], records[0]["ids"], records[0]["relationships"]


def import_data(count: int) -> tuple[list[CI], list[Relationship]]:
    cis = [CI(id=f"ci-{number:05d}", name=f"CI {number}", type="service") for number in range(count)]
    relationships = [
        Relationship(source=cis[number].id, target=cis[number - 1].id, type=RelationshipType.DEPENDS_ON)
        for number in range(1, count)
    ]
    return cis, relationships


# Neo4j down at start


def test_store_constructs_while_neo4j_down(server: Neo4jServer) -> None:
    server.stop()
    store = open_store(server)

    with pytest.raises(StoreUnavailableError, match=f"Neo4j at {server.uri} is unreachable") as raised:
        store.check()

    assert server.password is not None
    assert server.password not in str(raised.value)
    store.close()


def test_store_query_while_neo4j_down_raises(server: Neo4jServer) -> None:
    server.stop()
    store = open_store(server)

    with pytest.raises(StoreUnavailableError, match="cannot list CIs: Neo4j at .* is unreachable"):
        store.list_cis(CIFilter(), 10, None)

    store.close()


def test_store_recovers_when_neo4j_starts(server: Neo4jServer) -> None:
    server.stop()
    store = open_store(server)
    with pytest.raises(StoreUnavailableError):
        store.check()

    server.start()
    store.check()
    result = store.write([CI(id="late", name="Late", type="service")], [])

    assert result == WriteResult(cis_created=1)
    assert set(store.get_cis(["late"])) == {"late"}
    with neo4j.GraphDatabase.driver(server.uri, auth=server.auth) as driver:
        records, _, _ = driver.execute_query("SHOW INDEXES YIELD name RETURN collect(name) AS names")
    assert {"ci_id_unique", "ci_id_order", "ci_type", "ci_environment", "ci_search_text"} <= set(
        records[0]["names"]
    )
    store.close()


def test_store_rejects_wrong_password(running: Neo4jServer) -> None:
    store = Neo4jStore(running.uri, running.user, "not-the-password", max_retry_time=RETRY_SECONDS)

    with pytest.raises(StoreUnavailableError, match="rejected the credentials of user 'neo4j'") as raised:
        store.check()

    assert "not-the-password" not in str(raised.value)
    store.close()


def test_store_rejects_unknown_database(running: Neo4jServer) -> None:
    store = Neo4jStore(running.uri, running.user, running.password or "", database="inventory")

    with pytest.raises(
        StoreUnavailableError, match="has no database 'inventory'; set FAULTGRAPH_NEO4J_DATABASE"
    ):
        store.version()

    store.close()


# Neo4j stopped during an import


@pytest.mark.parametrize(
    ("stop_after", "written", "not_written", "failed_batch"),
    [
        pytest.param(200, (200, 0), (300, 499), "CI batch 3 (CIs 201-300)", id="during-cis"),
        pytest.param(
            700,
            (500, 200),
            (0, 299),
            "relationship batch 3 (relationships 201-300)",
            id="during-relationships",
        ),
    ],
)
def test_write_stopped_server_raises_partial_write(
    running: Neo4jServer,
    stop_after: int,
    written: tuple[int, int],
    not_written: tuple[int, int],
    failed_batch: str,
) -> None:
    store = open_store(running)
    cis, relationships = import_data(500)

    def stop_server(done: int, total: int) -> None:
        if done == stop_after:
            running.stop()

    with pytest.raises(PartialWriteError, match="the write stopped part way") as raised:
        store.write(cis, relationships, batch_size=100, progress=stop_server)

    progress = raised.value.progress
    assert (progress.cis_written, progress.relationships_written) == written
    assert (progress.cis_not_written, progress.relationships_not_written) == not_written
    assert progress.failed_batches == [failed_batch]
    running.start()
    assert stored_counts(running) == (written[0], written[0], written[1])

    # The same store object, whose pooled connections died with the server, completes the import.
    result = store.write(cis, relationships, batch_size=100)

    assert result.cis_created == not_written[0]
    assert result.cis_unchanged == written[0]
    assert result.relationships_created == not_written[1]
    assert result.relationships_unchanged == written[1]
    assert stored_counts(running) == (500, 500, 499)
    assert store.write(cis, relationships, batch_size=100).changed is False
    store.close()


def test_write_crash_leaves_whole_batches(running: Neo4jServer) -> None:
    store = open_store(running)
    cis, _ = import_data(30_000)
    batch_size = 10_000
    crash = threading.Timer(0.05, running.kill)

    def crash_soon(done: int, total: int) -> None:
        # The crash lands while the second batch is in flight, or just after it.
        if done == batch_size:
            crash.start()

    with pytest.raises(PartialWriteError) as raised:
        store.write(cis, [], batch_size=batch_size, progress=crash_soon)
    crash.join()
    running.start()

    nodes, ids, _ = stored_counts(running)
    progress = raised.value.progress
    assert nodes == ids
    assert nodes % batch_size == 0
    # A crash during the commit can keep a batch that the client counts as not written.
    assert progress.cis_written <= nodes <= progress.cis_written + batch_size
    assert store.write(cis, [], batch_size=batch_size).cis_created == len(cis) - nodes
    store.close()


def test_write_before_any_batch_raises_unavailable(running: Neo4jServer) -> None:
    store = open_store(running)
    store.check()
    running.stop()
    cis, relationships = import_data(10)

    with pytest.raises(StoreUnavailableError, match="Neo4j at .* is unreachable") as raised:
        store.write(cis, relationships)

    assert not isinstance(raised.value, PartialWriteError)
    running.start()
    assert stored_counts(running) == (0, 0, 0)
    store.close()
