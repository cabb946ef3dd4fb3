"""The Neo4j store when Neo4j stops in the middle of writing changes and incidents.

The test stops and starts a Neo4j server of its own, so the session's shared
server keeps running for the other tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from service.errors import PartialWriteError
from service.model import (
    CI,
    Change,
    ChangeKind,
    ChangeStatus,
    Incident,
    IncidentStatus,
    Procedure,
    ProcedureAction,
    ProcedureLevel,
    Severity,
    Step,
)
from service.store.base import ChangeFilter, IncidentFilter
from service.store.neo4j import Neo4jStore
from tests.conftest import in_ci
from tests.support.neo4j_server import Neo4jServer, find_free_port, java_and_maven_available

pytestmark = pytest.mark.neo4j

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jServer]:
    available, reason = java_and_maven_available()
    if not available:
        if in_ci():
            pytest.fail(f"Neo4j tests must run when CI=true, but {reason}")
        pytest.skip(f"Neo4j tests skipped: {reason}")
    own = Neo4jServer(tmp_path_factory.mktemp("neo4j-event-faults"), port=find_free_port())
    own.start()
    yield own
    own.close()


def test_write_events_stopped_server_raises_partial_write(server: Neo4jServer) -> None:
    store = Neo4jStore(server.uri, server.user, server.password or "", max_retry_time=1.0)
    cis = [CI(id=f"ci-{number}", name=f"ci-{number}", type="service") for number in range(10)]
    changes = [
        Change(
            id=f"CHG-{number:03d}",
            title=f"Change {number}",
            kind=ChangeKind.CONFIG,
            status=ChangeStatus.COMPLETED,
            affected=(f"ci-{number % 10}",),
            actual_start=T0 + timedelta(minutes=number),
        )
        for number in range(300)
    ]
    incidents = [
        Incident(
            id=f"INC-{number:03d}",
            title=f"Incident {number}",
            severity=Severity.LOW,
            status=IncidentStatus.CLOSED,
            started_at=T0 + timedelta(minutes=number, seconds=30),
            impacted=(f"ci-{number % 10}",),
            caused_by_change=f"CHG-{number:03d}",
        )
        for number in range(50)
    ]

    def stop_after_first_change_batch(done: int, total: int) -> None:
        if done == len(cis) + 100:
            server.stop()

    with pytest.raises(
        PartialWriteError, match="10 CIs and 0 relationships, 100 changes and 0 incidents were"
    ) as raised:
        store.write(
            cis, [], changes=changes, incidents=incidents, batch_size=100, progress=stop_after_first_change_batch
        )

    progress = raised.value.progress
    assert (progress.changes_written, progress.changes_not_written) == (100, 200)
    assert (progress.incidents_written, progress.incidents_not_written) == (0, 50)
    assert progress.failed_batches == ["change batch 2 (changes 101-200)"]
    assert raised.value.extensions()["notWritten"] == {
        "cis": 0,
        "relationships": 0,
        "changes": 200,
        "incidents": 50,
        "procedures": 0,
    }
    server.start()
    assert store.list_changes(ChangeFilter(), 0, None).total_count == 100

    # The same store object completes the write once Neo4j is back.
    result = store.write(cis, [], changes=changes, incidents=incidents, batch_size=100)

    assert (result.changes_created, result.changes_unchanged) == (200, 100)
    assert result.incidents_created == 50
    assert store.list_incidents(IncidentFilter(caused_by_change="CHG-042"), 10, None).total_count == 1
    assert store.write(cis, [], changes=changes, incidents=incidents, batch_size=100).changed is False
    store.close()


def test_write_procedures_stopped_server_completes_on_retry(server: Neo4jServer) -> None:
    store = Neo4jStore(server.uri, server.user, server.password or "", max_retry_time=1.0)
    cis = [CI(id="crm-db", name="CRM DB", type="database")]
    procedures = [
        Procedure(
            id=f"PROC-{number:03d}",
            title=f"Procedure {number}",
            level=ProcedureLevel.SYSTEM,
            action=ProcedureAction.RESTART,
            steps=(Step(f"Step of procedure {number}."),),
            applies_to=("crm-db",),
        )
        for number in range(250)
    ]

    def stop_after_first_procedure_batch(done: int, total: int) -> None:
        if done == len(cis) + 100:
            server.stop()

    with pytest.raises(PartialWriteError, match=r"100 procedures were written in whole batches") as raised:
        store.write(cis, [], procedures=procedures, batch_size=100, progress=stop_after_first_procedure_batch)

    progress = raised.value.progress
    assert (progress.procedures_written, progress.procedures_not_written) == (100, 150)
    assert progress.failed_batches == ["procedure batch 2 (procedures 101-200)"]
    assert raised.value.extensions()["written"]["procedures"] == 100
    server.start()
    assert len(store.load_procedures()[1]) == 100

    result = store.write(cis, [], procedures=procedures, batch_size=100)

    assert (result.procedures_created, result.procedures_unchanged) == (150, 100)
    assert [procedure.id for procedure in store.load_procedures()[1]] == [procedure.id for procedure in procedures]
    assert store.write(cis, [], procedures=procedures, batch_size=100).changed is False
    store.close()
