"""Keeps the topology snapshot current with the store's version counter."""

from __future__ import annotations

import logging
import threading
import time

from service.analysis.topology import Topology, build_topology
from service.store.base import GraphStore

logger = logging.getLogger(__name__)


class SnapshotCache:
    """Hands out the current ``Topology``, rebuilding it when the store's version changes.

    One version query per call detects a stale snapshot, so a
    replica sees another replica's writes on its next request. Concurrent
    callers share one rebuild.
    """

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self._topology: Topology | None = None
        self._lock = threading.Lock()

    def current(self) -> Topology:
        version = self._store.version()
        topology = self._topology
        if topology is not None and topology.version == version:
            return topology
        with self._lock:
            topology = self._topology
            if topology is not None and topology.version == version:
                return topology
            started = time.perf_counter()
            # TODO: rebuilds are whole-graph; on a million relationships each write
            # costs seconds of rebuild on the next query.
            topology = build_topology(self._store.load_topology())
            self._topology = topology
            logger.info(
                "topology snapshot version %d built: %d CIs, %d relationships in %.2f s",
                topology.version,
                topology.node_count,
                topology.edge_count,
                time.perf_counter() - started,
            )
            return topology
