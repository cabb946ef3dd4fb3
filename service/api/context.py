"""Resolver context: the store, the snapshot cache and per-request loaders."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import anyio.to_thread
from strawberry.dataloader import DataLoader

from service.config import Settings
from service.model import CI, Change, Incident
from service.snapshot import Snapshot, SnapshotCache
from service.store.base import ChangeFilter, GraphStore, IncidentFilter

T = TypeVar("T")

# Page size of the listings that the per-CI loaders read, the maximum a store accepts.
_LOADER_PAGE = 1000

ChangesOfCIKey = tuple[str, datetime | None, datetime | None]
"""A CI id with the ``since`` and ``until`` of a ``CI.changes`` field."""


@dataclass
class Services:
    """Long-lived objects shared by all requests."""

    store: GraphStore
    snapshots: SnapshotCache
    settings: Settings


async def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking store or analysis call in a worker thread, off the event loop."""
    return await anyio.to_thread.run_sync(function, *args)


def all_changes(store: GraphStore, filter: ChangeFilter) -> list[Change]:
    """Return every change that meets the filter, reading page after page."""
    found: list[Change] = []
    after = None
    while True:
        page = store.list_changes(filter, _LOADER_PAGE, after)
        found.extend(page.items)
        if not page.has_next_page:
            return found
        after = page.end_cursor


def all_incidents(store: GraphStore, filter: IncidentFilter) -> list[Incident]:
    """Return every incident that meets the filter, reading page after page."""
    found: list[Incident] = []
    after = None
    while True:
        page = store.list_incidents(filter, _LOADER_PAGE, after)
        found.extend(page.items)
        if not page.has_next_page:
            return found
        after = page.end_cursor


def _newest_first(change: Change) -> tuple[bool, float, str]:
    start = change.actual_start or change.planned_start
    return (start is None, -start.timestamp() if start else 0.0, change.id)


def _started_newest_first(incident: Incident) -> tuple[float, str]:
    return (-incident.started_at.timestamp(), incident.id)


@dataclass
class RequestContext:
    services: Services
    ci_loader: DataLoader[str, CI | None] = field(init=False)
    change_loader: DataLoader[str, Change | None] = field(init=False)
    incident_loader: DataLoader[str, Incident | None] = field(init=False)
    changes_of_ci_loader: DataLoader[ChangesOfCIKey, list[Change]] = field(init=False)
    incidents_of_ci_loader: DataLoader[str, list[Incident]] = field(init=False)
    incidents_of_change_loader: DataLoader[str, list[Incident]] = field(init=False)
    _snapshot: Snapshot | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        store = self.services.store

        async def load_cis(ids: Sequence[str]) -> list[CI | None]:
            found = await run_blocking(store.get_cis, list(ids))
            return [found.get(ci_id) for ci_id in ids]

        async def load_changes(ids: Sequence[str]) -> list[Change | None]:
            found = await run_blocking(store.get_changes, list(ids))
            return [found.get(change_id) for change_id in ids]

        async def load_incidents(ids: Sequence[str]) -> list[Incident | None]:
            found = await run_blocking(store.get_incidents, list(ids))
            return [found.get(incident_id) for incident_id in ids]

        async def load_changes_of_cis(keys: Sequence[ChangesOfCIKey]) -> list[list[Change]]:
            # One listing per distinct (since, until), then each change goes to the requested CIs it affects.
            by_window: dict[tuple[datetime | None, datetime | None], list[str]] = defaultdict(list)
            for ci_id, since, until in keys:
                by_window[(since, until)].append(ci_id)
            found: dict[ChangesOfCIKey, list[Change]] = defaultdict(list)
            for (since, until), ci_ids in by_window.items():
                condition = ChangeFilter(ci_ids=tuple(dict.fromkeys(ci_ids)), since=since, until=until)
                wanted = set(ci_ids)
                for change in await run_blocking(all_changes, store, condition):
                    for ci_id in dict.fromkeys(change.affected):
                        if ci_id in wanted:
                            found[(ci_id, since, until)].append(change)
            return [sorted(found.get(key, []), key=_newest_first) for key in keys]

        async def load_incidents_of_cis(ci_ids: Sequence[str]) -> list[list[Incident]]:
            wanted = set(ci_ids)
            found: dict[str, list[Incident]] = defaultdict(list)
            for incident in await run_blocking(all_incidents, store, IncidentFilter(ci_ids=tuple(wanted))):
                for ci_id in dict.fromkeys((*incident.impacted, *incident.root_causes)):
                    if ci_id in wanted:
                        found[ci_id].append(incident)
            return [sorted(found.get(ci_id, []), key=_started_newest_first) for ci_id in ci_ids]

        async def load_incidents_of_changes(change_ids: Sequence[str]) -> list[list[Incident]]:
            result = []
            for change_id in change_ids:
                condition = IncidentFilter(caused_by_change=change_id)
                result.append(await run_blocking(all_incidents, store, condition))
            return result

        self.ci_loader = DataLoader(load_fn=load_cis)
        self.change_loader = DataLoader(load_fn=load_changes)
        self.incident_loader = DataLoader(load_fn=load_incidents)
        self.changes_of_ci_loader = DataLoader(load_fn=load_changes_of_cis)
        self.incidents_of_ci_loader = DataLoader(load_fn=load_incidents_of_cis)
        self.incidents_of_change_loader = DataLoader(load_fn=load_incidents_of_changes)

    @property
    def store(self) -> GraphStore:
        return self.services.store

    async def snapshot(self) -> Snapshot:
        """Return the snapshot of this request, checking the store's version once per request.

        Fields resolved for many entries (the procedures of a thousand
        blast-radius entries) then read one snapshot instead of querying the
        version a thousand times.
        """
        if self._snapshot is None:
            self._snapshot = await run_blocking(self.services.snapshots.snapshot)
        return self._snapshot
