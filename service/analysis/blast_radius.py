"""Blast radius: what else is hurt when some CIs fail.

Semantics, for failed CIs F on a ``Topology`` in impact direction:

* A CI is *reached* when an impact edge path leads to it from F, using only
  followed edges (of the requested relationship types, valid at ``as_of``)
  and at most ``max_depth`` edges. Every reached CI is impacted; cycles are
  visited once.
* Each impacted CI gets the worst impact that any rule gives it, over its
  providers within the reached set (the least fixpoint of the rules):

  - hard edge: the provider's impact, unchanged;
  - soft edge: one level weaker (DOWN gives DEGRADED, DEGRADED and AT_RISK
    give AT_RISK), so soft dependencies never make a CI DOWN;
  - redundancy group of n providers needing k: when at least one member is
    DOWN and fewer than k remain (providers DOWN counted among followed
    edges), DOWN for a hard group and DEGRADED for a soft one. Otherwise a
    DOWN or DEGRADED member gives DEGRADED (hard) or AT_RISK (soft), and an
    AT_RISK member gives AT_RISK. A group that was short of its minimum
    before the failure (k above the members that exist at ``as_of``) is
    therefore not blamed on the failure until one of its members is DOWN.

* Distance is the number of edges on a shortest path from F; ``path`` is one
  such shortest path.

Providers beyond ``max_depth`` are not considered, so a CI near the limit can
show a lower impact than the unlimited radius gives it.

The computation is three or four level-synchronous breadth-first passes over
the reached edges, O(n + m) for n reached CIs and m reached edges, plus one
pass per redundancy group that falls below its minimum.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from service.analysis.topology import RELATIONSHIP_TYPES, Topology


class Impact(enum.IntEnum):
    """Impact levels, ordered so that a larger value is worse."""

    AT_RISK = 1
    DEGRADED = 2
    DOWN = 3


@dataclass(frozen=True)
class BlastRadiusOptions:
    max_depth: int | None = None
    relationship_types: Sequence[str] | None = None
    limit: int | None = None
    as_of: datetime | None = None


@dataclass(frozen=True)
class ImpactSummary:
    """Exact counts over all impacted CIs, even when the listing is truncated."""

    total: int
    by_impact: dict[Impact, int]
    by_type: dict[str, int]


@dataclass(frozen=True)
class BlastRadius:
    """Result of ``blast_radius``; CIs are node indices of the topology.

    ``impacted``, ``impact`` and ``distance`` are parallel arrays ordered by
    impact (worst first), then distance, then id, and cut at the limit.
    ``predecessor`` has one entry per topology node: the previous node on the
    explaining path, -1 for failed and unreached nodes. ``reached`` marks the
    failed and all impacted CIs, including those cut off by the limit.
    ``followed`` marks the edges (provider CSR positions) the walk may use,
    None when it may use all. ``level`` has one entry per topology node: the
    ``Impact`` value of every impacted CI, even one cut off by the limit, and 0
    elsewhere.
    """

    failed: np.ndarray
    impacted: np.ndarray
    impact: np.ndarray
    distance: np.ndarray
    predecessor: np.ndarray
    reached: np.ndarray
    followed: np.ndarray | None
    level: np.ndarray
    truncated: bool
    summary: ImpactSummary


def blast_radius(
    topology: Topology, failed_ids: Sequence[str], options: BlastRadiusOptions | None = None
) -> BlastRadius:
    """Compute the blast radius of the failed CIs.

    Args:
        topology: snapshot in impact direction.
        failed_ids: ids of the CIs that failed; each must be in the topology.
        options: depth limit, relationship types to follow, result limit and
            the moment whose validity bounds apply.

    Returns:
        The impacted CIs with impact, distance and predecessors.

    Raises:
        KeyError: a failed id is not in the topology.
        ValueError: an unknown relationship type, or a negative depth or limit.

    Example:
        >>> radius = blast_radius(topology, ["db-1"], BlastRadiusOptions(max_depth=2))
        >>> [topology.ids[i] for i in radius.impacted]
        ['app-1', 'web-1']
    """
    options = options or BlastRadiusOptions()
    if options.max_depth is not None and options.max_depth < 0:
        raise ValueError(f"max_depth {options.max_depth} is negative; pass 0 or more, or omit it")
    if options.limit is not None and options.limit < 0:
        raise ValueError(f"limit {options.limit} is negative; pass 0 or more, or omit it")
    failed = np.array(sorted({topology.index[ci_id] for ci_id in failed_ids}), dtype=np.int64)
    followed, present = _followed_edges(topology, options)

    distance, predecessor = _breadth_first(topology, failed, followed, None, options.max_depth)
    reached = distance >= 0
    groups = _GroupState(topology, followed, present)
    down = _down_closure(topology, failed, followed, reached, groups)
    degraded_or_worse = _degraded_closure(topology, down, followed, reached, groups)

    impacted_mask = reached.copy()
    impacted_mask[failed] = False
    nodes = np.flatnonzero(impacted_mask)
    impact = np.full(len(nodes), Impact.AT_RISK, dtype=np.int8)
    impact[degraded_or_worse[nodes]] = Impact.DEGRADED
    impact[down[nodes]] = Impact.DOWN
    node_distance = distance[nodes]
    level = np.zeros(topology.node_count, dtype=np.int8)
    level[nodes] = impact

    order = np.lexsort((topology.id_rank[nodes], node_distance, -impact))
    nodes, impact, node_distance = nodes[order], impact[order], node_distance[order]
    summary = _summarize(topology, nodes, impact)
    truncated = options.limit is not None and len(nodes) > options.limit
    if truncated:
        nodes, impact, node_distance = (a[: options.limit] for a in (nodes, impact, node_distance))

    return BlastRadius(
        failed=failed,
        impacted=nodes,
        impact=impact,
        distance=node_distance,
        predecessor=predecessor,
        reached=reached,
        followed=followed,
        level=level,
        truncated=truncated,
        summary=summary,
    )


def path_to(radius: BlastRadius, node: int) -> list[int]:
    """Return the explaining path from a failed CI to ``node``, both ends included."""
    path = [node]
    while radius.predecessor[path[-1]] >= 0:
        path.append(int(radius.predecessor[path[-1]]))
    path.reverse()
    return path


def _followed_edges(
    topology: Topology, options: BlastRadiusOptions
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return masks of the edges the walk may use and of the edges that exist at ``as_of``.

    Either mask is None when it would be all true.
    """
    present = topology.edge_valid_at(options.as_of)
    if present is not None:
        node_valid = topology.node_valid_at(options.as_of)
        assert node_valid is not None
        # A relationship to or from a CI that does not exist at that moment does not exist either.
        present &= node_valid[topology.provider] & node_valid[topology.consumer]

    if options.relationship_types is None:
        return present, present
    unknown = sorted(set(options.relationship_types) - set(RELATIONSHIP_TYPES))
    if unknown:
        raise ValueError(
            f"unknown relationship type(s) {', '.join(unknown)}; "
            f"use any of {', '.join(RELATIONSHIP_TYPES)}"
        )
    codes = [RELATIONSHIP_TYPES.index(name) for name in options.relationship_types]
    followed = np.isin(topology.edge_type, codes)
    if present is not None:
        followed &= present
    return followed, present


def _expand(topology: Topology, frontier: np.ndarray) -> np.ndarray:
    """Return the provider-CSR positions of every edge leaving the frontier nodes."""
    starts = topology.indptr[frontier]
    counts = topology.indptr[frontier + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total, dtype=np.int64)


def _first_occurrences(values: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Return a mask keeping the first occurrence of each value, in O(len(values))."""
    positions = np.arange(len(values), dtype=np.int64)
    # With repeated indices the last assignment wins, so writing in reverse
    # leaves each node's first position behind.
    scratch[values[::-1]] = positions[::-1]
    return scratch[values] == positions


def _breadth_first(
    topology: Topology,
    sources: np.ndarray,
    edge_mask: np.ndarray | None,
    node_mask: np.ndarray | None,
    max_depth: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Walk impact edges from the sources; return distance (-1 unreached) and predecessor."""
    distance = np.full(topology.node_count, -1, dtype=np.int64)
    predecessor = np.full(topology.node_count, -1, dtype=np.int64)
    scratch = np.empty(topology.node_count, dtype=np.int64)
    distance[sources] = 0
    frontier = sources
    depth = 0
    while len(frontier) and (max_depth is None or depth < max_depth):
        edges = _expand(topology, frontier)
        if edge_mask is not None:
            edges = edges[edge_mask[edges]]
        consumers = topology.consumer[edges]
        fresh = distance[consumers] < 0
        if node_mask is not None:
            fresh &= node_mask[consumers]
        edges, consumers = edges[fresh], consumers[fresh]
        first = _first_occurrences(consumers, scratch)
        edges, consumers = edges[first], consumers[first]
        depth += 1
        distance[consumers] = depth
        predecessor[consumers] = topology.provider[edges]
        frontier = consumers
    return distance, predecessor


def _closure(
    topology: Topology, seeds: np.ndarray, edge_mask: np.ndarray, reached: np.ndarray
) -> np.ndarray:
    distance, _ = _breadth_first(topology, seeds, edge_mask, reached, None)
    return distance >= 0


class _GroupState:
    """Redundancy groups as seen by one walk.

    A group's size counts the members that exist at ``as_of``. Members whose
    relationship type is not followed are counted as up.
    """

    def __init__(
        self, topology: Topology, followed: np.ndarray | None, present: np.ndarray | None
    ) -> None:
        self.topology = topology
        count = len(topology.group_consumer)
        members = topology.group_edges
        if present is not None:
            members = members[present[members]]
        self.size = np.bincount(topology.edge_group[members], minlength=count)
        self.required = topology.group_required(self.size)
        self.followed_members = members if followed is None else members[followed[members]]

    def below_minimum(self, down: np.ndarray) -> np.ndarray:
        """Return a mask of groups that a DOWN member leaves with fewer providers up than they require.

        A group that is short of its minimum while none of its followed members
        is DOWN is not counted: the failure did not cause that shortfall.
        """
        topology = self.topology
        members_down = self.followed_members[down[topology.provider[self.followed_members]]]
        down_count = np.bincount(topology.edge_group[members_down], minlength=len(self.size))
        return (down_count > 0) & ((self.size - down_count) < self.required)


def _down_closure(
    topology: Topology,
    failed: np.ndarray,
    followed: np.ndarray | None,
    reached: np.ndarray,
    groups: _GroupState,
) -> np.ndarray:
    """Return the mask of DOWN nodes: hard non-redundant closure plus hard groups below minimum."""
    plain_hard = topology.edge_hard & (topology.edge_group < 0)
    if followed is not None:
        plain_hard &= followed
    down = _closure(topology, failed, plain_hard, reached)
    if len(topology.group_consumer) == 0:
        return down

    # Each round adds the consumers of newly failed hard groups and everything
    # they take down; the number of rounds is at most the number of groups.
    while True:
        below = groups.below_minimum(down)
        consumers = topology.group_consumer[below & topology.group_hard]
        consumers = consumers[reached[consumers] & ~down[consumers]]
        if len(consumers) == 0:
            return down
        down |= _closure(topology, np.unique(consumers), plain_hard, reached)


def _degraded_closure(
    topology: Topology,
    down: np.ndarray,
    followed: np.ndarray | None,
    reached: np.ndarray,
    groups: _GroupState,
) -> np.ndarray:
    """Return the mask of nodes that are DEGRADED or worse."""
    usable = np.ones(topology.edge_count, dtype=bool) if followed is None else followed
    plain = topology.edge_group < 0
    hard = topology.edge_hard

    # Seeds: DOWN nodes, consumers of soft edges from DOWN providers, consumers
    # of hard redundant edges from DOWN providers, and soft groups below minimum.
    from_down = usable & down[topology.provider]
    seed_edges = from_down & ((plain & ~hard) | (~plain & hard))
    seeds = [np.flatnonzero(down), topology.consumer[seed_edges]]
    if len(topology.group_consumer):
        below = groups.below_minimum(down)
        seeds.append(topology.group_consumer[below & ~topology.group_hard])
    seed_nodes = np.unique(np.concatenate(seeds))
    seed_nodes = seed_nodes[reached[seed_nodes]]

    # From a DEGRADED node, hard edges (redundant or not) pass DEGRADED on.
    return _closure(topology, seed_nodes, usable & hard, reached)


def _summarize(topology: Topology, nodes: np.ndarray, impact: np.ndarray) -> ImpactSummary:
    by_impact = {level: int(np.count_nonzero(impact == level)) for level in Impact}
    type_counts = np.bincount(topology.node_type[nodes], minlength=len(topology.type_names))
    by_type = {
        topology.type_names[code]: int(count) for code, count in enumerate(type_counts) if count
    }
    return ImpactSummary(total=len(nodes), by_impact=by_impact, by_type=by_type)


def business_services_reached(topology: Topology, radius: BlastRadius) -> dict[int, np.ndarray]:
    """Return, for each impacted business service or transaction, the reached CIs that lead to it.

    A CI leads to a business CI when an impact path inside the radius runs from
    the CI to it. The business CI itself is not counted among its own CIs.
    Runs one backward closure per impacted business CI, O(b * m) for b business
    CIs and m reached edges.
    """
    business = np.flatnonzero(topology.is_business & radius.reached)
    business = business[~np.isin(business, radius.failed)]
    usable = np.ones(topology.edge_count, dtype=bool) if radius.followed is None else radius.followed
    reverse_usable = usable[topology.reverse_edge]
    result: dict[int, np.ndarray] = {}
    for node in business:
        ancestors = _backward_closure(topology, int(node), reverse_usable, radius.reached)
        ancestors[node] = False
        result[int(node)] = np.flatnonzero(ancestors)
    return result


def _backward_closure(
    topology: Topology, start: int, reverse_usable: np.ndarray, reached: np.ndarray
) -> np.ndarray:
    seen = np.zeros(topology.node_count, dtype=bool)
    seen[start] = True
    frontier = np.array([start], dtype=np.int64)
    while len(frontier):
        starts = topology.reverse_indptr[frontier]
        counts = topology.reverse_indptr[frontier + 1] - starts
        total = int(counts.sum())
        if total == 0:
            break
        offsets = np.cumsum(counts) - counts
        positions = np.repeat(starts - offsets, counts) + np.arange(total, dtype=np.int64)
        positions = positions[reverse_usable[positions]]
        providers = topology.reverse_provider[positions]
        providers = providers[reached[providers] & ~seen[providers]]
        providers = np.unique(providers)
        seen[providers] = True
        frontier = providers
    return seen
