"""Likely culprits on tiny hand-made graphs: one evidence rule per test."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from service.analysis.culprits import CulpritOptions, CulpritReport, Symptom, likely_culprits
from service.analysis.events import build_event_index, format_minutes
from service.analysis.topology import Topology, build_topology
from service.model import (
    Change,
    ChangeKind,
    ChangeStatus,
    Incident,
    IncidentStatus,
    Risk,
    Severity,
    Status,
)
from service.store.base import TopologyData

ONSET = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def topology_of(
    dependencies: Sequence[tuple[str, str]],
    *,
    extra: Sequence[str] = (),
    edge_valid_from: Mapping[tuple[str, str], datetime] | None = None,
) -> Topology:
    """Build a topology where each ``(consumer, provider)`` pair is ``consumer DEPENDS_ON provider``."""
    ids = sorted({ci for pair in dependencies for ci in pair} | set(extra))
    position = {ci_id: i for i, ci_id in enumerate(ids)}
    count = len(dependencies)
    valid_from = np.full(count, np.nan)
    for i, pair in enumerate(dependencies):
        if edge_valid_from and pair in edge_valid_from:
            valid_from[i] = edge_valid_from[pair].timestamp()
    data = TopologyData(
        version=1,
        ids=ids,
        types=["service"] * len(ids),
        node_valid_from=np.full(len(ids), np.nan),
        node_valid_until=np.full(len(ids), np.nan),
        edge_source=np.array([position[c] for c, _ in dependencies], dtype=np.int64),
        edge_target=np.array([position[p] for _, p in dependencies], dtype=np.int64),
        edge_type=["DEPENDS_ON"] * count,
        edge_hard=np.ones(count, dtype=bool),
        edge_group=[None] * count,
        edge_min_available=np.full(count, np.nan),
        edge_min_percent=np.full(count, np.nan),
        edge_valid_from=valid_from,
        edge_valid_until=np.full(count, np.nan),
    )
    return build_topology(data)


def change(
    change_id: str,
    ci_id: str,
    *,
    ended_before: float | None = 10.0,
    started_before: float = 30.0,
    risk: Risk = Risk.MEDIUM,
    status: ChangeStatus = ChangeStatus.COMPLETED,
) -> Change:
    """Return a change on one CI that started and ended the given minutes before onset (None: no end)."""
    return Change(
        id=change_id,
        title=f"Change {change_id}",
        kind=ChangeKind.CONFIG,
        status=status,
        affected=(ci_id,),
        risk=risk,
        actual_start=ONSET - timedelta(minutes=started_before),
        actual_end=None if ended_before is None else ONSET - timedelta(minutes=ended_before),
    )


def incident(
    incident_id: str,
    *,
    root_causes: Sequence[str] = (),
    impacted: Sequence[str] = (),
    text: str = "",
    tags: Sequence[str] = (),
    started: datetime = ONSET - timedelta(days=30),
    resolved: datetime | None = ONSET - timedelta(days=29),
    status: IncidentStatus = IncidentStatus.CLOSED,
) -> Incident:
    return Incident(
        id=incident_id,
        title=f"Incident {incident_id}",
        severity=Severity.HIGH,
        status=status,
        started_at=started,
        resolved_at=resolved,
        impacted=tuple(impacted),
        root_causes=tuple(root_causes),
        symptom_text=text,
        symptom_tags=tuple(tags),
    )


def rank(
    topology: Topology,
    observed: Sequence[str],
    *,
    changes: Sequence[Change] = (),
    incidents: Sequence[Incident] = (),
    statuses: Mapping[str, Status] | None = None,
    tags: Sequence[str] = (),
    text: str | None = None,
    onset: datetime = ONSET,
    options: CulpritOptions | None = None,
) -> CulpritReport:
    index = build_event_index(changes, incidents)
    symptom = Symptom(tuple(observed), onset, tuple(tags), text)
    return likely_culprits(topology, symptom, index, statuses or {}, options or CulpritOptions(limit=None))


def ids(report: CulpritReport) -> list[str]:
    return [culprit.ci_id for culprit in report.culprits]


def by_id(report: CulpritReport, ci_id: str) -> list[str]:
    return next(culprit.evidence for culprit in report.culprits if culprit.ci_id == ci_id)


# A small chain with a side branch: web -> app -> db -> disk, app -> cache,
# and a consumer of web (portal) that is never upstream of web.
CHAIN = [("web", "app"), ("app", "db"), ("db", "disk"), ("app", "cache"), ("portal", "web")]


@pytest.mark.parametrize(
    ("dependencies", "observed", "expected"),
    [
        pytest.param(CHAIN, ["web"], {"web", "app", "db", "disk", "cache"}, id="transitive-providers"),
        pytest.param(CHAIN, ["db"], {"db", "disk"}, id="consumers-excluded"),
        pytest.param([("a", "b"), ("b", "c"), ("c", "a")], ["a"], {"a", "b", "c"}, id="cycle-visited-once"),
        pytest.param(CHAIN, ["disk"], {"disk"}, id="leaf-only-itself"),
    ],
)
def test_culprits_candidates_are_observed_cis_and_their_providers(
    dependencies: list[tuple[str, str]], observed: list[str], expected: set[str]
) -> None:
    report = rank(topology_of(dependencies), observed)

    assert set(ids(report)) == expected
    assert report.candidate_count == len(expected)


def test_culprits_max_depth_limits_the_walk() -> None:
    report = rank(topology_of(CHAIN), ["web"], options=CulpritOptions(limit=None, max_depth=1))

    assert set(ids(report)) == {"web", "app"}


def test_culprits_shared_provider_explaining_both_symptoms_ranks_first() -> None:
    topology = topology_of([("a", "shared"), ("b", "shared"), ("a", "only-a")])

    report = rank(topology, ["a", "b"])

    assert ids(report)[0] == "shared"
    assert by_id(report, "shared")[0] == "explains 2 of 2 observed symptoms (a, b)"
    assert by_id(report, "only-a")[0] == "explains 1 of 2 observed symptoms (a)"


def test_culprits_without_evidence_nearer_ranks_first() -> None:
    report = rank(topology_of(CHAIN), ["web"])

    distances = [culprit.distance for culprit in report.culprits]
    assert distances == sorted(distances)
    assert by_id(report, "db")[1] == "2 hops upstream of web"
    assert by_id(report, "web")[1] == "is itself an observed CI"


def test_culprits_equal_evidence_ties_are_broken_by_id() -> None:
    topology = topology_of([("web", "zeta"), ("web", "alpha"), ("web", "mid")])

    report = rank(topology, ["web"])

    assert ids(report) == ["web", "alpha", "mid", "zeta"]
    assert report.culprits[1].score == report.culprits[3].score
    assert [culprit.rank for culprit in report.culprits] == [1, 2, 3, 4]


# Changes


@pytest.mark.parametrize(
    ("winner", "loser"),
    [
        pytest.param(change("C1", "db", ended_before=5), change("C2", "cache", ended_before=180), id="recent-beats-old"),
        pytest.param(
            change("C1", "db", status=ChangeStatus.FAILED), change("C2", "cache"), id="failed-beats-completed"
        ),
        pytest.param(change("C1", "db", risk=Risk.HIGH), change("C2", "cache", risk=Risk.LOW), id="high-beats-low"),
        pytest.param(
            change("C1", "db"), change("C2", "cache", status=ChangeStatus.ROLLED_BACK), id="kept-beats-rolled-back"
        ),
        pytest.param(
            change("C1", "db", ended_before=None, started_before=5), change("C2", "cache", ended_before=60),
            id="running-beats-finished-hour-ago",
        ),
    ],
)
def test_culprits_change_weight_orders_candidates(winner: Change, loser: Change) -> None:
    # db and cache are both two hops from web, so only the changes tell them apart.
    topology = topology_of([("web", "app"), ("app", "db"), ("app", "cache")])

    report = rank(topology, ["web"], changes=[winner, loser])

    order = ids(report)
    assert order.index(winner.affected[0]) < order.index(loser.affected[0])


@pytest.mark.parametrize(
    "ignored",
    [
        pytest.param(change("C9", "db", started_before=-5, ended_before=-10), id="started-after-onset"),
        pytest.param(change("C9", "db", started_before=0, ended_before=-10), id="started-at-onset"),
        pytest.param(change("C9", "db", started_before=26 * 60, ended_before=25 * 60), id="ended-before-window"),
        pytest.param(change("C9", "db", status=ChangeStatus.CANCELLED), id="cancelled"),
        pytest.param(
            Change("C9", "Planned", ChangeKind.DEPLOY, ChangeStatus.PLANNED, ("db",),
                   planned_start=ONSET - timedelta(hours=1), planned_end=ONSET - timedelta(minutes=30)),
            id="planned-never-started",
        ),
    ],
)
def test_culprits_change_is_not_evidence(ignored: Change) -> None:
    report = rank(topology_of(CHAIN), ["web"], changes=[ignored])

    db = next(culprit for culprit in report.culprits if culprit.ci_id == "db")
    assert db.changes == []
    assert not any("C9" in line for line in db.evidence)
    assert report.rollback_first == []


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        pytest.param(
            change("CHG-123", "db", ended_before=12, risk=Risk.HIGH, status=ChangeStatus.FAILED),
            "config CHG-123 'Change CHG-123' finished 12 min before onset (status failed, risk high)",
            id="finished",
        ),
        pytest.param(
            change("CHG-124", "db", ended_before=None, started_before=25),
            "config CHG-124 'Change CHG-124' started 25 min before onset and was still running at onset "
            "(status completed, risk medium)",
            id="running",
        ),
        pytest.param(
            change("CHG-125", "db", ended_before=185, started_before=200),
            "config CHG-125 'Change CHG-125' finished 3 h 5 min before onset (status completed, risk medium)",
            id="hours",
        ),
    ],
)
def test_culprits_change_evidence_wording(recorded: Change, expected: str) -> None:
    report = rank(topology_of(CHAIN), ["web"], changes=[recorded])

    assert expected in by_id(report, "db")


def test_culprits_rollback_first_lists_top_changes() -> None:
    changes = [
        change("C1", "db", ended_before=5, risk=Risk.HIGH),
        change("C2", "db", ended_before=20 * 60),
        change("C3", "db", ended_before=8, status=ChangeStatus.ROLLED_BACK),
    ]

    report = rank(topology_of(CHAIN), ["web"], changes=changes)

    assert ids(report)[0] == "db"
    assert [item.id for item in report.rollback_first] == ["C1"]


# Status and live signals


def test_culprits_degraded_root_outranks_down_consumer() -> None:
    statuses = {"web": Status.DOWN, "db": Status.DEGRADED}

    report = rank(topology_of(CHAIN), ["web"], statuses=statuses)

    assert ids(report)[0] == "db"
    assert "status degraded while every CI it depends on is healthy" in by_id(report, "db")
    assert (
        "status down, but it depends on db (2 hops upstream, status degraded), so it may be a victim"
        in by_id(report, "web")
    )


def test_culprits_open_incident_marks_ci_unhealthy() -> None:
    open_incident = incident(
        "INC-7", impacted=["cache"], started=ONSET - timedelta(minutes=5), resolved=None, status=IncidentStatus.OPEN
    )

    report = rank(topology_of(CHAIN), ["web"], incidents=[open_incident])

    assert ids(report)[0] == "cache"
    assert "incident INC-7 'Incident INC-7', open at onset, lists it as impacted" in by_id(report, "cache")


@pytest.mark.parametrize(
    "old",
    [
        pytest.param(
            incident("INC-8", impacted=["cache"], started=ONSET - timedelta(hours=3), resolved=ONSET - timedelta(hours=2)),
            id="resolved-before-onset",
        ),
        pytest.param(
            incident("INC-8", impacted=["cache"], started=ONSET + timedelta(hours=1), resolved=None,
                     status=IncidentStatus.OPEN),
            id="opened-long-after-onset",
        ),
    ],
)
def test_culprits_inactive_incident_is_no_live_signal(old: Incident) -> None:
    report = rank(topology_of(CHAIN), ["web"], incidents=[old])

    assert not any("INC-8" in line for line in by_id(report, "cache"))


# Past incidents


def test_culprits_similar_past_incident_raises_its_root_cause() -> None:
    history = [
        incident("INC-1", root_causes=["cache"], text="checkout slow, cache evictions", tags=["slow_response"]),
        incident("INC-2", root_causes=["db"], text="disk full on database host", tags=["down"]),
    ]

    report = rank(
        topology_of(CHAIN), ["web"], incidents=history, tags=["slow_response"], text="Checkout is slow"
    )

    assert ids(report)[0] == "cache"
    cache = report.culprits[0]
    assert [item.id for item in cache.incidents] == ["INC-1"]
    assert any(line.startswith("root cause of 1 past incident with similar symptoms (INC-1") for line in cache.evidence)
    assert not any("INC-2" in line for line in by_id(report, "db"))


def test_culprits_incident_after_onset_is_not_history() -> None:
    later = incident(
        "INC-3", root_causes=["cache"], text="checkout slow", tags=["slow_response"],
        started=ONSET + timedelta(hours=2), resolved=ONSET + timedelta(hours=3),
    )

    report = rank(topology_of(CHAIN), ["web"], incidents=[later], tags=["slow_response"], text="checkout slow")

    assert by_id(report, "cache") == ["explains 1 of 1 observed symptoms (web)", "2 hops upstream of web"]


# Empty candidates and bad input


@pytest.mark.parametrize(
    ("observed", "reason", "unknown"),
    [
        pytest.param([], "the symptom names no CI; pass at least one CI id", [], id="no-ci"),
        pytest.param(
            ["ghost", "phantom"],
            "none of the symptom CIs (ghost, phantom) is in the topology at 2026-03-02T10:00:00+00:00; check the ids",
            ["ghost", "phantom"],
            id="unknown-cis",
        ),
    ],
)
def test_culprits_without_candidates_returns_reason(observed: list[str], reason: str, unknown: list[str]) -> None:
    report = rank(topology_of(CHAIN), observed)

    assert report.culprits == []
    assert report.reason == reason
    assert report.unknown_ci_ids == unknown
    assert report.candidate_count == 0


def test_culprits_unknown_ci_is_ignored() -> None:
    report = rank(topology_of(CHAIN), ["web", "ghost"])

    assert report.reason is None
    assert report.unknown_ci_ids == ["ghost"]
    assert by_id(report, "web")[0] == "explains 1 of 1 observed symptoms (web)"


def test_culprits_limit_cuts_list_but_counts_all() -> None:
    report = rank(topology_of(CHAIN), ["web"], options=CulpritOptions(limit=2))

    assert len(report.culprits) == 2
    assert report.candidate_count == 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(CulpritOptions(limit=-1), "limit -1 is negative", id="limit"),
        pytest.param(CulpritOptions(max_depth=-2), "max_depth -2 is negative", id="depth"),
        pytest.param(CulpritOptions(change_half_life=timedelta(0)), "change_half_life 0:00:00 is not positive", id="half-life"),
    ],
)
def test_culprits_invalid_options_raise(options: CulpritOptions, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rank(topology_of(CHAIN), ["web"], options=options)


# Time handling


def test_symptom_naive_onset_raises_naming_field() -> None:
    with pytest.raises(ValueError, match="started_at 2026-03-02T10:00:00 has no time zone"):
        Symptom(("web",), datetime(2026, 3, 2, 10, 0))


def test_event_index_naive_change_time_raises() -> None:
    naive = Change("CHG-9", "Naive", ChangeKind.DEPLOY, ChangeStatus.COMPLETED, ("db",),
                   actual_start=datetime(2026, 3, 2, 9, 0))

    with pytest.raises(ValueError, match="change CHG-9 actual_start 2026-03-02T09:00:00 has no time zone"):
        build_event_index([naive], [])


def test_event_index_naive_incident_time_raises() -> None:
    naive = Incident("INC-9", "Naive", Severity.LOW, IncidentStatus.OPEN, datetime(2026, 3, 2, 9, 0))

    with pytest.raises(ValueError, match="incident INC-9 started_at"):
        build_event_index([], [naive])


def test_symptom_onset_other_zone_same_moment() -> None:
    paris = timezone(timedelta(hours=1))
    recorded = [change("C1", "db", ended_before=12)]

    in_utc = rank(topology_of(CHAIN), ["web"], changes=recorded)
    in_paris = rank(topology_of(CHAIN), ["web"], changes=recorded, onset=ONSET.astimezone(paris))

    assert in_paris.culprits == in_utc.culprits
    assert Symptom(("web",), ONSET.astimezone(paris)).started_at.tzinfo == UTC


def test_culprits_relationship_added_after_onset_is_not_walked() -> None:
    topology = topology_of(CHAIN, edge_valid_from={("app", "cache"): ONSET + timedelta(days=1)})

    report = rank(topology, ["web"])

    assert "cache" not in ids(report)


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        pytest.param(0.4, "less than a minute", id="seconds"),
        pytest.param(12.2, "12 min", id="minutes"),
        pytest.param(119.0, "119 min", id="just-under-two-hours"),
        pytest.param(180.0, "3 h", id="whole-hours"),
        pytest.param(185.0, "3 h 5 min", id="hours-and-minutes"),
    ],
)
def test_format_minutes(minutes: float, text: str) -> None:
    assert format_minutes(minutes) == text


def test_culprits_scores_are_finite_and_descending() -> None:
    report = rank(
        topology_of(CHAIN), ["web", "portal"], changes=[change("C1", "disk")], statuses={"app": Status.DEGRADED}
    )

    scores = [culprit.score for culprit in report.culprits]
    assert all(math.isfinite(value) for value in scores)
    assert scores == sorted(scores, reverse=True)


def test_culprits_status_given_as_text_counts() -> None:
    report = rank(topology_of(CHAIN), ["web"], statuses={"db": "degraded"})  # type: ignore[dict-item]

    assert ids(report)[0] == "db"
    assert "status degraded while every CI it depends on is healthy" in by_id(report, "db")
