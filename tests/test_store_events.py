"""The ``GraphStore`` contract for changes and incidents, run against every store kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from service.errors import ConflictError, InvalidInputError
from service.model import (
    CI,
    Change,
    ChangeKind,
    ChangeStatus,
    Incident,
    IncidentStatus,
    Risk,
    Severity,
    Status,
)
from service.snapshot import SnapshotCache
from service.store.base import ChangeFilter, DeleteResult, GraphStore, IncidentFilter, WriteResult

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def ci(ci_id: str, **fields: Any) -> CI:
    fields.setdefault("name", ci_id)
    fields.setdefault("type", "service")
    return CI(id=ci_id, **fields)


def change(change_id: str, affected: tuple[str, ...], **fields: Any) -> Change:
    fields.setdefault("title", f"Change {change_id}")
    fields.setdefault("kind", ChangeKind.CONFIG)
    fields.setdefault("status", ChangeStatus.COMPLETED)
    return Change(id=change_id, affected=affected, **fields)


def incident(incident_id: str, started_at: datetime, **fields: Any) -> Incident:
    fields.setdefault("title", f"Incident {incident_id}")
    fields.setdefault("severity", Severity.MEDIUM)
    fields.setdefault("status", IncidentStatus.RESOLVED)
    return Incident(id=incident_id, started_at=started_at, **fields)


CIS = [ci("db", type="database"), ci("app"), ci("web"), ci("cache", type="cache")]

FULL_CHANGE = Change(
    id="CHG-0042",
    title="Lower max_connections on the CRM primary",
    kind=ChangeKind.DATABASE,
    status=ChangeStatus.COMPLETED,
    affected=("db", "app"),
    risk=Risk.HIGH,
    planned_start=datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=1))),
    planned_end=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    actual_start=datetime(2026, 3, 2, 8, 31, 12, 345678, tzinfo=UTC),
    actual_end=datetime(2026, 3, 2, 8, 41, tzinfo=UTC),
    implementer="database-team",
    description="Frees memory; Zürich replica follows.",
    rollback_procedure="PROC-7",
    attributes={"ticket": "SNOW-1", "params": {"max_connections": [400, 150]}},
)

FULL_INCIDENT = Incident(
    id="INC-0007",
    title="Screen pops time out",
    severity=Severity.HIGH,
    status=IncidentStatus.CLOSED,
    started_at=datetime(2026, 3, 2, 10, 5, tzinfo=timezone(timedelta(hours=1))),
    impacted=("web", "app"),
    root_causes=("db",),
    detected_at=datetime(2026, 3, 2, 9, 10, tzinfo=UTC),
    resolved_at=datetime(2026, 3, 2, 10, 0, 0, 1, tzinfo=UTC),
    symptom_text="Screen pops take 20 s",
    symptom_tags=("slow_response", "timeout"),
    caused_by_change="CHG-0042",
    resolved_with="PROC-7",
    attributes={"postmortem": "PM-3"},
)

# Changes and incidents for the listing tests, around T0.
LISTED_CHANGES = [
    change("CHG-1", ("db",), actual_start=T0, actual_end=T0 + timedelta(minutes=30), kind=ChangeKind.DATABASE),
    change("CHG-2", ("app", "web"), actual_start=T0 + timedelta(hours=2), status=ChangeStatus.IN_PROGRESS),
    change(
        "CHG-3",
        ("web",),
        planned_start=T0 + timedelta(days=1),
        planned_end=T0 + timedelta(days=1, hours=1),
        status=ChangeStatus.PLANNED,
        description="Rotate the TLS certificate",
    ),
    change("CHG-4", ("cache",), status=ChangeStatus.PLANNED, implementer="Cache Team"),
]
LISTED_INCIDENTS = [
    incident("INC-1", T0 + timedelta(hours=1), impacted=("app",), root_causes=("db",), caused_by_change="CHG-1"),
    incident(
        "INC-2",
        T0 + timedelta(hours=3),
        impacted=("web",),
        severity=Severity.CRITICAL,
        status=IncidentStatus.OPEN,
        symptom_tags=("timeout",),
    ),
    incident("INC-3", T0 - timedelta(days=30), impacted=("cache",), symptom_text="Evictions spike"),
]


@pytest.fixture
def event_store(store: GraphStore) -> GraphStore:
    store.write(CIS, [], changes=LISTED_CHANGES, incidents=LISTED_INCIDENTS)
    return store


# Round trips


def test_get_changes_round_trips_every_field(store: GraphStore) -> None:
    store.write(CIS, [], changes=[FULL_CHANGE])

    stored = store.get_changes([FULL_CHANGE.id])

    assert stored == {FULL_CHANGE.id: FULL_CHANGE}
    assert stored[FULL_CHANGE.id].planned_start == datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    assert stored[FULL_CHANGE.id].planned_start.utcoffset() == timedelta(0)


def test_get_incidents_round_trips_every_field(store: GraphStore) -> None:
    store.write(CIS, [], changes=[FULL_CHANGE], incidents=[FULL_INCIDENT])

    stored = store.get_incidents([FULL_INCIDENT.id])

    assert stored == {FULL_INCIDENT.id: FULL_INCIDENT}
    assert stored[FULL_INCIDENT.id].started_at == datetime(2026, 3, 2, 9, 5, tzinfo=UTC)


def test_get_events_round_trip_minimal_records(store: GraphStore) -> None:
    minimal_change = change("CHG-min", ("db",))
    minimal_incident = incident("INC-min", T0)
    store.write(CIS, [], changes=[minimal_change], incidents=[minimal_incident])

    assert store.get_changes(["CHG-min"]) == {"CHG-min": minimal_change}
    assert store.get_incidents(["INC-min"]) == {"INC-min": minimal_incident}


def test_get_events_omit_unknown_ids(event_store: GraphStore) -> None:
    assert set(event_store.get_changes(["CHG-1", "CHG-404"])) == {"CHG-1"}
    assert set(event_store.get_incidents(["INC-404", "INC-2"])) == {"INC-2"}


def test_load_events_returns_everything_at_version(event_store: GraphStore) -> None:
    version, changes, incidents = event_store.load_events()

    assert version == event_store.version()
    assert sorted(changes, key=lambda c: c.id) == LISTED_CHANGES
    assert sorted(incidents, key=lambda i: i.id) == LISTED_INCIDENTS


# Listing


def listed_changes(store: GraphStore, filter: ChangeFilter) -> list[str]:
    return [item.id for item in store.list_changes(filter, 100, None).items]


def listed_incidents(store: GraphStore, filter: IncidentFilter) -> list[str]:
    return [item.id for item in store.list_incidents(filter, 100, None).items]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        pytest.param(ChangeFilter(), ["CHG-1", "CHG-2", "CHG-3", "CHG-4"], id="none"),
        pytest.param(ChangeFilter(ci_ids=("web",)), ["CHG-2", "CHG-3"], id="ci"),
        pytest.param(ChangeFilter(ci_ids=("db", "cache")), ["CHG-1", "CHG-4"], id="any-of-cis"),
        pytest.param(ChangeFilter(ci_ids=()), [], id="no-cis"),
        pytest.param(
            ChangeFilter(since=T0 + timedelta(minutes=30)), ["CHG-1", "CHG-2", "CHG-3"], id="since-end-inclusive"
        ),
        pytest.param(ChangeFilter(since=T0 + timedelta(minutes=31)), ["CHG-2", "CHG-3"], id="since-open-end-counts"),
        pytest.param(ChangeFilter(until=T0 + timedelta(hours=2)), ["CHG-1", "CHG-2"], id="until-start-inclusive"),
        pytest.param(
            ChangeFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)), ["CHG-2"], id="window"
        ),
        pytest.param(ChangeFilter(status="planned"), ["CHG-3", "CHG-4"], id="status"),
        pytest.param(ChangeFilter(kind="database"), ["CHG-1"], id="kind"),
        pytest.param(ChangeFilter(text="tls"), ["CHG-3"], id="text-description"),
        pytest.param(ChangeFilter(text="cache team"), ["CHG-4"], id="text-implementer"),
        pytest.param(ChangeFilter(ci_ids=("web",), status="planned"), ["CHG-3"], id="combined"),
    ],
)
def test_list_changes_filters(event_store: GraphStore, filter: ChangeFilter, expected: list[str]) -> None:
    assert listed_changes(event_store, filter) == expected


def test_list_changes_since_other_offset(event_store: GraphStore) -> None:
    since = (T0 + timedelta(minutes=31)).astimezone(timezone(timedelta(hours=-5)))

    assert listed_changes(event_store, ChangeFilter(since=since)) == ["CHG-2", "CHG-3"]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        pytest.param(IncidentFilter(), ["INC-1", "INC-2", "INC-3"], id="none"),
        pytest.param(IncidentFilter(ci_ids=("db",)), ["INC-1"], id="root-cause"),
        pytest.param(IncidentFilter(ci_ids=("app", "web")), ["INC-1", "INC-2"], id="impacted"),
        pytest.param(IncidentFilter(since=T0 + timedelta(hours=1)), ["INC-1", "INC-2"], id="since-inclusive"),
        pytest.param(IncidentFilter(until=T0), ["INC-3"], id="until"),
        pytest.param(IncidentFilter(status="open"), ["INC-2"], id="status"),
        pytest.param(IncidentFilter(severity="critical"), ["INC-2"], id="severity"),
        pytest.param(IncidentFilter(caused_by_change="CHG-1"), ["INC-1"], id="caused-by"),
        pytest.param(IncidentFilter(text="TIMEOUT"), ["INC-2"], id="text-tag"),
        pytest.param(IncidentFilter(text="evictions"), ["INC-3"], id="text-symptom"),
    ],
)
def test_list_incidents_filters(event_store: GraphStore, filter: IncidentFilter, expected: list[str]) -> None:
    assert listed_incidents(event_store, filter) == expected


def test_list_changes_pages_cover_all_once(event_store: GraphStore) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = event_store.list_changes(ChangeFilter(), 3, after)
        assert page.total_count == 4
        seen.extend(item.id for item in page.items)
        if not page.has_next_page:
            break
        after = page.end_cursor

    assert seen == ["CHG-1", "CHG-2", "CHG-3", "CHG-4"]


def test_list_incidents_pages_keep_filter(event_store: GraphStore) -> None:
    first = event_store.list_incidents(IncidentFilter(ci_ids=("app", "web")), 1, None)
    second = event_store.list_incidents(IncidentFilter(ci_ids=("app", "web")), 1, first.end_cursor)

    assert [item.id for item in first.items] == ["INC-1"]
    assert [item.id for item in second.items] == ["INC-2"]
    assert (first.total_count, first.has_next_page, second.has_next_page) == (2, True, False)


@pytest.mark.parametrize("first", [pytest.param(-1, id="negative"), pytest.param(1001, id="too-large")])
def test_list_events_reject_page_size(event_store: GraphStore, first: int) -> None:
    with pytest.raises(InvalidInputError, match="request between 0 and 1000 changes per page"):
        event_store.list_changes(ChangeFilter(), first, None)
    with pytest.raises(InvalidInputError, match="request between 0 and 1000 incidents per page"):
        event_store.list_incidents(IncidentFilter(), first, None)


# Writes and the version


def test_write_events_counts_created(store: GraphStore) -> None:
    result = store.write(CIS, [], changes=LISTED_CHANGES, incidents=LISTED_INCIDENTS)

    assert result == WriteResult(cis_created=4, changes_created=4, incidents_created=3)


def test_write_identical_events_is_unchanged(event_store: GraphStore) -> None:
    before = event_store.version()

    result = event_store.write([], [], changes=LISTED_CHANGES, incidents=LISTED_INCIDENTS)

    assert result == WriteResult(changes_unchanged=4, incidents_unchanged=3)
    assert event_store.version() == before


def test_write_identical_events_in_other_offset_is_unchanged(event_store: GraphStore) -> None:
    before = event_store.version()
    shifted = [
        Change(**{**vars(item), "actual_start": item.actual_start.astimezone(timezone(timedelta(hours=9)))})
        if item.actual_start
        else item
        for item in LISTED_CHANGES
    ]

    result = event_store.write([], [], changes=shifted, batch_size=1)

    assert result == WriteResult(changes_unchanged=4)
    assert event_store.version() == before


@pytest.mark.parametrize(
    "updates",
    [
        pytest.param({"status": ChangeStatus.ROLLED_BACK}, id="status"),
        pytest.param({"actual_end": T0 + timedelta(hours=4)}, id="time"),
        pytest.param({"affected": ("db", "app")}, id="added-ci"),
        pytest.param({"affected": ("web", "app")}, id="reordered-cis"),
        pytest.param({"attributes": {"ticket": "X"}}, id="attributes"),
    ],
)
def test_write_detects_change_update(event_store: GraphStore, updates: dict[str, Any]) -> None:
    before = event_store.version()
    updated = Change(**{**vars(LISTED_CHANGES[1]), **updates})

    result = event_store.write([], [], changes=[updated])

    assert result == WriteResult(changes_updated=1)
    assert event_store.get_changes([updated.id]) == {updated.id: updated}
    assert event_store.version() > before


@pytest.mark.parametrize(
    "updates",
    [
        pytest.param({"root_causes": ("db", "app")}, id="root-causes"),
        pytest.param({"impacted": ()}, id="impacted-removed"),
        pytest.param({"caused_by_change": None}, id="cause-removed"),
        pytest.param({"caused_by_change": "CHG-2"}, id="cause-replaced"),
        pytest.param({"resolved_at": T0 + timedelta(hours=2)}, id="resolved-time"),
    ],
)
def test_write_detects_incident_update(event_store: GraphStore, updates: dict[str, Any]) -> None:
    before = event_store.version()
    updated = Incident(**{**vars(LISTED_INCIDENTS[0]), **updates})

    result = event_store.write([], [], incidents=[updated])

    assert result == WriteResult(incidents_updated=1)
    assert event_store.get_incidents([updated.id]) == {updated.id: updated}
    assert event_store.version() > before


def test_write_repeated_change_id_counts_like_sequential_writes(store: GraphStore) -> None:
    first = change("CHG-1", ("db",))
    second = Change(**{**vars(first), "status": ChangeStatus.FAILED})

    result = store.write(CIS, [], changes=[first, second, second])

    assert (result.changes_created, result.changes_updated, result.changes_unchanged) == (1, 1, 1)
    assert store.get_changes(["CHG-1"])["CHG-1"].status is ChangeStatus.FAILED


@pytest.mark.parametrize(
    ("changes", "incidents", "message"),
    [
        pytest.param([change("CHG-9", ("ghost",))], [], "'ghost'", id="change-unknown-ci"),
        pytest.param([], [incident("INC-9", T0, root_causes=("ghost",))], "'ghost'", id="incident-unknown-ci"),
        pytest.param([], [incident("INC-9", T0, caused_by_change="CHG-404")], "'CHG-404'", id="unknown-change"),
    ],
)
def test_write_rejects_event_naming_missing_record(
    store: GraphStore, changes: list[Change], incidents: list[Incident], message: str
) -> None:
    store.write(CIS, [])
    before = store.version()

    with pytest.raises(ConflictError, match=f"nothing was written: .*{message}"):
        store.write([ci("extra")], [], changes=changes, incidents=incidents)

    assert store.get_cis(["extra"]) == {}
    assert store.version() == before


def test_write_incident_with_change_of_same_write(store: GraphStore) -> None:
    result = store.write(CIS, [], changes=[FULL_CHANGE], incidents=[FULL_INCIDENT])

    assert (result.changes_created, result.incidents_created) == (1, 1)


def test_write_events_report_progress(store: GraphStore) -> None:
    calls: list[tuple[int, int]] = []

    store.write(
        CIS,
        [],
        changes=LISTED_CHANGES,
        incidents=LISTED_INCIDENTS,
        batch_size=2,
        progress=lambda d, t: calls.append((d, t)),
    )

    assert calls[-1] == (11, 11)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


# Deleting a CI that changes and incidents name


def test_delete_ci_named_by_events_needs_cascade(event_store: GraphStore) -> None:
    before = event_store.version()

    with pytest.raises(ConflictError, match="CI 'db' has 0 relationship\\(s\\) and is named by 1 change link"):
        event_store.delete_ci("db", cascade=False)

    assert set(event_store.get_cis(["db"])) == {"db"}
    assert event_store.version() == before


def test_delete_ci_cascade_keeps_events_without_link(event_store: GraphStore) -> None:
    before = event_store.version()

    result = event_store.delete_ci("web", cascade=True)

    assert result == DeleteResult(
        cis_deleted=1, relationships_deleted=0, change_links_deleted=2, incident_links_deleted=1
    )
    changes = event_store.get_changes(["CHG-2", "CHG-3"])
    assert changes["CHG-2"].affected == ("app",)
    assert changes["CHG-3"].affected == ()
    assert event_store.get_incidents(["INC-2"])["INC-2"].impacted == ()
    assert listed_changes(event_store, ChangeFilter(ci_ids=("web",))) == []
    assert event_store.version() > before


# The analysis snapshot


def test_snapshot_carries_events_and_statuses(store: GraphStore) -> None:
    store.write([ci("db", status=Status.DEGRADED), ci("app", status=Status.DOWN), ci("web")], [])
    store.write([], [], changes=[change("CHG-1", ("db",), actual_start=T0)])

    snapshot = SnapshotCache(store).snapshot()

    assert snapshot.statuses == {"db": Status.DEGRADED, "app": Status.DOWN}
    assert [c.id for c in snapshot.events.changes] == ["CHG-1"]
    assert snapshot.version == store.version()


def test_snapshot_rebuilds_when_events_change(store: GraphStore) -> None:
    store.write(CIS, [])
    cache = SnapshotCache(store)
    first = cache.snapshot()

    store.write([], [], incidents=[incident("INC-1", T0, root_causes=("db",))])
    second = cache.snapshot()

    assert first.events.incidents == ()
    assert [i.id for i in second.events.incidents] == ["INC-1"]
    assert cache.snapshot() is second
