"""The shared loader with changes and incidents: bad references are rejected whole and named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from importers import read_files
from service.errors import ImportRejectedError, RecordProblem
from service.loader import ImportReport, load
from service.store.base import ChangeFilter, GraphStore, IncidentFilter
from tests.conftest import TEST_DATA

EVENTS = TEST_DATA / "events"
BASE = EVENTS / "base.yaml"


def import_files(store: GraphStore, *paths: Path, keep_going: bool = False) -> ImportReport:
    return load(store, read_files("bundle", list(paths)), keep_going=keep_going)


def event_state(store: GraphStore) -> tuple[int, list[Any], list[Any]]:
    """Return the version, every change and every incident, to compare a store before and after."""
    changes = store.list_changes(ChangeFilter(), 1000, None).items
    incidents = store.list_incidents(IncidentFilter(), 1000, None).items
    return store.version(), changes, incidents


def problem_keys(problems: list[RecordProblem]) -> set[tuple[str, str, str]]:
    return {(Path(problem.source).name, problem.record, problem.field) for problem in problems}


@pytest.fixture
def base_store(store: GraphStore) -> GraphStore:
    """A store holding ``events/base.yaml``: four CIs, change CHG-1 and incident INC-1."""
    import_files(store, BASE)
    return store


BAD_FILES = [
    pytest.param(
        "change-unknown-ci.yaml",
        [("changes#0 (id 'CHG-2')", "affected")],
        "'no-such-cache' not found",
        id="change-unknown-ci",
    ),
    pytest.param(
        "incident-unknown-impacted.yaml",
        [("incidents#0 (id 'INC-2')", "impacted")],
        "'ghost-web' not found",
        id="incident-unknown-impacted",
    ),
    pytest.param(
        "incident-unknown-root-cause.yaml",
        [("incidents#0 (id 'INC-2')", "root_causes")],
        "'ghost-db' not found",
        id="incident-unknown-root-cause",
    ),
    pytest.param(
        "incident-unknown-change.yaml",
        [("incidents#0 (id 'INC-2')", "caused_by_change")],
        "change 'CHG-404' not found among the changes of this import or in the store",
        id="incident-unknown-change",
    ),
    pytest.param(
        "incident-rejected-change.yaml",
        [("changes#0 (id 'CHG-2')", "affected"), ("incidents#0 (id 'INC-2')", "caused_by_change")],
        "change 'CHG-2' of this import was rejected",
        id="incident-names-rejected-change",
    ),
    pytest.param(
        "conflicting-change.yaml",
        [("changes#0 (id 'CHG-2')", "id"), ("changes#1 (id 'CHG-2')", "id")],
        "with a different status; keep one definition or give each change its own id",
        id="conflicting-duplicate-change",
    ),
    pytest.param(
        "conflicting-incident.yaml",
        [("incidents#0 (id 'INC-2')", "id"), ("incidents#1 (id 'INC-2')", "id")],
        "with a different severity",
        id="conflicting-duplicate-incident",
    ),
    pytest.param(
        "change-conflicting-ci.yaml",
        [("cis#0 (id 'cache')", "id"), ("cis#1 (id 'cache')", "id"), ("changes#0 (id 'CHG-2')", "affected")],
        "'cache' are defined more than once with different fields",
        id="change-names-conflicting-ci",
    ),
    pytest.param(
        "change-end-before-start.yaml",
        [("changes#0 (id 'CHG-2')", "actual_end")],
        "is before actual_start",
        id="change-end-before-start",
    ),
    pytest.param(
        "incident-time-without-zone.yaml",
        [("incidents#0 (id 'INC-2')", "started_at")],
        "has no time zone",
        id="incident-time-without-zone",
    ),
]


@pytest.mark.parametrize(("file_name", "expected", "fragment"), BAD_FILES)
def test_loader_events_rejects_bad_file(
    base_store: GraphStore, file_name: str, expected: list[tuple[str, str]], fragment: str
) -> None:
    with pytest.raises(ImportRejectedError) as excinfo:
        import_files(base_store, EVENTS / file_name)

    assert problem_keys(excinfo.value.problems) == {(file_name, record, field) for record, field in expected}


@pytest.mark.parametrize(("file_name", "expected", "fragment"), BAD_FILES)
def test_loader_events_error_names_record_field(
    base_store: GraphStore, file_name: str, expected: list[tuple[str, str]], fragment: str
) -> None:
    with pytest.raises(ImportRejectedError) as excinfo:
        import_files(base_store, EVENTS / file_name)

    message = str(excinfo.value)
    for record, field in expected:
        assert f"{EVENTS / file_name}: record {record}, field '{field}': " in message
    assert fragment in message


@pytest.mark.parametrize(("file_name", "expected", "fragment"), BAD_FILES)
def test_loader_events_rejected_file_writes_nothing(
    base_store: GraphStore, file_name: str, expected: list[tuple[str, str]], fragment: str
) -> None:
    before = event_state(base_store)
    cis_before = len(base_store.get_cis(["db", "app", "web", "shop", "cache"]))

    with pytest.raises(ImportRejectedError):
        import_files(base_store, EVENTS / file_name)

    assert event_state(base_store) == before
    assert len(base_store.get_cis(["db", "app", "web", "shop", "cache"])) == cis_before


def test_loader_events_imports_base_bundle(store: GraphStore) -> None:
    report = import_files(store, BASE)

    assert (report.changes_read, report.incidents_read) == (1, 1)
    assert (report.result.changes_created, report.result.incidents_created) == (1, 1)
    assert store.get_changes(["CHG-1"])["CHG-1"].affected == ("db",)
    assert store.get_incidents(["INC-1"])["INC-1"].caused_by_change == "CHG-1"


def test_loader_events_reimport_changes_nothing(base_store: GraphStore) -> None:
    before = event_state(base_store)

    report = import_files(base_store, BASE)

    assert (report.result.changes_unchanged, report.result.incidents_unchanged) == (1, 1)
    assert not report.result.changed
    assert event_state(base_store) == before


def test_loader_events_incident_may_name_stored_change(base_store: GraphStore) -> None:
    report = import_files(base_store, EVENTS / "stored-change.yaml")

    assert report.result.incidents_created == 1
    assert base_store.get_incidents(["INC-2"])["INC-2"].caused_by_change == "CHG-1"


def test_loader_events_keep_going_writes_valid_records(base_store: GraphStore) -> None:
    report = import_files(base_store, EVENTS / "keep-going.yaml", keep_going=True)

    assert problem_keys(report.rejected) == {
        ("keep-going.yaml", "changes#1 (id 'CHG-3')", "affected"),
        ("keep-going.yaml", "incidents#1 (id 'INC-3')", "caused_by_change"),
    }
    assert set(base_store.get_changes(["CHG-2", "CHG-3"])) == {"CHG-2"}
    assert set(base_store.get_incidents(["INC-2", "INC-3"])) == {"INC-2"}


def test_loader_events_default_writes_nothing(base_store: GraphStore) -> None:
    before = event_state(base_store)

    with pytest.raises(ImportRejectedError):
        import_files(base_store, EVENTS / "keep-going.yaml")

    assert event_state(base_store) == before
