"""Reference blast radius on networkx, written from the semantics in ``service.analysis.blast_radius``.

The reference shares no code with the numpy implementation: it walks a
``networkx.MultiDiGraph`` in impact direction (provider to consumer) with
networkx's own shortest-path search, then finds impacts by naive fixpoint
iteration. It is slow on purpose, so tests only run it on small graphs.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import networkx as nx

from service.analysis.blast_radius import Impact
from service.model import BUSINESS_TYPES, CI, Relationship, Strength

# Impact levels of the fixpoint iteration. NONE is the start value of every CI that did not fail.
NONE = 0
DOWN = int(Impact.DOWN)
DEGRADED = int(Impact.DEGRADED)
AT_RISK = int(Impact.AT_RISK)


@dataclass(frozen=True)
class ReferenceRadius:
    """Impacted CIs (the failed ones excluded) with their impact and distance, keyed by CI id.

    ``reached`` contains the failed and the impacted CIs.
    """

    impact: dict[str, Impact]
    distance: dict[str, int]
    reached: frozenset[str]


def impact_graph(cis: Iterable[CI], relationships: Iterable[Relationship]) -> nx.MultiDiGraph:
    """Build a multigraph with one edge per relationship, pointing from provider to consumer.

    Nodes carry ``type``, ``valid_from`` and ``valid_until``; edges carry the
    relationship type as key and ``strength``, ``redundancy``, ``valid_from``
    and ``valid_until``.
    """
    graph = nx.MultiDiGraph()
    for ci in cis:
        graph.add_node(ci.id, type=ci.type, valid_from=ci.valid_from, valid_until=ci.valid_until)
    for relationship in relationships:
        graph.add_edge(
            relationship.provider,
            relationship.consumer,
            key=relationship.type.value,
            strength=relationship.strength,
            redundancy=relationship.redundancy,
            valid_from=relationship.valid_from,
            valid_until=relationship.valid_until,
        )
    return graph


def _exists(valid_from: datetime | None, valid_until: datetime | None, as_of: datetime | None) -> bool:
    if as_of is None:
        return True
    started = valid_from is None or valid_from <= as_of
    not_ended = valid_until is None or as_of < valid_until
    return started and not_ended


def edge_exists(graph: nx.MultiDiGraph, provider: str, consumer: str, key: str, as_of: datetime | None) -> bool:
    """Whether the relationship and both of its CIs exist at ``as_of``."""
    data = graph.edges[provider, consumer, key]
    return (
        _exists(data["valid_from"], data["valid_until"], as_of)
        and _exists(graph.nodes[provider]["valid_from"], graph.nodes[provider]["valid_until"], as_of)
        and _exists(graph.nodes[consumer]["valid_from"], graph.nodes[consumer]["valid_until"], as_of)
    )


def edge_followed(
    graph: nx.MultiDiGraph,
    provider: str,
    consumer: str,
    key: str,
    relationship_types: Collection[str] | None,
    as_of: datetime | None,
) -> bool:
    """Whether the walk may use this edge: it exists at ``as_of`` and its type is requested."""
    if relationship_types is not None and key not in relationship_types:
        return False
    return edge_exists(graph, provider, consumer, key, as_of)


def followed_subgraph(
    graph: nx.MultiDiGraph, relationship_types: Collection[str] | None, as_of: datetime | None
) -> nx.DiGraph:
    """Return a simple digraph of the followed edges over all CIs."""
    followed = nx.DiGraph()
    followed.add_nodes_from(graph.nodes)
    for provider, consumer, key in graph.edges(keys=True):
        if edge_followed(graph, provider, consumer, key, relationship_types, as_of):
            followed.add_edge(provider, consumer)
    return followed


def _weaken(level: int) -> int:
    """Apply a soft edge: DOWN becomes DEGRADED, anything else at most AT_RISK."""
    if level == DOWN:
        return DEGRADED
    return min(level, AT_RISK)


def _group_members(
    graph: nx.MultiDiGraph, consumer: str, as_of: datetime | None
) -> dict[str, list[tuple[str, str]]]:
    """Return the existing members (provider, type) of each redundancy group of a consumer."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for provider, _, key, data in graph.in_edges(consumer, keys=True, data=True):
        if data["redundancy"] is not None and edge_exists(graph, provider, consumer, key, as_of):
            groups.setdefault(data["redundancy"].group, []).append((provider, key))
    return groups


def _rule_level(
    graph: nx.MultiDiGraph,
    consumer: str,
    impact: dict[str, int],
    reached: Collection[str],
    relationship_types: Collection[str] | None,
    as_of: datetime | None,
) -> int:
    """Return the worst level that any rule gives the consumer from its providers' current levels."""
    level = NONE
    for provider, _, key, data in graph.in_edges(consumer, keys=True, data=True):
        if data["redundancy"] is not None or provider not in reached:
            continue
        if not edge_followed(graph, provider, consumer, key, relationship_types, as_of):
            continue
        provider_level = impact[provider]
        if data["strength"] is Strength.SOFT:
            provider_level = _weaken(provider_level)
        level = max(level, provider_level)

    for members in _group_members(graph, consumer, as_of).values():
        first = graph.edges[members[0][0], consumer, members[0][1]]
        hard = first["strength"] is Strength.HARD
        redundancy = first["redundancy"]
        size = len(members)
        if redundancy.min_available is not None:
            required = redundancy.min_available
        else:
            required = math.ceil(round(size * redundancy.min_available_percent / 100.0, 2))
        member_levels = [
            impact[provider]
            for provider, key in members
            if provider in reached
            and edge_followed(graph, provider, consumer, key, relationship_types, as_of)
        ]
        down_count = sum(1 for member_level in member_levels if member_level == DOWN)
        if down_count and size - down_count < required:
            level = max(level, DOWN if hard else DEGRADED)
            continue
        for member_level in member_levels:
            if member_level in (DOWN, DEGRADED):
                level = max(level, DEGRADED if hard else AT_RISK)
            elif member_level == AT_RISK:
                level = max(level, AT_RISK)
    return level


def reference_blast_radius(
    graph: nx.MultiDiGraph,
    failed_ids: Sequence[str],
    *,
    max_depth: int | None = None,
    relationship_types: Collection[str] | None = None,
    as_of: datetime | None = None,
) -> ReferenceRadius:
    """Compute the blast radius by breadth-first search and naive fixpoint iteration.

    A redundancy group short of its minimum gives its consumer DOWN (hard) or
    DEGRADED (soft) only when at least one of its followed members is DOWN.
    So a group that was already short before the failure is not blamed on it.
    """
    followed = followed_subgraph(graph, relationship_types, as_of)
    failed = set(failed_ids)
    distance = dict(nx.multi_source_dijkstra_path_length(followed, failed, cutoff=max_depth))
    reached = set(distance)

    impact = {node: NONE for node in reached}
    for node in failed:
        impact[node] = DOWN
    changed = True
    while changed:
        changed = False
        for node in sorted(reached - failed):
            level = max(impact[node], _rule_level(graph, node, impact, reached, relationship_types, as_of))
            if level != impact[node]:
                impact[node] = level
                changed = True

    impacted = sorted(reached - failed)
    return ReferenceRadius(
        impact={node: Impact(impact[node]) for node in impacted},
        distance={node: distance[node] for node in impacted},
        reached=frozenset(reached),
    )


def reference_business_ancestors(
    graph: nx.MultiDiGraph,
    radius: ReferenceRadius,
    failed_ids: Collection[str],
    *,
    relationship_types: Collection[str] | None = None,
    as_of: datetime | None = None,
) -> dict[str, set[str]]:
    """Return, for each impacted business CI, the reached CIs that lead to it.

    A CI leads to a business CI when a path of followed edges inside the radius runs from one to the other.
    """
    inside = followed_subgraph(graph, relationship_types, as_of).subgraph(radius.reached)
    return {
        node: set(nx.ancestors(inside, node))
        for node in radius.impact
        if node not in failed_ids and graph.nodes[node]["type"] in BUSINESS_TYPES
    }


def path_errors(
    graph: nx.MultiDiGraph,
    path: Sequence[str],
    failed_ids: Collection[str],
    target: str,
    expected_distance: int,
    *,
    relationship_types: Collection[str] | None = None,
    as_of: datetime | None = None,
) -> list[str]:
    """Return why ``path`` is not a shortest path of followed edges from a failed CI to ``target``.

    An empty list means the path is valid.
    """
    errors = []
    if not path:
        return ["the path is empty"]
    if path[0] not in failed_ids:
        errors.append(f"the path starts at {path[0]!r}, which did not fail")
    if path[-1] != target:
        errors.append(f"the path ends at {path[-1]!r} instead of {target!r}")
    if len(path) != expected_distance + 1:
        errors.append(f"the path has {len(path)} CIs, but a shortest path has {expected_distance + 1}")
    for provider, consumer in zip(path, path[1:]):
        keys = graph.get_edge_data(provider, consumer, default={})
        if not any(
            edge_followed(graph, provider, consumer, key, relationship_types, as_of) for key in keys
        ):
            errors.append(f"no followed edge leads from {provider!r} to {consumer!r}")
    return errors
