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

The computation is three or four breadth-first passes over the reached edges,
O(n + m) for n reached CIs and m reached edges, plus one pass per redundancy
group that falls below its minimum. Every query also costs O(N) for the N CIs
of the topology, to allocate its per-CI arrays. A walk that follows every
relationship type at any depth and moment runs in ``scipy.sparse.csgraph``;
the others are level-synchronous passes in numpy.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy.sparse.csgraph import breadth_first_order

from service.analysis.topology import RELATIONSHIP_TYPES, ImpactGraph, Topology


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

    # Unfiltered walks run in compiled code. The closures stay inside the
    # reached CIs by themselves then, because every edge is followed.
    compiled = followed is None and options.max_depth is None and len(failed) > 0
    if compiled:
        distance, predecessor = _compiled_breadth_first(topology.impact_graph, failed, topology.node_count)
    else:
        distance, predecessor = _breadth_first(topology, failed, followed, None, options.max_depth)
    reached = distance >= 0
    walk = _Walk(topology, followed, reached, compiled and _large_radius(topology, reached))
    groups = _GroupState(topology, followed, present)
    down = _down_closure(walk, failed, groups)
    degraded_or_worse = _degraded_closure(walk, down, groups)

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


def _compiled_breadth_first(
    graph: ImpactGraph, sources: np.ndarray, node_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Do what ``_breadth_first`` does without masks or depth limit, in ``scipy.sparse.csgraph``.

    scipy's queue-based walk takes the sources in order, then each node's
    consumers in CSR order, as the level-synchronous walk does, so both give
    every node the same predecessor.
    """
    if len(sources) == 1:
        order, parents = breadth_first_order(graph.matrix, int(sources[0]), return_predecessors=True)
        roots = 1
    else:
        # A virtual node whose consumers are the sources starts the walk, one level above them.
        with_sources = graph.with_source_row(sources)
        order, parents = breadth_first_order(with_sources, node_count, return_predecessors=True)
        order, parents, roots = order[1:], parents[:node_count], len(sources)

    # scipy marks the nodes without a predecessor with a negative value.
    predecessor = parents.astype(np.int64)
    predecessor[predecessor < 0] = -1
    predecessor[order[:roots]] = -1
    distance = np.full(node_count, -1, dtype=np.int64)
    distance[order] = _levels(order, predecessor, roots, node_count)
    return distance, predecessor


def _levels(order: np.ndarray, predecessor: np.ndarray, roots: int, node_count: int) -> np.ndarray:
    """Return the level of each node of a breadth-first ``order`` whose first ``roots`` nodes are level 0.

    In a queue-based walk every node comes after its predecessor, and the
    predecessors' positions never decrease along the order. So the nodes of
    level k + 1 are those after level k whose predecessor lies in level k or
    before, a range that one binary search finds.
    """
    position = np.empty(node_count, dtype=np.int64)
    position[order] = np.arange(len(order))
    predecessor_position = position[predecessor[order[roots:]]]
    ends = [roots]
    while ends[-1] < len(order):
        end = roots + int(np.searchsorted(predecessor_position, ends[-1], side="left"))
        if end <= ends[-1]:
            raise RuntimeError("breadth-first order has a node before its predecessor's level")
        ends.append(end)
    counts = np.diff(ends, prepend=0)
    return np.repeat(np.arange(len(ends), dtype=np.int64), counts)


def _large_radius(topology: Topology, reached: np.ndarray) -> bool:
    """Whether closures should run in compiled code: worth it once they cover much of the graph.

    A compiled walk costs O(N + M) for the whole topology, however little it
    reaches, so small radii stay with the numpy walk over their own edges.
    """
    return int(np.count_nonzero(reached)) * 8 >= topology.node_count


class _Walk:
    """The edges one query follows, and how its closures run."""

    def __init__(
        self, topology: Topology, followed: np.ndarray | None, reached: np.ndarray, compiled: bool
    ) -> None:
        self.topology = topology
        self.followed = followed
        self.reached = reached
        self.compiled = compiled

    def closure(self, seeds: np.ndarray, edge_mask: np.ndarray, graph: ImpactGraph | None) -> np.ndarray:
        """Return the mask of reached CIs that ``edge_mask`` edges lead to from the seeds, seeds included.

        ``graph`` contains the same edges as ``edge_mask`` in compiled form, or is
        None when the query filters edges.
        """
        if self.compiled and graph is not None and len(seeds):
            return _compiled_closure(graph, seeds, self.topology.node_count)
        return _closure(self.topology, seeds, edge_mask, self.reached)


def _compiled_closure(graph: ImpactGraph, seeds: np.ndarray, node_count: int) -> np.ndarray:
    if len(seeds) == 1:
        order = breadth_first_order(graph.matrix, int(seeds[0]), return_predecessors=False)
    else:
        order = breadth_first_order(graph.with_source_row(seeds), node_count, return_predecessors=False)
        order = order[1:]
    seen = np.zeros(node_count, dtype=bool)
    seen[order] = True
    return seen


def _closure(
    topology: Topology, seeds: np.ndarray, edge_mask: np.ndarray, reached: np.ndarray
) -> np.ndarray:
    """Return the mask of reached CIs that ``edge_mask`` edges lead to from the seeds, seeds included."""
    seen = np.zeros(topology.node_count, dtype=bool)
    seen[seeds] = True
    scratch = np.empty(topology.node_count, dtype=np.int64)
    frontier = seeds
    while len(frontier):
        edges = _expand(topology, frontier)
        edges = edges[edge_mask[edges]]
        consumers = topology.consumer[edges]
        consumers = consumers[reached[consumers] & ~seen[consumers]]
        frontier = consumers[_first_occurrences(consumers, scratch)]
        seen[frontier] = True
    return seen


class _GroupState:
    """Redundancy groups as seen by one walk.

    A group's size counts the members that exist at ``as_of``. Members whose
    relationship type is not followed are counted as up.
    """

    def __init__(
        self, topology: Topology, followed: np.ndarray | None, present: np.ndarray | None
    ) -> None:
        self.topology = topology
        self.followed = followed
        if present is None:
            members = topology.group_edges
            self.size = topology.group_size
            self.required = topology.group_required_all
        else:
            members = topology.group_edges[present[topology.group_edges]]
            self.size = np.bincount(topology.edge_group[members], minlength=len(topology.group_consumer))
            self.required = topology.group_required(self.size)
        self.followed_members = members if followed is None else members[followed[members]]

    def below_minimum(self, down: np.ndarray) -> np.ndarray:
        """Return a mask of groups that a DOWN member leaves with fewer providers up than they require.

        A group that is short of its minimum while none of its followed members
        is DOWN is not counted: the failure did not cause that shortfall.
        """
        topology = self.topology
        down_nodes = np.flatnonzero(down)
        leaving = topology.indptr[down_nodes + 1] - topology.indptr[down_nodes]
        if int(leaving.sum()) < len(self.followed_members):
            # Few edges leave the DOWN nodes, so look at those instead of at every group member.
            members_down = _expand(topology, down_nodes)
            members_down = members_down[topology.edge_group[members_down] >= 0]
            if self.followed is not None:
                members_down = members_down[self.followed[members_down]]
        else:
            members_down = self.followed_members[down[topology.provider[self.followed_members]]]
        below = np.zeros(len(self.size), dtype=bool)
        groups, down_count = np.unique(topology.edge_group[members_down], return_counts=True)
        below[groups] = (self.size[groups] - down_count) < self.required[groups]
        return below


def _down_closure(walk: _Walk, failed: np.ndarray, groups: _GroupState) -> np.ndarray:
    """Return the mask of DOWN nodes: hard non-redundant closure plus hard groups below minimum."""
    topology, reached = walk.topology, walk.reached
    plain_hard = topology.plain_hard
    if walk.followed is not None:
        plain_hard = plain_hard & walk.followed
    down = walk.closure(failed, plain_hard, topology.plain_hard_graph)
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
        down |= walk.closure(np.unique(consumers), plain_hard, topology.plain_hard_graph)


def _degraded_closure(walk: _Walk, down: np.ndarray, groups: _GroupState) -> np.ndarray:
    """Return the mask of nodes that are DEGRADED or worse."""
    topology, reached = walk.topology, walk.reached

    # Seeds: DOWN nodes, consumers of soft edges from DOWN providers, consumers
    # of hard redundant edges from DOWN providers, and soft groups below minimum.
    down_nodes = np.flatnonzero(down)
    seed_edges = _expand(topology, down_nodes)
    seed_edges = seed_edges[topology.plain_soft_or_grouped_hard[seed_edges]]
    if walk.followed is not None:
        seed_edges = seed_edges[walk.followed[seed_edges]]
    seeds = [down_nodes, topology.consumer[seed_edges]]
    if len(topology.group_consumer):
        below = groups.below_minimum(down)
        seeds.append(topology.group_consumer[below & ~topology.group_hard])
    seed_nodes = np.unique(np.concatenate(seeds))
    seed_nodes = seed_nodes[reached[seed_nodes]]

    # From a DEGRADED node, hard edges (redundant or not) pass DEGRADED on.
    hard = topology.edge_hard if walk.followed is None else walk.followed & topology.edge_hard
    return walk.closure(seed_nodes, hard, topology.hard_graph)


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
    reverse_usable = None if radius.followed is None else radius.followed[topology.reverse_edge]
    scratch = np.empty(topology.node_count, dtype=np.int64)
    result: dict[int, np.ndarray] = {}
    for node in business:
        ancestors = _backward_closure(topology, int(node), reverse_usable, radius.reached, scratch)
        ancestors[node] = False
        result[int(node)] = np.flatnonzero(ancestors)
    return result


def _backward_closure(
    topology: Topology,
    start: int,
    reverse_usable: np.ndarray | None,
    reached: np.ndarray,
    scratch: np.ndarray,
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
        if reverse_usable is not None:
            positions = positions[reverse_usable[positions]]
        providers = topology.reverse_provider[positions]
        providers = providers[reached[providers] & ~seen[providers]]
        frontier = providers[_first_occurrences(providers, scratch)]
        seen[frontier] = True
    return seen
