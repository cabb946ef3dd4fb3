"""Keeps the analysis snapshot (topology, changes, incidents, procedures) current with the store's version counter."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from service.analysis.events import EventIndex, build_event_index
from service.analysis.procedures import ProcedureIndex
from service.analysis.topology import Topology, build_topology
from service.model import Status
from service.store.base import STATUS_CODES, GraphStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Everything the analyses read, taken from one store version.

    ``statuses`` maps each CI whose recorded status is not operational to
    that status, which is the form ``likely_culprits`` takes.
    """

    version: int
    topology: Topology
    events: EventIndex
    statuses: dict[str, Status]
    plan: ProcedureIndex


def recorded_statuses(topology: Topology) -> dict[str, Status]:
    """Return the status of every CI of the snapshot that is not operational."""
    return {
        topology.ids[node]: STATUS_CODES[topology.node_status[node]]
        for node in np.flatnonzero(topology.node_status).tolist()
    }


class SnapshotCache:
    """Hands out the current ``Snapshot``, rebuilding it when the store's version changes.

    One version query per call detects a stale snapshot, so a
    replica sees another replica's writes on its next request. Concurrent
    callers share one rebuild.
    """

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def current(self) -> Topology:
        """Return the current topology."""
        return self.snapshot().topology

    def snapshot(self) -> Snapshot:
        version = self._store.version()
        snapshot = self._snapshot
        if snapshot is not None and snapshot.version == version:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and snapshot.version == version:
                return snapshot
            started = time.perf_counter()
            # TODO: rebuilds are whole-graph, and a change or incident bumps the
            # same version as the topology. On a million relationships, each
            # write costs seconds of rebuild on the next query.
            data = self._store.load_topology()
            events_version, changes, incidents = self._store.load_events()
            plan_version, procedures = self._store.load_procedures()
            topology = build_topology(data)
            events = build_event_index(changes, incidents)
            # The topology, the events and the procedures are read in three
            # transactions. When a write commits between them, the snapshot
            # keeps the oldest version, so the next call finds a newer one and
            # rebuilds.
            snapshot = Snapshot(
                version=min(topology.version, events_version, plan_version),
                topology=topology,
                events=events,
                statuses=recorded_statuses(topology),
                plan=ProcedureIndex(procedures, topology),
            )
            self._snapshot = snapshot
            logger.info(
                "snapshot version %d built: %d CIs, %d relationships, %d changes, %d incidents, "
                "%d procedures in %.2f s",
                snapshot.version,
                topology.node_count,
                topology.edge_count,
                len(events.changes),
                len(events.incidents),
                len(procedures),
                time.perf_counter() - started,
            )
            return snapshot
