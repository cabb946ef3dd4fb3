"""Likely culprits: which CIs most likely caused a symptom, ranked by evidence a responder can check.

Semantics, for a symptom observed on CIs S at onset t:

* **Candidates** are the CIs of S and every CI they depend on: the walk
  follows impact edges backwards, from consumer to provider, transitively,
  using the relationships (and CIs) that exist at t. Cycles are visited once.
* Each candidate gets a score that adds these terms:

  ============  =================================================================
  term          value
  ============  =================================================================
  explains      ``2.0 * e / k``: it lies upstream of (or is) e of the k observed
                CIs of S that are in the topology
  distance      ``0.5 / (1 + d)``: d hops to the nearest observed CI
  changes       ``3.0 * (1 - prod(1 - w))`` over its changes made before t:
                ``w = severity * 2 ** (-minutes / half_life)``, minutes from the
                change's end to t (0 for a change still running at t). Severity
                is 0.4, 0.6, 0.85 or 1.0 for low, medium, high and critical risk,
                plus 0.3 for a failed change (at most 1.0), halved for a
                rolled-back one. A change that started at or after t is no cause,
                and one that ended more than ``change_window`` before t is ignored.
  status        the CI is *unhealthy* when its recorded status is degraded or
                down, or an incident unresolved at some moment from t to
                t + ``signal_slack`` lists it as impacted. An
                unhealthy CI that depends on no other unhealthy CI is the deepest
                one on its branch and gets 2.5 (down), 2.0 (degraded) or 1.5
                (incident only). One that depends on another unhealthy CI is more
                likely a victim and gets 0.3.
  history       ``2.0 * (1 - prod(1 - s))`` over past incidents (started before
                t) whose root cause it was, with similarity s >= ``min_similarity``
                between their tags and text and the symptom's (see
                ``EventIndex.similarity``)
  ============  =================================================================

* Candidates are ranked by score (highest first), then distance (nearest
  first), then id. Scores are rounded to six decimals before ranking, so two
  candidates with the same evidence tie exactly and the id decides.

The walk is one breadth-first pass per observed CI over the reversed CSR, so
O(k * (n + m)) for n candidates and m edges between them, plus O(N) per pass
to allocate the distance array of the N CIs of the topology. Scoring costs
O(n) dictionary lookups plus the work on the events of the candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from service.analysis.events import (
    EventIndex,
    active_during,
    change_times,
    describe_ids,
    format_minutes,
    require_utc,
    was_made,
)
from service.analysis.topology import Topology, edge_positions
from service.model import Change, ChangeStatus, Incident, Risk, Status

EXPLAINS_WEIGHT = 2.0
DISTANCE_WEIGHT = 0.5
CHANGE_WEIGHT = 3.0
HISTORY_WEIGHT = 2.0
ROOT_STATUS_POINTS = {Status.DOWN: 2.5, Status.DEGRADED: 2.0}
ROOT_INCIDENT_POINTS = 1.5
VICTIM_POINTS = 0.3
RISK_SEVERITY = {Risk.LOW: 0.4, Risk.MEDIUM: 0.6, Risk.HIGH: 0.85, Risk.CRITICAL: 1.0}
FAILED_BONUS = 0.3
UNHEALTHY = frozenset({Status.DEGRADED, Status.DOWN})


@dataclass(frozen=True)
class Symptom:
    """An observed symptom: where, since when and how it shows.

    ``ci_ids`` are the CIs where the symptom was observed (a business service
    or transaction counts like any CI). ``started_at`` must be aware; it is
    stored in UTC. ``tags`` are snake_case words such as timeout,
    slow_response, error_rate or down.

    Raises:
        ValueError: ``started_at`` is naive.
    """

    ci_ids: tuple[str, ...]
    started_at: datetime
    tags: tuple[str, ...] = ()
    text: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ci_ids", tuple(self.ci_ids))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "started_at", require_utc(self.started_at, "started_at"))


@dataclass(frozen=True)
class CulpritOptions:
    """Tuning of ``likely_culprits``.

    ``limit`` caps the listed culprits (None lists every candidate).
    ``max_depth`` caps the hops walked upstream. ``change_window`` is how long
    before onset a change may have ended and still count, and
    ``change_half_life`` how fast its weight fades with that time.
    ``signal_slack`` admits incidents opened shortly after onset as live
    signals. ``rollback_culprits`` is how many of the top culprits may propose
    changes for ``rollback_first``.
    """

    limit: int | None = 10
    max_depth: int | None = None
    change_window: timedelta = timedelta(hours=24)
    change_half_life: timedelta = timedelta(hours=2)
    signal_slack: timedelta = timedelta(minutes=15)
    min_similarity: float = 0.2
    rollback_culprits: int = 3
    min_rollback_weight: float = 0.1


@dataclass(frozen=True)
class Culprit:
    """One ranked candidate, with the evidence behind its score.

    ``changes`` are its changes counted as evidence, most suspicious first.
    ``incidents`` are its past incidents with similar symptoms, most similar
    first, followed by the incidents active at onset that list it as impacted.
    ``explained`` lists the observed CIs it is upstream of or equal to.
    """

    ci_id: str
    rank: int
    score: float
    evidence: list[str]
    changes: list[Change]
    incidents: list[Incident]
    distance: int
    explained: list[str]


@dataclass(frozen=True)
class CulpritReport:
    """Result of ``likely_culprits``.

    ``culprits`` is empty exactly when ``reason`` is set. ``rollback_first``
    lists recent changes on the top culprits, in the order to consider rolling
    them back. ``candidate_count`` counts all candidates, also those cut by
    the limit. ``unknown_ci_ids`` are symptom CIs not in the topology at
    onset; they were ignored.
    """

    culprits: list[Culprit]
    rollback_first: list[Change]
    reason: str | None
    candidate_count: int
    unknown_ci_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _ChangeEvidence:
    change: Change
    weight: float
    minutes: float
    running: bool


@dataclass(frozen=True)
class _HistoryEvidence:
    incident: Incident
    similarity: float


@dataclass
class _Evidence:
    """Everything found about one candidate, before it becomes a ``Culprit``."""

    changes: list[_ChangeEvidence] = field(default_factory=list)
    history: list[_HistoryEvidence] = field(default_factory=list)
    active: list[Incident] = field(default_factory=list)
    status: Status | None = None

    @property
    def unhealthy(self) -> bool:
        return self.status is not None or bool(self.active)


def likely_culprits(
    topology: Topology,
    symptom: Symptom,
    index: EventIndex,
    statuses: Mapping[str, Status],
    options: CulpritOptions | None = None,
) -> CulpritReport:
    """Rank the CIs that most likely caused a symptom.

    Args:
        topology: snapshot in impact direction.
        symptom: where, since when and how the symptom shows.
        index: changes and incidents, from ``build_event_index``.
        statuses: recorded status per CI id. A CI missing from it counts as
            operational, so a caller may pass only the CIs that are not.
        options: limits, time windows and thresholds.

    Returns:
        The ranked culprits with their evidence, or an empty list with the
        reason when the symptom has no candidate.

    Raises:
        ValueError: a negative limit or depth, or a half-life that is not positive.

    Example:
        >>> symptom = Symptom(("screen-pop",), onset, ("slow_response",))
        >>> report = likely_culprits(topology, symptom, index, {"crm-db-primary": Status.DEGRADED})
        >>> report.culprits[0].ci_id
        'crm-db-primary'
    """
    options = options or CulpritOptions()
    _check_options(options)
    onset = symptom.started_at
    observed_ids = list(dict.fromkeys(symptom.ci_ids))
    if not observed_ids:
        return CulpritReport([], [], "the symptom names no CI; pass at least one CI id", 0)
    node_valid = topology.node_valid_at(onset)
    known = [
        ci_id
        for ci_id in observed_ids
        if ci_id in topology.index and (node_valid is None or node_valid[topology.index[ci_id]])
    ]
    unknown = [ci_id for ci_id in observed_ids if ci_id not in known]
    if not known:
        reason = (
            f"none of the symptom CIs ({describe_ids(unknown)}) is in the topology at "
            f"{onset.isoformat()}; check the ids"
        )
        return CulpritReport([], [], reason, 0, unknown)

    present = _present_edges(topology, onset)
    upstream = _walk_upstream(topology, known, present, node_valid, options.max_depth)
    candidates = np.flatnonzero(upstream.explains)
    evidence = _gather(topology, candidates, symptom, index, statuses, options)
    unhealthy = np.zeros(topology.node_count, dtype=bool)
    unhealthy[[node for node, found in evidence.items() if found.unhealthy]] = True
    victim = _has_unhealthy_upstream(topology, unhealthy, upstream.explains > 0, present)

    scores = EXPLAINS_WEIGHT * upstream.explains[candidates] / len(known)
    scores += DISTANCE_WEIGHT / (1.0 + upstream.distance[candidates])
    position_of = {node: position for position, node in enumerate(candidates.tolist())}
    for node, found in evidence.items():
        scores[position_of[node]] += _event_points(found, bool(victim[node]))
    scores = np.round(scores, 6)
    order = np.lexsort((topology.id_rank[candidates], upstream.distance[candidates], -scores))
    ranked = candidates[order]
    if options.limit is not None:
        ranked = ranked[: options.limit]

    scene = _Scene(topology, onset, upstream, evidence, unhealthy, victim, present)
    culprits = [
        _culprit(scene, node, rank, float(scores[position_of[node]]))
        for rank, node in enumerate(ranked.tolist(), start=1)
    ]
    rollback = _rollback_first(evidence, ranked, options)
    return CulpritReport(culprits, rollback, None, len(candidates), unknown)


def _check_options(options: CulpritOptions) -> None:
    if options.limit is not None and options.limit < 0:
        raise ValueError(f"limit {options.limit} is negative; pass 0 or more, or omit it")
    if options.max_depth is not None and options.max_depth < 0:
        raise ValueError(f"max_depth {options.max_depth} is negative; pass 0 or more, or omit it")
    if options.change_half_life <= timedelta(0):
        raise ValueError(
            f"change_half_life {options.change_half_life} is not positive; pass a positive duration"
        )


def _present_edges(topology: Topology, onset: datetime) -> np.ndarray | None:
    """Return the mask of the edges (provider-CSR positions) that exist at onset, or None for all."""
    present = topology.edge_valid_at(onset)
    if present is None:
        return None
    node_valid = topology.node_valid_at(onset)
    assert node_valid is not None
    return present & node_valid[topology.provider] & node_valid[topology.consumer]


@dataclass(frozen=True)
class _Upstream:
    """The candidates of one query: per CI, how many observed CIs it explains and how far it is.

    ``reached[p]`` marks the CIs upstream of (or equal to) observed CI
    ``observed[p]``. ``distance`` is the hop count to the nearest observed CI
    and ``nearest`` that CI's position in ``observed``; both are only
    meaningful where ``explains`` is positive.
    """

    observed: list[str]
    reached: list[np.ndarray]
    explains: np.ndarray
    distance: np.ndarray
    nearest: np.ndarray


def _walk_upstream(
    topology: Topology,
    observed: list[str],
    present: np.ndarray | None,
    node_valid: np.ndarray | None,
    max_depth: int | None,
) -> _Upstream:
    reverse_usable = None if present is None else present[topology.reverse_edge]
    explains = np.zeros(topology.node_count, dtype=np.int64)
    distance = np.full(topology.node_count, np.iinfo(np.int64).max, dtype=np.int64)
    nearest = np.full(topology.node_count, -1, dtype=np.int64)
    reached_masks = []
    for position, ci_id in enumerate(observed):
        hops = _upstream_distances(topology, topology.index[ci_id], reverse_usable, node_valid, max_depth)
        reached = hops >= 0
        reached_masks.append(reached)
        explains[reached] += 1
        closer = reached & (hops < distance)
        distance[closer] = hops[closer]
        nearest[closer] = position
    return _Upstream(observed, reached_masks, explains, distance, nearest)


def _upstream_distances(
    topology: Topology,
    source: int,
    reverse_usable: np.ndarray | None,
    node_valid: np.ndarray | None,
    max_depth: int | None,
) -> np.ndarray:
    """Walk from a consumer to its providers, transitively; return hops per CI (-1 unreached)."""
    distance = np.full(topology.node_count, -1, dtype=np.int64)
    distance[source] = 0
    frontier = np.array([source], dtype=np.int64)
    depth = 0
    while len(frontier) and (max_depth is None or depth < max_depth):
        positions = edge_positions(topology.reverse_indptr, frontier)
        if reverse_usable is not None:
            positions = positions[reverse_usable[positions]]
        providers = topology.reverse_provider[positions]
        providers = providers[distance[providers] < 0]
        if node_valid is not None:
            providers = providers[node_valid[providers]]
        frontier = np.unique(providers)
        depth += 1
        distance[frontier] = depth
    return distance


def _has_unhealthy_upstream(
    topology: Topology, unhealthy: np.ndarray, candidate: np.ndarray, present: np.ndarray | None
) -> np.ndarray:
    """Mark the candidates that depend, directly or transitively, on an unhealthy CI other than themselves.

    Every CI on a path from an unhealthy CI to a candidate is itself upstream
    of the symptom, so the forward walk may stay inside the candidates. A CI
    on a cycle through an unhealthy CI counts as depending on it, and so does
    an unhealthy CI on a cycle through itself.
    """
    marked = np.zeros(topology.node_count, dtype=bool)
    frontier = np.flatnonzero(unhealthy)
    while len(frontier):
        positions = edge_positions(topology.indptr, frontier)
        if present is not None:
            positions = positions[present[positions]]
        consumers = topology.consumer[positions]
        consumers = consumers[candidate[consumers] & ~marked[consumers]]
        frontier = np.unique(consumers)
        marked[frontier] = True
    return marked


def _gather(
    topology: Topology,
    candidates: np.ndarray,
    symptom: Symptom,
    index: EventIndex,
    statuses: Mapping[str, Status],
    options: CulpritOptions,
) -> dict[int, _Evidence]:
    """Collect the changes, statuses, active incidents and similar past incidents of each candidate."""
    onset = symptom.started_at
    earliest_end = onset - options.change_window
    signal_until = onset + options.signal_slack
    tags = frozenset(symptom.tags)
    vector = index.text_vector(symptom.text) if symptom.text else {}
    half_life_minutes = options.change_half_life.total_seconds() / 60.0
    ids = topology.ids
    found: dict[int, _Evidence] = {}

    for node in candidates.tolist():
        ci_id = ids[node]
        recorded = statuses.get(ci_id)
        status = Status(recorded) if recorded is not None else None
        changes = index.changes_on(ci_id, onset, earliest_end) if ci_id in index.changes_by_ci else ()
        root_of = index.incidents_by_root_cause.get(ci_id, ())
        impacted_by = index.incidents_by_impacted.get(ci_id, ())
        if not (changes or root_of or impacted_by or status in UNHEALTHY):
            continue

        evidence = _Evidence(status=status if status in UNHEALTHY else None)
        for change in changes:
            if was_made(change):
                evidence.changes.append(_change_evidence(change, onset, half_life_minutes))
        evidence.changes.sort(key=lambda item: (-item.weight, item.change.id))
        for position in root_of:
            incident = index.incidents[position]
            if incident.started_at >= onset:
                continue
            similarity = index.similarity(position, tags, vector)
            if similarity >= options.min_similarity:
                evidence.history.append(_HistoryEvidence(incident, similarity))
        evidence.history.sort(key=lambda item: (-item.similarity, item.incident.id))
        for position in impacted_by:
            incident = index.incidents[position]
            if active_during(incident, onset, signal_until):
                evidence.active.append(incident)
        evidence.active.sort(key=lambda incident: (incident.started_at, incident.id))
        if evidence.changes or evidence.history or evidence.unhealthy:
            found[node] = evidence
    return found


def _change_evidence(change: Change, onset: datetime, half_life_minutes: float) -> _ChangeEvidence:
    times = change_times(change)
    running = times.end is None or times.end > onset
    reference = onset if running else times.end
    assert reference is not None
    minutes = max(0.0, (onset - reference).total_seconds() / 60.0)
    severity = RISK_SEVERITY[change.risk]
    if change.status is ChangeStatus.FAILED:
        severity = min(1.0, severity + FAILED_BONUS)
    if change.status is ChangeStatus.ROLLED_BACK:
        severity /= 2.0
    weight = severity * 2.0 ** (-minutes / half_life_minutes)
    return _ChangeEvidence(change, weight, minutes, running)


def _event_points(found: _Evidence, victim: bool) -> float:
    points = 0.0
    if found.changes:
        points += CHANGE_WEIGHT * _noisy_or(item.weight for item in found.changes)
    if found.history:
        points += HISTORY_WEIGHT * _noisy_or(item.similarity for item in found.history)
    if found.unhealthy:
        if victim:
            points += VICTIM_POINTS
        elif found.status is not None:
            points += ROOT_STATUS_POINTS[found.status]
        else:
            points += ROOT_INCIDENT_POINTS
    return points


def _noisy_or(weights: Iterable[float]) -> float:
    """Combine independent pieces of evidence, each in [0, 1]: 1 minus the product of their complements."""
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return 1.0 - remaining


def _describe_change(item: _ChangeEvidence, onset: datetime) -> str:
    change = item.change
    head = f"{change.kind.value} {change.id} '{change.title}'"
    status = change.status.value.replace("_", " ")
    if item.running:
        start = change_times(change).start
        assert start is not None
        started = format_minutes((onset - start).total_seconds() / 60.0)
        return (
            f"{head} started {started} before onset and was still running at onset "
            f"(status {status}, risk {change.risk.value})"
        )
    return f"{head} finished {format_minutes(item.minutes)} before onset (status {status}, risk {change.risk.value})"


@dataclass(frozen=True)
class _Scene:
    """The findings of one query that the evidence of each listed culprit is written from."""

    topology: Topology
    onset: datetime
    upstream: _Upstream
    evidence: Mapping[int, _Evidence]
    unhealthy: np.ndarray
    victim: np.ndarray
    present: np.ndarray | None


def _culprit(scene: _Scene, node: int, rank: int, score: float) -> Culprit:
    found = scene.evidence.get(node, _Evidence())
    upstream = scene.upstream
    explained = [ci_id for ci_id, reached in zip(upstream.observed, upstream.reached, strict=True) if reached[node]]
    distance = int(upstream.distance[node])
    lines = [f"explains {len(explained)} of {len(upstream.observed)} observed symptoms ({describe_ids(explained)})"]
    if distance == 0:
        lines.append("is itself an observed CI")
    else:
        nearest = upstream.observed[int(upstream.nearest[node])]
        lines.append(f"{distance} {_hops(distance)} upstream of {nearest}")
    lines.extend(_describe_change(item, scene.onset) for item in found.changes)
    if found.unhealthy:
        lines.append(_describe_health(scene, node, found))
    for incident in found.active:
        lines.append(f"incident {incident.id} '{incident.title}', open at onset, lists it as impacted")
    if found.history:
        count = len(found.history)
        examples = "; ".join(
            f"{item.incident.id} '{item.incident.title}', similarity {item.similarity:.2f}"
            for item in found.history[:3]
        )
        noun = "incident" if count == 1 else "incidents"
        lines.append(f"root cause of {count} past {noun} with similar symptoms ({examples})")
    return Culprit(
        ci_id=scene.topology.ids[node],
        rank=rank,
        score=score,
        evidence=lines,
        changes=[item.change for item in found.changes],
        incidents=[item.incident for item in found.history] + list(found.active),
        distance=distance,
        explained=explained,
    )


def _hops(count: int) -> str:
    return "hop" if count == 1 else "hops"


def _state(found: _Evidence | None) -> str:
    if found is not None and found.status is not None:
        return f"status {found.status.value}"
    return "listed as impacted by an open incident"


def _describe_health(scene: _Scene, node: int, found: _Evidence) -> str:
    state = _state(found)
    if not scene.victim[node]:
        return f"{state} while every CI it depends on is healthy"
    upstream = _nearest_unhealthy_provider(scene, node)
    if upstream is None:
        return f"{state}, but it is on a dependency cycle with an unhealthy CI, so it may be a victim"
    other, hops = upstream
    return (
        f"{state}, but it depends on {scene.topology.ids[other]} ({hops} {_hops(hops)} upstream, "
        f"{_state(scene.evidence.get(other))}), so it may be a victim"
    )


def _nearest_unhealthy_provider(scene: _Scene, node: int) -> tuple[int, int] | None:
    """Return the nearest unhealthy CI upstream of ``node`` (lowest id on ties) and its distance in hops."""
    topology = scene.topology
    reverse_usable = None if scene.present is None else scene.present[topology.reverse_edge]
    seen = np.zeros(topology.node_count, dtype=bool)
    seen[node] = True
    frontier = np.array([node], dtype=np.int64)
    depth = 0
    while len(frontier):
        positions = edge_positions(topology.reverse_indptr, frontier)
        if reverse_usable is not None:
            positions = positions[reverse_usable[positions]]
        providers = np.unique(topology.reverse_provider[positions])
        providers = providers[~seen[providers]]
        depth += 1
        hits = providers[scene.unhealthy[providers]]
        if len(hits):
            return int(hits[np.argmin(topology.id_rank[hits])]), depth
        seen[providers] = True
        frontier = providers
    return None


def _rollback_first(evidence: Mapping[int, _Evidence], ranked: np.ndarray, options: CulpritOptions) -> list[Change]:
    """Return the recent changes on the top culprits, by culprit rank and then by weight.

    Rolled-back changes and changes whose weight is below
    ``min_rollback_weight`` are left out.
    """
    chosen: list[Change] = []
    seen: set[str] = set()
    for node in ranked[: options.rollback_culprits].tolist():
        found = evidence.get(node)
        if found is None:
            continue
        for item in found.changes:
            change = item.change
            if change.status is ChangeStatus.ROLLED_BACK or change.id in seen:
                continue
            if item.weight >= options.min_rollback_weight:
                chosen.append(change)
                seen.add(change.id)
    return chosen
