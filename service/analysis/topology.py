"""The in-memory topology snapshot that every analysis runs on.

Relationships are turned into *impact edges* that point from provider to
consumer, then packed into compressed sparse row (CSR) arrays: the consumers
of provider ``p`` are ``consumer[indptr[p]:indptr[p + 1]]``. A second CSR
contains the same edges grouped by consumer, and scipy CSR copies of the edges
let unfiltered walks run in ``scipy.sparse.csgraph``. Building is
O(n + m log m) for n CIs and m relationships. The arrays take about 100 bytes
per relationship: 98 MB for the generated graph of a million relationships in
``bench/``, plus the CI ids and their index as Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from functools import cached_property

import numpy as np
from scipy.sparse import csr_array

from service.model import BUSINESS_TYPES, RelationshipType
from service.store.base import TopologyData

RELATIONSHIP_TYPES: tuple[str, ...] = tuple(t.value for t in RelationshipType)
_PROVIDER_IS_SOURCE = np.array([RelationshipType(t).provider_is_source for t in RELATIONSHIP_TYPES])


@dataclass(frozen=True)
class Topology:
    """Immutable CSR form of the CI graph in impact direction (provider to consumer).

    ``node_status`` holds each CI's recorded status as its position in
    ``service.store.base.STATUS_CODES``. Edge attributes (``edge_*``) are
    indexed by position in the provider CSR.
    ``reverse_edge`` maps a position of the consumer CSR to the same edge's
    position in the provider CSR.
    """

    version: int
    ids: list[str]
    index: dict[str, int]
    type_names: list[str]
    node_type: np.ndarray
    is_business: np.ndarray
    id_rank: np.ndarray
    node_valid_from: np.ndarray
    node_valid_until: np.ndarray
    node_status: np.ndarray
    indptr: np.ndarray
    consumer: np.ndarray
    provider: np.ndarray
    edge_type: np.ndarray
    edge_hard: np.ndarray
    edge_group: np.ndarray
    edge_valid_from: np.ndarray
    edge_valid_until: np.ndarray
    reverse_indptr: np.ndarray
    reverse_provider: np.ndarray
    reverse_edge: np.ndarray
    group_consumer: np.ndarray
    group_hard: np.ndarray
    group_min_available: np.ndarray
    group_min_percent: np.ndarray
    group_edges: np.ndarray
    has_validity: bool

    @property
    def node_count(self) -> int:
        return len(self.ids)

    @property
    def edge_count(self) -> int:
        return len(self.consumer)

    def group_required(self, group_size: np.ndarray) -> np.ndarray:
        """Return how many providers each redundancy group needs, given its current size."""
        required = np.where(
            np.isnan(self.group_min_available),
            np.ceil(np.round(group_size * np.nan_to_num(self.group_min_percent) / 100.0, 2)),
            self.group_min_available,
        )
        return required.astype(np.int64)

    def node_valid_at(self, moment: datetime | None) -> np.ndarray | None:
        """Return a mask of CIs that exist at ``moment``, or None when all of them do."""
        if not self.has_validity or moment is None:
            return None
        return _valid_at(self.node_valid_from, self.node_valid_until, moment.timestamp())

    def edge_valid_at(self, moment: datetime | None) -> np.ndarray | None:
        if not self.has_validity or moment is None:
            return None
        return _valid_at(self.edge_valid_from, self.edge_valid_until, moment.timestamp())

    # Derived arrays that every unfiltered walk needs. They are computed once
    # per snapshot (``build_topology`` fills them) instead of once per query.

    @cached_property
    def plain_hard(self) -> np.ndarray:
        """Mask of hard edges outside any redundancy group, which pass DOWN on unchanged."""
        return self.edge_hard & (self.edge_group < 0)

    @cached_property
    def plain_soft_or_grouped_hard(self) -> np.ndarray:
        """Mask of the edges that make the consumer of a DOWN provider at least DEGRADED."""
        return (self.edge_group < 0) != self.edge_hard

    @cached_property
    def group_size(self) -> np.ndarray:
        """Number of member edges of each redundancy group, validity bounds ignored."""
        return np.bincount(self.edge_group[self.group_edges], minlength=len(self.group_consumer))

    @cached_property
    def group_required_all(self) -> np.ndarray:
        """``group_required(group_size)``: providers each group needs when all members exist."""
        return self.group_required(self.group_size)

    @cached_property
    def walk_weights(self) -> np.ndarray:
        """Edge weights (all 1) shared by the ``ImpactGraph`` views, with room for one extra row."""
        return np.ones(self.edge_count + self.node_count + 1, dtype=np.float64)

    @cached_property
    def impact_graph(self) -> ImpactGraph:
        """All impact edges in compiled-walk form."""
        return ImpactGraph.from_edges(self, None)

    @cached_property
    def plain_hard_graph(self) -> ImpactGraph:
        return ImpactGraph.from_edges(self, self.plain_hard)

    @cached_property
    def hard_graph(self) -> ImpactGraph:
        return ImpactGraph.from_edges(self, self.edge_hard)


@dataclass(frozen=True)
class ImpactGraph:
    """A subset of the impact edges as a scipy CSR matrix, for walks in ``scipy.sparse.csgraph``.

    ``weights`` is longer than the matrix needs: a walk from several sources
    appends one extra row (a virtual source linked to all of them) and takes
    its weights as a view, so it copies only the index arrays.
    """

    matrix: csr_array
    weights: np.ndarray

    @classmethod
    def from_edges(cls, topology: Topology, mask: np.ndarray | None) -> ImpactGraph:
        node_count = topology.node_count
        if mask is None:
            consumer, indptr = topology.consumer, topology.indptr
        else:
            consumer = topology.consumer[mask]
            indptr = _indptr(topology.provider[mask], node_count)
        # NOTE: scipy's csgraph routines index with int32, so a snapshot is
        # limited to 2**31 - 1 relationships.
        weights = topology.walk_weights
        matrix = csr_array(
            (weights[: len(consumer)], consumer.astype(np.int32), indptr.astype(np.int32)),
            shape=(node_count, node_count),
        )
        return cls(matrix=matrix, weights=weights)

    def with_source_row(self, sources: np.ndarray) -> csr_array:
        """Return the matrix with one more node whose consumers are ``sources``, in that order."""
        node_count = self.matrix.shape[0]
        indices = np.concatenate([self.matrix.indices, sources.astype(np.int32)])
        indptr = np.append(self.matrix.indptr, np.int32(len(indices)))
        return csr_array(
            (self.weights[: len(indices)], indices, indptr), shape=(node_count + 1, node_count + 1)
        )


def edge_positions(indptr: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Return the CSR positions of every edge of the given nodes."""
    starts = indptr[nodes]
    counts = indptr[nodes + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total, dtype=np.int64)


def _valid_at(valid_from: np.ndarray, valid_until: np.ndarray, moment: float) -> np.ndarray:
    started = np.isnan(valid_from) | (valid_from <= moment)
    not_ended = np.isnan(valid_until) | (moment < valid_until)
    return started & not_ended


def _in_id_order(data: TopologyData) -> TopologyData:
    """Return the topology with nodes numbered in id order, whatever order the store used.

    Where several shortest paths exist, the walk keeps the one through the
    lowest node numbers, so numbering by id makes every store explain an
    impact by the same path.
    """
    order = np.argsort(np.array(data.ids, dtype=object), kind="stable")
    if np.array_equal(order, np.arange(len(order))):
        return data
    new_index = np.empty(len(order), dtype=np.int64)
    new_index[order] = np.arange(len(order))
    permuted: dict[str, object] = {
        "ids": [data.ids[i] for i in order],
        "types": [data.types[i] for i in order],
        "edge_source": new_index[np.asarray(data.edge_source, dtype=np.int64)],
        "edge_target": new_index[np.asarray(data.edge_target, dtype=np.int64)],
    }
    for item in fields(data):
        if item.name.startswith("node_"):
            permuted[item.name] = np.asarray(getattr(data, item.name))[order]
    return replace(data, **permuted)


def build_topology(data: TopologyData) -> Topology:
    """Build the impact-direction CSR snapshot from the store's bulk topology."""
    data = _in_id_order(data)
    node_count = len(data.ids)
    type_names, node_type = np.unique(np.array(data.types, dtype=object), return_inverse=True)
    type_names_list = [str(name) for name in type_names]
    business_codes = [i for i, name in enumerate(type_names_list) if name in BUSINESS_TYPES]
    is_business = np.isin(node_type, business_codes)
    id_rank = np.empty(node_count, dtype=np.int64)
    id_rank[np.argsort(np.array(data.ids, dtype=object), kind="stable")] = np.arange(node_count)

    type_code = _type_codes(data.edge_type)
    source = np.asarray(data.edge_source, dtype=np.int64)
    target = np.asarray(data.edge_target, dtype=np.int64)
    provider_is_source = _PROVIDER_IS_SOURCE[type_code]
    provider = np.where(provider_is_source, source, target)
    consumer = np.where(provider_is_source, target, source)

    group_of_edge, groups = _redundancy_groups(data, consumer)

    order = np.lexsort((consumer, provider))
    indptr = _indptr(provider[order], node_count)
    reverse_order = np.lexsort((provider[order], consumer[order]))
    reverse_indptr = _indptr(consumer[order][reverse_order], node_count)

    edge_group = group_of_edge[order]
    group_edges = np.flatnonzero(edge_group >= 0)
    has_validity = bool(
        np.isfinite(data.node_valid_from).any()
        or np.isfinite(data.node_valid_until).any()
        or np.isfinite(data.edge_valid_from).any()
        or np.isfinite(data.edge_valid_until).any()
    )
    topology = Topology(
        version=data.version,
        ids=list(data.ids),
        index={ci_id: i for i, ci_id in enumerate(data.ids)},
        type_names=type_names_list,
        node_type=node_type.astype(np.int32),
        is_business=is_business,
        id_rank=id_rank,
        node_valid_from=np.asarray(data.node_valid_from, dtype=np.float64),
        node_valid_until=np.asarray(data.node_valid_until, dtype=np.float64),
        node_status=np.asarray(data.node_status, dtype=np.int8),
        indptr=indptr,
        consumer=consumer[order],
        provider=provider[order],
        edge_type=type_code[order],
        edge_hard=np.asarray(data.edge_hard, dtype=bool)[order],
        edge_group=edge_group,
        edge_valid_from=np.asarray(data.edge_valid_from, dtype=np.float64)[order],
        edge_valid_until=np.asarray(data.edge_valid_until, dtype=np.float64)[order],
        reverse_indptr=reverse_indptr,
        reverse_provider=provider[order][reverse_order],
        reverse_edge=reverse_order,
        group_consumer=groups["consumer"],
        group_hard=groups["hard"],
        group_min_available=groups["min_available"],
        group_min_percent=groups["min_percent"],
        group_edges=group_edges,
        has_validity=has_validity,
    )
    # Fill the per-snapshot caches now, so that the first query does not pay for them.
    for name in ("plain_hard", "plain_soft_or_grouped_hard", "group_required_all", "impact_graph",
                 "plain_hard_graph", "hard_graph"):
        getattr(topology, name)
    return topology


def _type_codes(edge_type: list[str] | np.ndarray) -> np.ndarray:
    if isinstance(edge_type, np.ndarray) and edge_type.dtype.kind in "iu":
        return edge_type.astype(np.int8)
    lookup = {name: code for code, name in enumerate(RELATIONSHIP_TYPES)}
    return np.fromiter((lookup[name] for name in edge_type), dtype=np.int8, count=len(edge_type))


def _indptr(sorted_keys: np.ndarray, node_count: int) -> np.ndarray:
    counts = np.bincount(sorted_keys, minlength=node_count)
    indptr = np.zeros(node_count + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr


def _redundancy_groups(data: TopologyData, consumer: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Number the redundancy groups; a group is identified by (consumer, group name).

    Groups are numbered in the order of their first edge, and take their
    strength and minimum from that edge.
    """
    group_of_edge = np.full(len(consumer), -1, dtype=np.int64)
    name_codes: dict[str, int] = {}
    members = [(edge, name_codes.setdefault(name, len(name_codes)))
               for edge, name in enumerate(data.edge_group) if name is not None]
    edges = np.array([edge for edge, _ in members], dtype=np.int64)
    codes = np.array([code for _, code in members], dtype=np.int64)
    keys = consumer[edges] * max(len(name_codes), 1) + codes
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    by_first_edge = np.argsort(first, kind="stable")
    number = np.empty(len(first), dtype=np.int64)
    number[by_first_edge] = np.arange(len(first))
    group_of_edge[edges] = number[inverse.reshape(-1)]
    first_edges = edges[first[by_first_edge]]
    groups = {
        "consumer": consumer[first_edges].astype(np.int64),
        "hard": np.asarray(data.edge_hard, dtype=bool)[first_edges],
        "min_available": np.asarray(data.edge_min_available, dtype=np.float64)[first_edges],
        "min_percent": np.asarray(data.edge_min_percent, dtype=np.float64)[first_edges],
    }
    return group_of_edge, groups

