"""Change review: what a change could hurt, what it collides with, what similar changes broke before.

Semantics, for a change C that affects the CIs A:

* **Window.** C runs from its actual start (else planned start) to its
  actual end (else planned end). A change with a start but no end is assumed
  to run for ``open_ended`` (4 hours by default), and the review states it. A
  change with no start time at all has no window, so collisions are not
  checked.
* **Blast radius** is ``blast_radius`` of the CIs of A that are in the
  topology, as if they all failed, with the relationships valid at the start
  of the window.
* **Collisions** are the other changes, not cancelled, whose window overlaps
  C's (both half-open, ``[start, end)``) and that affect a CI of A or a CI in
  the blast radius. Their windows follow the same rules as C's.
* **Past incidents** are the incidents whose ``caused_by_change`` names a
  change (C itself included) that affects a CI of A.
* **Risk** starts from C's own risk and adds points (see ``review_change``);
  the result is never below C's own rating.
* **Reviewers** are the CIs whose owners should review C: the CIs of A, every
  CI the radius takes DOWN, and every business service or transaction it
  reaches at any impact level.

The cost is that of ``blast_radius``, plus O(c) vectorised comparisons over the
c changes of the index to find overlapping windows, plus the incidents of
the affected CIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from service.analysis.blast_radius import BlastRadius, BlastRadiusOptions, Impact, blast_radius
from service.analysis.events import EventIndex, describe_ids, format_minutes, require_utc
from service.analysis.topology import Topology
from service.model import Change, ChangeKind, ChangeStatus, Incident, Risk

DEFAULT_OPEN_ENDED = timedelta(hours=4)
RISK_ORDER = (Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL)
# Kinds of change that touch infrastructure many CIs share.
SHARED_KINDS = frozenset({ChangeKind.DATABASE, ChangeKind.NETWORK, ChangeKind.INFRASTRUCTURE})
# A radius of this many CIs or more adds a risk point.
LARGE_RADIUS = 50


@dataclass(frozen=True)
class ChangeReviewOptions:
    """Tuning of ``review_change``.

    ``open_ended`` is the duration assumed for a change with a start and no
    end. ``max_depth`` caps the blast radius walk.
    """

    open_ended: timedelta = DEFAULT_OPEN_ENDED
    max_depth: int | None = None


@dataclass(frozen=True)
class Window:
    """A change's time window in UTC; ``assumed_end`` is true when the end is start + ``open_ended``."""

    start: datetime
    end: datetime
    assumed_end: bool


@dataclass(frozen=True)
class Collision:
    """Another change whose window overlaps the reviewed one on the same or an impacted CI.

    ``shared_ci_ids`` are CIs both changes affect; ``impacted_ci_ids`` are CIs
    the other change affects that are in the reviewed change's blast radius.
    """

    change: Change
    window: Window
    overlap_minutes: float
    shared_ci_ids: list[str]
    impacted_ci_ids: list[str]
    reason: str


@dataclass(frozen=True)
class CausedIncident:
    """A past incident caused by a change to one of the reviewed change's CIs."""

    incident: Incident
    change_id: str
    ci_ids: list[str]
    reason: str


@dataclass(frozen=True)
class ChangeReview:
    """Result of ``review_change``.

    ``radius`` is None when none of the affected CIs is in the topology.
    ``impacted_ci_ids`` follows the radius order (worst impact first, then
    distance, then id). ``business_impact`` maps each business service or
    transaction in the radius to its impact. ``reasons`` explain ``risk``, one
    factor per line, and ``risk_reason`` is the same as one sentence.
    """

    change: Change
    window: Window | None
    affected_ci_ids: list[str]
    unknown_ci_ids: list[str]
    radius: BlastRadius | None
    impacted_ci_ids: list[str]
    business_impact: dict[str, Impact]
    collisions: list[Collision]
    past_incidents: list[CausedIncident]
    risk: Risk
    reasons: list[str]
    risk_reason: str
    reviewer_ci_ids: list[str]


def change_window(change: Change, open_ended: timedelta = DEFAULT_OPEN_ENDED) -> Window | None:
    """Return the window of a change, or None when it has no start time.

    Raises:
        ValueError: a time of the change is naive; the message names the field.
    """
    for name in ("planned_start", "planned_end", "actual_start", "actual_end"):
        value = getattr(change, name)
        if value is not None:
            require_utc(value, f"change {change.id} {name}")
    start = change.actual_start or change.planned_start
    if start is None:
        return None
    end = change.actual_end or change.planned_end
    if end is None or end <= start:
        # An end at or before the start (a late actual start against the planned
        # end) would give an empty window that never collides, so it counts as open-ended.
        return Window(start, start + open_ended, True)
    return Window(start, end, False)


def review_change(
    topology: Topology,
    change: Change,
    index: EventIndex,
    options: ChangeReviewOptions | None = None,
) -> ChangeReview:
    """Review a proposed or recorded change.

    The risk rating starts from the change's own risk as points (low 0,
    medium 1, high 2, critical 3) and adds:

    * +1 for a database, network or infrastructure change;
    * +2 when the radius takes a business service or transaction DOWN, else +1
      when it degrades one or puts one at risk;
    * +1 for a radius of 50 CIs or more;
    * +2 for a collision on a CI both changes affect, else +1 for one on an
      impacted CI;
    * +1 for one or two past incidents caused by changes to these CIs, +2 for
      three or more.

    Points 0-1 rate low, 2-3 medium, 4-5 high and 6 or more critical, but never
    below the change's own risk.

    Args:
        topology: snapshot in impact direction.
        change: the change under review; it need not be in ``index``.
        index: every known change and incident, from ``build_event_index``.
        options: the duration of open-ended changes and the depth limit.

    Raises:
        ValueError: a naive time on the change, or a negative depth.

    Example:
        >>> review = review_change(topology, change, index)
        >>> review.risk, review.reasons[0]
        (<Risk.HIGH: 'high'>, 'the change itself is rated medium risk')
    """
    options = options or ChangeReviewOptions()
    if options.open_ended <= timedelta(0):
        raise ValueError(f"open_ended {options.open_ended} is not positive; pass a positive duration")
    window = change_window(change, options.open_ended)
    affected = list(dict.fromkeys(change.affected))
    known = [ci_id for ci_id in affected if ci_id in topology.index]
    unknown = [ci_id for ci_id in affected if ci_id not in topology.index]

    radius = None
    impacted_ids: list[str] = []
    business: dict[str, Impact] = {}
    reached = np.zeros(topology.node_count, dtype=bool)
    if known:
        radius_options = BlastRadiusOptions(max_depth=options.max_depth, as_of=window.start if window else None)
        radius = blast_radius(topology, known, radius_options)
        reached = radius.reached
        impacted_ids = [topology.ids[node] for node in radius.impacted.tolist()]
        is_business = topology.is_business[radius.impacted]
        for node, level in zip(radius.impacted[is_business].tolist(), radius.impact[is_business].tolist(), strict=True):
            business[topology.ids[node]] = Impact(level)

    collisions = _collisions(topology, change, window, set(affected), reached, index, options.open_ended)
    past = _caused_incidents(change, affected, index)
    risk, reasons = _rate(change, radius, business, collisions, past)
    reviewers = _reviewers(topology, known, radius)
    risk_reason = f"rated {risk.value} because " + "; ".join(reasons)
    return ChangeReview(
        change=change,
        window=window,
        affected_ci_ids=known,
        unknown_ci_ids=unknown,
        radius=radius,
        impacted_ci_ids=impacted_ids,
        business_impact=business,
        collisions=collisions,
        past_incidents=past,
        risk=risk,
        reasons=reasons,
        risk_reason=risk_reason,
        reviewer_ci_ids=reviewers,
    )


def _collisions(
    topology: Topology,
    change: Change,
    window: Window | None,
    affected: set[str],
    reached: np.ndarray,
    index: EventIndex,
    open_ended: timedelta,
) -> list[Collision]:
    if window is None or not index.changes:
        return []
    starts = index.change_start
    ends = np.where(np.isnan(index.change_end), starts + open_ended.total_seconds(), index.change_end)
    # A recorded end at or before the start is read as open-ended too, as change_window does.
    ends = np.where(ends <= starts, starts + open_ended.total_seconds(), ends)
    overlapping = np.flatnonzero((starts < window.end.timestamp()) & (ends > window.start.timestamp()))

    collisions = []
    for position in overlapping.tolist():
        other = index.changes[position]
        if other.id == change.id or other.status is ChangeStatus.CANCELLED:
            continue
        shared = [ci_id for ci_id in other.affected if ci_id in affected]
        impacted = [
            ci_id
            for ci_id in other.affected
            if ci_id not in affected and ci_id in topology.index and reached[topology.index[ci_id]]
        ]
        if not shared and not impacted:
            continue
        other_window = change_window(other, open_ended)
        assert other_window is not None
        overlap = min(window.end, other_window.end) - max(window.start, other_window.start)
        minutes = overlap.total_seconds() / 60.0
        reason = _collision_reason(other, other_window, minutes, shared, impacted)
        collisions.append(Collision(other, other_window, minutes, shared, impacted, reason))
    collisions.sort(key=lambda item: (not item.shared_ci_ids, item.window.start, item.change.id))
    return collisions


def _collision_reason(
    other: Change, window: Window, minutes: float, shared: list[str], impacted: list[str]
) -> str:
    parts = []
    if shared:
        parts.append(f"also changes {describe_ids(shared)}")
    if impacted:
        parts.append(f"changes {describe_ids(impacted)}, which this change's failure would impact")
    assumed = ""
    if window.assumed_end:
        assumed = f", assuming it runs {format_minutes((window.end - window.start).total_seconds() / 60.0)} as it has no end"
    return (
        f"{other.kind.value} {other.id} '{other.title}' ({other.status.value.replace('_', ' ')}, "
        f"risk {other.risk.value}) {' and '.join(parts)}; the windows overlap by {format_minutes(minutes)}{assumed}"
    )


def _caused_incidents(change: Change, affected: list[str], index: EventIndex) -> list[CausedIncident]:
    found: dict[int, list[str]] = {}
    for ci_id in affected:
        for position in index.incidents_by_changed_ci.get(ci_id, ()):
            found.setdefault(position, []).append(ci_id)
    # The reviewed change may be a proposal that is not in the index yet.
    for position in index.incidents_by_change.get(change.id, ()):
        found.setdefault(position, list(affected))

    caused = []
    for position, ci_ids in found.items():
        incident = index.incidents[position]
        change_id = incident.caused_by_change
        assert change_id is not None
        reason = (
            f"{incident.severity.value} incident {incident.id} '{incident.title}' was caused by change "
            f"{change_id}, which also changed {describe_ids(ci_ids)}"
        )
        if change_id == change.id:
            reason = f"{incident.severity.value} incident {incident.id} '{incident.title}' was caused by this change"
        caused.append(CausedIncident(incident, change_id, ci_ids, reason))
    caused.sort(key=lambda item: (-item.incident.started_at.timestamp(), item.incident.id))
    return caused


def _rate(
    change: Change,
    radius: BlastRadius | None,
    business: dict[str, Impact],
    collisions: list[Collision],
    past: list[CausedIncident],
) -> tuple[Risk, list[str]]:
    own = RISK_ORDER.index(change.risk)
    points = own
    reasons = [f"the change itself is rated {change.risk.value} risk"]
    if change.kind in SHARED_KINDS:
        points += 1
        reasons.append(f"it is a {change.kind.value} change, and those touch infrastructure that many CIs share")

    down = sorted(ci_id for ci_id, level in business.items() if level is Impact.DOWN)
    hurt = sorted(ci_id for ci_id, level in business.items() if level is not Impact.DOWN)
    if down:
        points += 2
        reasons.append(f"if it fails it takes down {len(down)} business service(s) or transaction(s): {describe_ids(down)}")
    elif hurt:
        points += 1
        reasons.append(
            f"if it fails it degrades or puts at risk {len(hurt)} business service(s) or transaction(s): {describe_ids(hurt)}"
        )
    if radius is not None and radius.summary.total >= LARGE_RADIUS:
        points += 1
        reasons.append(
            f"its blast radius holds {radius.summary.total} CIs, {radius.summary.by_impact.get(Impact.DOWN, 0)} of them down"
        )

    shared = [item.change.id for item in collisions if item.shared_ci_ids]
    nearby = [item.change.id for item in collisions if not item.shared_ci_ids]
    if shared:
        points += 2
        reasons.append(f"it overlaps in time with change(s) {describe_ids(shared)} on the same CIs")
    elif nearby:
        points += 1
        reasons.append(f"it overlaps in time with change(s) {describe_ids(nearby)} on CIs it could impact")
    if past:
        points += 2 if len(past) >= 3 else 1
        ids = [item.incident.id for item in past]
        reasons.append(f"changes to these CIs caused {len(past)} past incident(s): {describe_ids(ids)}")

    level = max(own, _level(points))
    return RISK_ORDER[level], reasons


def _level(points: int) -> int:
    if points >= 6:
        return 3
    if points >= 4:
        return 2
    if points >= 2:
        return 1
    return 0


def _reviewers(topology: Topology, known: list[str], radius: BlastRadius | None) -> list[str]:
    reviewers = list(known)
    if radius is None:
        return reviewers
    chosen = (radius.impact == Impact.DOWN) | topology.is_business[radius.impacted]
    reviewers.extend(topology.ids[node] for node in radius.impacted[chosen].tolist())
    return reviewers
