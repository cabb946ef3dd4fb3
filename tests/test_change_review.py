"""Change review on tiny hand-made graphs: radius, collisions, past incidents, risk and reviewers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from service.analysis.blast_radius import Impact, blast_radius
from service.analysis.change_review import ChangeReview, ChangeReviewOptions, change_window, review_change
from service.analysis.events import build_event_index
from service.analysis.topology import Topology, build_topology
from service.model import Change, ChangeKind, ChangeStatus, Incident, IncidentStatus, Risk, Severity
from service.store.base import TopologyData

START = datetime(2026, 5, 4, 20, 0, tzinfo=UTC)


def topology_of(dependencies: Sequence[tuple[str, str]], *, business: Sequence[str] = ()) -> Topology:
    """Build a topology where each ``(consumer, provider)`` pair is ``consumer DEPENDS_ON provider``."""
    ids = sorted({ci for pair in dependencies for ci in pair})
    position = {ci_id: i for i, ci_id in enumerate(ids)}
    count = len(dependencies)
    data = TopologyData(
        version=1,
        ids=ids,
        types=["business_service" if ci_id in business else "service" for ci_id in ids],
        node_valid_from=np.full(len(ids), np.nan),
        node_valid_until=np.full(len(ids), np.nan),
        edge_source=np.array([position[c] for c, _ in dependencies], dtype=np.int64),
        edge_target=np.array([position[p] for _, p in dependencies], dtype=np.int64),
        edge_type=["DEPENDS_ON"] * count,
        edge_hard=np.ones(count, dtype=bool),
        edge_group=[None] * count,
        edge_min_available=np.full(count, np.nan),
        edge_min_percent=np.full(count, np.nan),
        edge_valid_from=np.full(count, np.nan),
        edge_valid_until=np.full(count, np.nan),
    )
    return build_topology(data)


def change(
    change_id: str,
    affected: Sequence[str],
    *,
    start: float = 0.0,
    end: float | None = 60.0,
    risk: Risk = Risk.LOW,
    kind: ChangeKind = ChangeKind.CONFIG,
    status: ChangeStatus = ChangeStatus.APPROVED,
) -> Change:
    """Return a change planned from ``start`` to ``end`` minutes after START (None: no end)."""
    return Change(
        id=change_id,
        title=f"Change {change_id}",
        kind=kind,
        status=status,
        affected=tuple(affected),
        risk=risk,
        planned_start=START + timedelta(minutes=start),
        planned_end=None if end is None else START + timedelta(minutes=end),
    )


def caused(incident_id: str, change_id: str) -> Incident:
    return Incident(
        id=incident_id,
        title=f"Incident {incident_id}",
        severity=Severity.HIGH,
        status=IncidentStatus.CLOSED,
        started_at=START - timedelta(days=40),
        resolved_at=START - timedelta(days=39),
        caused_by_change=change_id,
    )


def review(
    topology: Topology,
    reviewed: Change,
    others: Sequence[Change] = (),
    incidents: Sequence[Incident] = (),
    options: ChangeReviewOptions | None = None,
) -> ChangeReview:
    return review_change(topology, reviewed, build_event_index(others, incidents), options)


# shop (business) -> web -> app -> db; report -> db; app -> cache
SHOP = topology_of(
    [("shop", "web"), ("web", "app"), ("app", "db"), ("report", "db"), ("app", "cache")], business=["shop"]
)


def test_review_radius_is_blast_radius_of_affected_cis() -> None:
    result = review(SHOP, change("CHG-1", ["db"]))

    expected = blast_radius(SHOP, ["db"])
    assert result.impacted_ci_ids == [SHOP.ids[node] for node in expected.impacted]
    assert set(result.impacted_ci_ids) == {"app", "web", "shop", "report"}
    assert result.business_impact == {"shop": Impact.DOWN}


def test_review_unknown_affected_ci_is_listed() -> None:
    result = review(SHOP, change("CHG-1", ["ghost"]))

    assert result.radius is None
    assert result.unknown_ci_ids == ["ghost"]
    assert result.impacted_ci_ids == []
    assert result.reviewer_ci_ids == []


@pytest.mark.parametrize(
    ("other", "shared", "impacted"),
    [
        pytest.param(change("CHG-2", ["db"], start=30, end=90), ["db"], [], id="same-ci-overlapping"),
        pytest.param(change("CHG-2", ["web"], start=-30, end=10), [], ["web"], id="impacted-ci-overlapping"),
        pytest.param(change("CHG-2", ["db", "web"], start=10, end=20), ["db"], ["web"], id="both"),
        pytest.param(change("CHG-2", ["db"], start=-200, end=None), ["db"], [], id="open-ended-still-running"),
    ],
)
def test_review_collision_found(other: Change, shared: list[str], impacted: list[str]) -> None:
    result = review(SHOP, change("CHG-1", ["db"]), [other])

    assert [item.change.id for item in result.collisions] == ["CHG-2"]
    assert result.collisions[0].shared_ci_ids == shared
    assert result.collisions[0].impacted_ci_ids == impacted


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(change("CHG-2", ["db"], start=60, end=120), id="starts-when-reviewed-ends"),
        pytest.param(change("CHG-2", ["db"], start=-120, end=0), id="ends-when-reviewed-starts"),
        pytest.param(change("CHG-2", ["db"], start=-300, end=None), id="open-ended-over-before-start"),
        pytest.param(change("CHG-2", ["db"], start=10, status=ChangeStatus.CANCELLED), id="cancelled"),
        pytest.param(change("CHG-2", ["cache"], start=10), id="unrelated-provider"),
        pytest.param(change("CHG-1", ["db"], start=10), id="same-change-id"),
    ],
)
def test_review_no_collision(other: Change) -> None:
    result = review(SHOP, change("CHG-1", ["db"]), [other])

    assert result.collisions == []


def test_review_collision_reason_names_change_overlap_and_assumption() -> None:
    other = change("CHG-2", ["db"], start=-200, end=None, risk=Risk.HIGH)

    result = review(SHOP, change("CHG-1", ["db"]), [other])

    assert result.collisions[0].reason == (
        "config CHG-2 'Change CHG-2' (approved, risk high) also changes db; the windows overlap by 40 min, "
        "assuming it runs 4 h as it has no end"
    )


@pytest.mark.parametrize(
    ("reviewed", "start", "end", "assumed"),
    [
        pytest.param(change("C", ["db"], start=0, end=30), START, START + timedelta(minutes=30), False, id="planned"),
        pytest.param(change("C", ["db"], start=0, end=None), START, START + timedelta(hours=4), True, id="no-end"),
        pytest.param(
            Change("C", "t", ChangeKind.DEPLOY, ChangeStatus.COMPLETED, ("db",),
                   planned_start=START, planned_end=START + timedelta(hours=1),
                   actual_start=START + timedelta(minutes=5), actual_end=START + timedelta(minutes=20)),
            START + timedelta(minutes=5), START + timedelta(minutes=20), False, id="actual-over-planned",
        ),
    ],
)
def test_change_window(reviewed: Change, start: datetime, end: datetime, assumed: bool) -> None:
    window = change_window(reviewed)

    assert window is not None
    assert (window.start, window.end, window.assumed_end) == (start, end, assumed)


def test_change_window_without_start_is_none() -> None:
    undated = Change("CHG-1", "Undated", ChangeKind.CONFIG, ChangeStatus.PLANNED, ("db",))

    result = review(SHOP, undated, [change("CHG-2", ["db"])])

    assert change_window(undated) is None
    assert result.window is None
    assert result.collisions == []


def test_review_open_ended_duration_option() -> None:
    other = change("CHG-2", ["db"], start=-200, end=None)

    result = review(SHOP, change("CHG-1", ["db"]), [other], options=ChangeReviewOptions(open_ended=timedelta(hours=2)))

    assert result.collisions == []


def test_review_naive_time_raises_naming_field() -> None:
    naive = Change("CHG-1", "Naive", ChangeKind.CONFIG, ChangeStatus.PLANNED, ("db",),
                   planned_start=datetime(2026, 5, 4, 20, 0))

    with pytest.raises(ValueError, match="change CHG-1 planned_start 2026-05-04T20:00:00 has no time zone"):
        review(SHOP, naive)


def test_review_past_incidents_of_affected_cis() -> None:
    history = [change("OLD-1", ["db", "cache"], start=-90 * 24 * 60, end=-90 * 24 * 60 + 30),
               change("OLD-2", ["web"], start=-80 * 24 * 60, end=-80 * 24 * 60 + 30)]
    incidents = [caused("INC-1", "OLD-1"), caused("INC-2", "OLD-2")]

    result = review(SHOP, change("CHG-1", ["db"]), history, incidents)

    assert [item.incident.id for item in result.past_incidents] == ["INC-1"]
    assert result.past_incidents[0].ci_ids == ["db"]
    assert result.past_incidents[0].reason == (
        "high incident INC-1 'Incident INC-1' was caused by change OLD-1, which also changed db"
    )


@pytest.mark.parametrize(
    ("reviewed", "others", "incidents", "risk"),
    [
        pytest.param(change("C", ["report"]), [], [], Risk.LOW, id="no-business-reached"),
        pytest.param(change("C", ["db"]), [], [], Risk.MEDIUM, id="business-down"),
        pytest.param(change("C", ["db"], kind=ChangeKind.DATABASE), [], [], Risk.MEDIUM, id="database-kind"),
        pytest.param(change("C", ["db"], risk=Risk.MEDIUM, kind=ChangeKind.DATABASE), [], [], Risk.HIGH,
                     id="medium-database-business-down"),
        pytest.param(change("C", ["db"], risk=Risk.HIGH), [change("X", ["db"], start=10)], [], Risk.CRITICAL,
                     id="high-with-collision"),
        pytest.param(change("C", ["cache"], risk=Risk.CRITICAL), [], [], Risk.CRITICAL, id="never-below-own"),
        pytest.param(
            change("C", ["report"]),
            [change(f"OLD-{n}", ["report"], start=-5000 - n, end=-4990 - n) for n in range(3)],
            [caused(f"INC-{n}", f"OLD-{n}") for n in range(3)],
            Risk.MEDIUM,
            id="three-past-incidents",
        ),
    ],
)
def test_review_risk_rating(reviewed: Change, others: list[Change], incidents: list[Incident], risk: Risk) -> None:
    result = review(SHOP, reviewed, others, incidents)

    assert result.risk is risk
    assert result.risk_reason.startswith(f"rated {risk.value} because the change itself is rated {reviewed.risk.value} risk")


def test_review_risk_reasons_name_each_factor() -> None:
    reviewed = change("C", ["db"], risk=Risk.MEDIUM, kind=ChangeKind.DATABASE)

    result = review(SHOP, reviewed, [change("X", ["web"], start=10)], [])

    assert result.reasons == [
        "the change itself is rated medium risk",
        "it is a database change, and those touch infrastructure that many CIs share",
        "if it fails it takes down 1 business service(s) or transaction(s): shop",
        "it overlaps in time with change(s) X on CIs it could impact",
    ]
    # 1 (medium) + 1 (database) + 2 (business down) + 1 (collision) = 5 points.
    assert result.risk is Risk.HIGH


def test_review_reviewers_are_affected_down_and_business_cis() -> None:
    topology = topology_of(
        [("shop", "web"), ("web", "app"), ("app", "db"), ("app", "cache"), ("bi", "db")], business=["shop"]
    )

    result = review(topology, change("C", ["cache"]))

    assert result.reviewer_ci_ids == ["cache", "app", "web", "shop"]
    assert "bi" not in result.reviewer_ci_ids
