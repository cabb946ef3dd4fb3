"""Shared fixtures: the contract suite runs every ``store`` test against both stores.

Select stores with ``FAULTGRAPH_TEST_STORES=embedded`` (or ``neo4j``, or
``embedded,neo4j``, the default). The Neo4j store runs against a real Neo4j
5.26 server that the session starts on 127.0.0.1; without Java 17 and Maven
those tests are skipped, except when ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.store.base import GraphStore
from service.store.embedded import EmbeddedStore

STORES = [name.strip() for name in os.environ.get("FAULTGRAPH_TEST_STORES", "embedded,neo4j").split(",")]
SHARED_DATA = Path(os.environ.get("FAULTGRAPH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TEST_DATA = Path(__file__).resolve().parent / "data"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def neo4j_server() -> Iterator[Any]:
    """A real Neo4j server for the whole session, started on a free port of 127.0.0.1."""
    from tests.support.neo4j_server import Neo4jServer, java_and_maven_available

    available, reason = java_and_maven_available()
    if not available:
        if in_ci():
            pytest.fail(f"Neo4j tests must run when CI=true, but {reason}")
        pytest.skip(f"Neo4j tests skipped: {reason}")
    server = Neo4jServer()
    try:
        server.start()
    except Exception as exc:
        if in_ci():
            raise
        pytest.skip(f"Neo4j test server did not start: {exc}")
    yield server
    # close() also deletes the server's temporary home directory.
    server.close()


def clear_neo4j(server: Any) -> None:
    """Delete every node and relationship of the server's default database."""
    import neo4j

    # CALL { ... } IN TRANSACTIONS runs only in an auto-commit transaction, so not through execute_query.
    with neo4j.GraphDatabase.driver(server.uri, auth=(server.user, server.password)) as driver:
        with driver.session() as session:
            session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()


@pytest.fixture
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], GraphStore]]:
    """Return a factory of empty stores of the kind named by the test's ``store_kind`` parameter."""
    kind = getattr(request, "param", "embedded")
    created: list[GraphStore] = []

    if kind == "neo4j":
        server = request.getfixturevalue("neo4j_server")
        clear_neo4j(server)

    def make() -> GraphStore:
        if kind == "embedded":
            store: GraphStore = EmbeddedStore(tmp_path / f"store-{len(created)}.db")
        else:
            from service.store.neo4j import Neo4jStore

            store = Neo4jStore(server.uri, server.user, server.password)
        created.append(store)
        return store

    yield make
    for store in created:
        store.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_factory" in metafunc.fixturenames or "store" in metafunc.fixturenames:
        params = [pytest.param(kind, id=kind, marks=[pytest.mark.neo4j] if kind == "neo4j" else []) for kind in STORES]
        metafunc.parametrize("store_factory", params, indirect=True)


@pytest.fixture
def store(store_factory: Callable[[], GraphStore]) -> GraphStore:
    """An empty store; the test runs once per store kind."""
    return store_factory()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the Neo4j-only tests when FAULTGRAPH_TEST_STORES leaves Neo4j out."""
    if "neo4j" in STORES:
        return
    skip = pytest.mark.skip(reason="Neo4j tests skipped: FAULTGRAPH_TEST_STORES does not name neo4j")
    for item in items:
        if item.get_closest_marker("neo4j"):
            item.add_marker(skip)
