"""Blast radius on hand-made graphs in both stores, and on generated graphs against the networkx oracle."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from importers.native import parse_bundle
from service.analysis.blast_radius import (
    BlastRadius,
    BlastRadiusOptions,
    Impact,
    blast_radius,
    business_services_reached,
    path_to,
)
from service.analysis.topology import Topology, build_topology
from service.loader import load
from service.model import CI, Redundancy, Relationship, RelationshipType, Strength
from service.records import ImportBatch, Origin
from service.snapshot import SnapshotCache
from service.store.base import GraphStore, TopologyData
from tests.oracle import (
    ReferenceRadius,
    impact_graph,
    path_errors,
    reference_blast_radius,
    reference_business_ancestors,
)

# Building hand-made graphs


def rel(source: str, type_: str, target: str, **fields: Any) -> dict[str, Any]:
    """Return a relationship record; ``group`` with ``min_available`` or ``percent`` makes it redundant."""
    record: dict[str, Any] = {"source": source, "type": type_, "target": target}
    group = fields.pop("group", None)
    if group is not None:
        redundancy: dict[str, Any] = {"group": group}
        if "min_available" in fields:
            redundancy["min_available"] = fields.pop("min_available")
        if "percent" in fields:
            redundancy["min_available_percent"] = fields.pop("percent")
        record["redundancy"] = redundancy
    record.update(fields)
    return record


def make_bundle(
    relationships: list[dict[str, Any]],
    *,
    types: dict[str, str] | None = None,
    cis: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return a bundle with one CI per id named in the relationships (type ``service`` unless given)."""
    types = types or {}
    cis = cis or {}
    ids = dict.fromkeys(end for r in relationships for end in (r["source"], r["target"]))
    return {
        "cis": [{"id": ci_id, "type": types.get(ci_id, "service"), **cis.get(ci_id, {})} for ci_id in ids],
        "relationships": relationships,
    }


def load_bundle(store: GraphStore, bundle: dict[str, Any]) -> Topology:
    batch = parse_bundle(bundle, "test-bundle")
    assert not batch.problems, batch.problems
    load(store, batch)
    return SnapshotCache(store).current()


def oracle_graph(bundle: dict[str, Any]) -> Any:
    batch = parse_bundle(bundle, "test-bundle")
    assert not batch.problems, batch.problems
    return impact_graph([ci for ci, _ in batch.cis], [r for r, _ in batch.relationships])


def outcome(topology: Topology, radius: BlastRadius) -> dict[str, tuple[str, int]]:
    """Return impact name and distance of every listed CI, keyed by id."""
    return {
        topology.ids[node]: (Impact(level).name, int(distance))
        for node, level, distance in zip(radius.impacted, radius.impact, radius.distance, strict=True)
    }


def listed_ids(topology: Topology, radius: BlastRadius) -> list[str]:
    return [topology.ids[node] for node in radius.impacted]


def reference_outcome(reference: ReferenceRadius) -> dict[str, tuple[str, int]]:
    return {node: (reference.impact[node].name, reference.distance[node]) for node in reference.impact}


# Impact rules on tiny graphs

TRUNKS = [
    rel("pbx", "DEPENDS_ON", "trunk-1", group="trunks", min_available=1),
    rel("pbx", "DEPENDS_ON", "trunk-2", group="trunks", min_available=1),
    rel("call-center", "DEPENDS_ON", "pbx"),
]
MEDIA = [rel("conference", "DEPENDS_ON", f"media-{i}", group="media", percent=75) for i in range(1, 5)]
REPLICAS_ALL_NEEDED = [
    rel("reports", "DEPENDS_ON", "replica-1", group="replicas", min_available=2, strength="soft"),
    rel("reports", "DEPENDS_ON", "replica-2", group="replicas", min_available=2, strength="soft"),
]
REPLICAS_ONE_NEEDED = [
    rel("reports", "DEPENDS_ON", "replica-1", group="replicas", min_available=1, strength="soft"),
    rel("reports", "DEPENDS_ON", "replica-2", group="replicas", min_available=1, strength="soft"),
]
CYCLE = [
    rel("a", "DEPENDS_ON", "b"),
    rel("b", "DEPENDS_ON", "c"),
    rel("c", "DEPENDS_ON", "a"),
    rel("d", "DEPENDS_ON", "c"),
]
WEB_CHAIN = [rel("web", "DEPENDS_ON", "app"), rel("app", "DEPENDS_ON", "db")]
MIXED_TYPES = [
    rel("app", "RUNS_ON", "host"),
    rel("app", "DEPENDS_ON", "db"),
    rel("web", "DEPENDS_ON", "app"),
]
# x needs one of f and b; b is two hops from f, so a depth limit of 1 hides that b is down.
DEPTH_HIDES_PROVIDER = [
    rel("x", "DEPENDS_ON", "f", group="pair", min_available=1),
    rel("x", "DEPENDS_ON", "b", group="pair", min_available=1),
    rel("a", "DEPENDS_ON", "f"),
    rel("b", "DEPENDS_ON", "a"),
]
TRUNKS_MIXED_TYPES = [
    rel("pbx", "DEPENDS_ON", "trunk-1", group="trunks", min_available=1),
    rel("pbx", "CONNECTS_TO", "trunk-2", group="trunks", min_available=1),
]

IMPACT_CASES = [
    pytest.param(WEB_CHAIN, ["db"], {}, {"app": ("DOWN", 1), "web": ("DOWN", 2)}, id="hard-chain-all-down"),
    pytest.param(
        [rel("app", "RUNS_ON", "vm"), rel("vm", "HOSTED_ON", "host"), rel("app", "CONNECTS_TO", "lb")],
        ["host"],
        {},
        {"vm": ("DOWN", 1), "app": ("DOWN", 2)},
        id="runs-on-hosted-on-chain",
    ),
    pytest.param(
        [
            rel("app", "DEPENDS_ON", "db", strength="soft"),
            rel("web", "DEPENDS_ON", "app"),
            rel("mobile", "DEPENDS_ON", "web", strength="soft"),
            rel("batch", "DEPENDS_ON", "mobile", strength="soft"),
            rel("archive", "DEPENDS_ON", "batch"),
        ],
        ["db"],
        {},
        {
            "app": ("DEGRADED", 1),
            "web": ("DEGRADED", 2),
            "mobile": ("AT_RISK", 3),
            "batch": ("AT_RISK", 4),
            "archive": ("AT_RISK", 5),
        },
        id="soft-edge-degraded-then-at-risk",
    ),
    pytest.param(
        [rel("app", "DEPENDS_ON", "db", strength="soft"), rel("app", "DEPENDS_ON", "cache", strength="soft")],
        ["db", "cache"],
        {},
        {"app": ("DEGRADED", 1)},
        id="soft-edges-never-down",
    ),
    pytest.param(
        [
            rel("app", "DEPENDS_ON", "db", strength="soft"),
            rel("app", "DEPENDS_ON", "cache"),
            rel("cache", "DEPENDS_ON", "db"),
        ],
        ["db"],
        {},
        {"cache": ("DOWN", 1), "app": ("DOWN", 1)},
        id="worst-rule-wins-over-shorter-soft-edge",
    ),
    pytest.param(
        TRUNKS,
        ["trunk-1"],
        {},
        {"pbx": ("DEGRADED", 1), "call-center": ("DEGRADED", 2)},
        id="count-group-one-of-two-down",
    ),
    pytest.param(
        TRUNKS,
        ["trunk-1", "trunk-2"],
        {},
        {"pbx": ("DOWN", 1), "call-center": ("DOWN", 2)},
        id="count-group-both-down",
    ),
    pytest.param(MEDIA, ["media-1"], {}, {"conference": ("DEGRADED", 1)}, id="percent-group-3-of-4-remain"),
    pytest.param(MEDIA, ["media-1", "media-3"], {}, {"conference": ("DOWN", 1)}, id="percent-group-2-of-4-remain"),
    pytest.param(REPLICAS_ALL_NEEDED, ["replica-1"], {}, {"reports": ("DEGRADED", 1)}, id="soft-group-below-minimum"),
    pytest.param(REPLICAS_ONE_NEEDED, ["replica-1"], {}, {"reports": ("AT_RISK", 1)}, id="soft-group-at-minimum"),
    pytest.param(
        REPLICAS_ONE_NEEDED, ["replica-1", "replica-2"], {}, {"reports": ("DEGRADED", 1)}, id="soft-group-all-down"
    ),
    pytest.param(
        [*TRUNKS, rel("trunk-1", "DEPENDS_ON", "carrier", strength="soft")],
        ["carrier"],
        {},
        {"trunk-1": ("DEGRADED", 1), "pbx": ("DEGRADED", 2), "call-center": ("DEGRADED", 3)},
        id="hard-group-member-degraded",
    ),
    pytest.param(
        [
            *TRUNKS,
            rel("trunk-1", "DEPENDS_ON", "carrier", strength="soft"),
            rel("carrier", "DEPENDS_ON", "core", strength="soft"),
        ],
        ["core"],
        {},
        {
            "carrier": ("DEGRADED", 1),
            "trunk-1": ("AT_RISK", 2),
            "pbx": ("AT_RISK", 3),
            "call-center": ("AT_RISK", 4),
        },
        id="hard-group-member-at-risk",
    ),
    pytest.param(
        [
            rel("pbx", "DEPENDS_ON", "power", strength="soft"),
            rel("pbx", "DEPENDS_ON", "trunk-1", group="trunks", min_available=3),
            rel("pbx", "DEPENDS_ON", "trunk-2", group="trunks", min_available=3),
        ],
        ["power"],
        {},
        {"pbx": ("DEGRADED", 1)},
        id="group-short-before-failure-not-blamed",
    ),
    pytest.param(
        [
            rel("pbx", "DEPENDS_ON", "trunk-1", group="trunks", min_available=3),
            rel("pbx", "DEPENDS_ON", "trunk-2", group="trunks", min_available=3),
        ],
        ["trunk-1"],
        {},
        {"pbx": ("DOWN", 1)},
        id="group-short-and-member-down",
    ),
    pytest.param(
        [rel("checkout", "PART_OF", "shop"), rel("payment", "PART_OF", "shop")],
        ["checkout"],
        {},
        {"shop": ("DOWN", 1)},
        id="part-of-component-fails",
    ),
    pytest.param(
        [rel("checkout", "PART_OF", "shop"), rel("payment", "PART_OF", "shop")],
        ["shop"],
        {},
        {},
        id="part-of-whole-fails",
    ),
    pytest.param(
        [rel("payment", "DEPENDS_ON", "db"), rel("payment", "PART_OF", "shop")],
        ["db"],
        {},
        {"payment": ("DOWN", 1), "shop": ("DOWN", 2)},
        id="part-of-after-depends-on",
    ),
    pytest.param(CYCLE, ["a"], {}, {"c": ("DOWN", 1), "b": ("DOWN", 2), "d": ("DOWN", 2)}, id="cycle"),
    pytest.param(
        [*WEB_CHAIN, rel("report", "DEPENDS_ON", "cache")],
        ["db", "cache"],
        {},
        {"app": ("DOWN", 1), "web": ("DOWN", 2), "report": ("DOWN", 1)},
        id="two-failed-two-chains",
    ),
    pytest.param(
        [*WEB_CHAIN, rel("web", "DEPENDS_ON", "cache", strength="soft")],
        ["db", "cache"],
        {},
        {"app": ("DOWN", 1), "web": ("DOWN", 1)},
        id="two-failed-nearest-distance",
    ),
    pytest.param(WEB_CHAIN, ["db", "app"], {}, {"web": ("DOWN", 1)}, id="failed-consumer-not-listed"),
    pytest.param(WEB_CHAIN, ["db"], {"max_depth": 0}, {}, id="max-depth-0"),
    pytest.param(WEB_CHAIN, ["db"], {"max_depth": 1}, {"app": ("DOWN", 1)}, id="max-depth-1"),
    pytest.param(WEB_CHAIN, ["db"], {"max_depth": 2}, {"app": ("DOWN", 1), "web": ("DOWN", 2)}, id="max-depth-2"),
    pytest.param(
        DEPTH_HIDES_PROVIDER,
        ["f"],
        {},
        {"x": ("DOWN", 1), "a": ("DOWN", 1), "b": ("DOWN", 2)},
        id="depth-unlimited-sees-both-providers",
    ),
    pytest.param(
        DEPTH_HIDES_PROVIDER,
        ["f"],
        {"max_depth": 1},
        {"x": ("DEGRADED", 1), "a": ("DOWN", 1)},
        id="depth-limit-hides-provider",
    ),
    pytest.param(MIXED_TYPES, ["host"], {"relationship_types": ["DEPENDS_ON"]}, {}, id="types-filter-excludes"),
    pytest.param(
        MIXED_TYPES, ["host"], {"relationship_types": ["RUNS_ON"]}, {"app": ("DOWN", 1)}, id="types-filter-stops-walk"
    ),
    pytest.param(
        MIXED_TYPES,
        ["host"],
        {"relationship_types": ["RUNS_ON", "DEPENDS_ON"]},
        {"app": ("DOWN", 1), "web": ("DOWN", 2)},
        id="types-filter-two-types",
    ),
    pytest.param(
        TRUNKS_MIXED_TYPES,
        ["trunk-1", "trunk-2"],
        {"relationship_types": ["DEPENDS_ON"]},
        {"pbx": ("DEGRADED", 1)},
        id="types-filter-unfollowed-member-counts-as-up",
    ),
    pytest.param(TRUNKS_MIXED_TYPES, ["trunk-1", "trunk-2"], {}, {"pbx": ("DOWN", 1)}, id="group-of-two-types"),
]


@pytest.mark.parametrize(("relationships", "failed", "options", "expected"), IMPACT_CASES)
def test_blast_radius_impacts(
    store: GraphStore,
    relationships: list[dict[str, Any]],
    failed: list[str],
    options: dict[str, Any],
    expected: dict[str, tuple[str, int]],
) -> None:
    topology = load_bundle(store, make_bundle(relationships, types={"shop": "business_service"}))

    radius = blast_radius(topology, failed, BlastRadiusOptions(**options))

    assert outcome(topology, radius) == expected


@pytest.mark.parametrize(("relationships", "failed", "options", "expected"), IMPACT_CASES)
def test_oracle_impacts(
    relationships: list[dict[str, Any]],
    failed: list[str],
    options: dict[str, Any],
    expected: dict[str, tuple[str, int]],
) -> None:
    graph = oracle_graph(make_bundle(relationships, types={"shop": "business_service"}))

    reference = reference_blast_radius(graph, failed, **options)

    assert reference_outcome(reference) == expected


def test_blast_radius_cycle_visits_each_ci_once(store: GraphStore) -> None:
    ring = [rel(f"ring-{i}", "DEPENDS_ON", f"ring-{(i + 1) % 6}") for i in range(6)]
    topology = load_bundle(store, make_bundle([*ring, rel("ring-2", "DEPENDS_ON", "ring-5")]))

    radius = blast_radius(topology, ["ring-0"])

    ids = listed_ids(topology, radius)
    assert len(ids) == len(set(ids))
    assert set(ids) == {f"ring-{i}" for i in range(1, 6)}


# Limit, summary and ordering

FAN_OUT = [
    *(rel(f"app-{i}", "DEPENDS_ON", "db") for i in range(5)),
    *(rel(f"batch-{i}", "DEPENDS_ON", "db", strength="soft") for i in range(3)),
    *(rel(f"web-{i}", "DEPENDS_ON", f"app-{i}") for i in range(2)),
    rel("report", "DEPENDS_ON", "batch-0", strength="soft"),
]
FAN_OUT_TYPES = {"report": "report", **{f"batch-{i}": "job" for i in range(3)}}


@pytest.mark.parametrize("limit", [0, 1, 4, 10])
def test_blast_radius_limit_truncates(store: GraphStore, limit: int) -> None:
    topology = load_bundle(store, make_bundle(FAN_OUT, types=FAN_OUT_TYPES))
    full = blast_radius(topology, ["db"])

    radius = blast_radius(topology, ["db"], BlastRadiusOptions(limit=limit))

    assert len(full.impacted) == 11
    assert radius.truncated is True
    assert listed_ids(topology, radius) == listed_ids(topology, full)[:limit]


@pytest.mark.parametrize("limit", [11, 12, None])
def test_blast_radius_limit_not_reached(store: GraphStore, limit: int | None) -> None:
    topology = load_bundle(store, make_bundle(FAN_OUT, types=FAN_OUT_TYPES))

    radius = blast_radius(topology, ["db"], BlastRadiusOptions(limit=limit))

    assert radius.truncated is False
    assert len(radius.impacted) == 11


def test_blast_radius_summary_exact_when_truncated(store: GraphStore) -> None:
    topology = load_bundle(store, make_bundle(FAN_OUT, types=FAN_OUT_TYPES))
    full = blast_radius(topology, ["db"])

    radius = blast_radius(topology, ["db"], BlastRadiusOptions(limit=2))

    assert radius.summary == full.summary
    assert radius.summary.total == 11
    assert radius.summary.by_impact == {Impact.DOWN: 7, Impact.DEGRADED: 3, Impact.AT_RISK: 1}
    assert radius.summary.by_type == {"service": 7, "job": 3, "report": 1}


def test_blast_radius_orders_by_impact_distance_id(store: GraphStore) -> None:
    topology = load_bundle(store, make_bundle(FAN_OUT, types=FAN_OUT_TYPES))

    radius = blast_radius(topology, ["db"])

    assert listed_ids(topology, radius) == [
        "app-0", "app-1", "app-2", "app-3", "app-4", "web-0", "web-1",
        "batch-0", "batch-1", "batch-2",
        "report",
    ]  # fmt: skip


def test_blast_radius_ids_order_by_code_point(store: GraphStore) -> None:
    names = ["b", "B", "a-10", "a-9", "Ärger", "z"]
    topology = load_bundle(store, make_bundle([rel(name, "DEPENDS_ON", "root") for name in names]))

    radius = blast_radius(topology, ["root"])

    assert listed_ids(topology, radius) == sorted(names)


# Explaining paths and business services

PATH_GRAPH = [
    rel("api", "DEPENDS_ON", "db"),
    rel("api", "RUNS_ON", "node-1"),
    rel("node-1", "DEPENDS_ON", "db", strength="soft"),
    rel("worker", "DEPENDS_ON", "api"),
    rel("worker", "RUNS_ON", "node-1"),
    rel("api", "PART_OF", "shop"),
    rel("worker", "PART_OF", "shop"),
    rel("audit", "DEPENDS_ON", "worker"),
]


def test_blast_radius_paths_are_shortest_followed_paths(store: GraphStore) -> None:
    bundle = make_bundle(PATH_GRAPH, types={"shop": "business_service"})
    topology = load_bundle(store, bundle)
    graph = oracle_graph(bundle)

    radius = blast_radius(topology, ["db"])

    assert len(radius.impacted) == 5
    for node, distance in zip(radius.impacted, radius.distance, strict=True):
        path = [topology.ids[step] for step in path_to(radius, int(node))]
        assert path_errors(graph, path, {"db"}, topology.ids[node], int(distance)) == []


def test_blast_radius_path_runs_from_failed_to_impacted(store: GraphStore) -> None:
    topology = load_bundle(store, make_bundle(PATH_GRAPH, types={"shop": "business_service"}))

    radius = blast_radius(topology, ["db"])

    path = [topology.ids[step] for step in path_to(radius, topology.index["shop"])]
    assert path == ["db", "api", "shop"]


def test_blast_radius_path_of_failed_ci_is_itself(store: GraphStore) -> None:
    topology = load_bundle(store, make_bundle(PATH_GRAPH))

    radius = blast_radius(topology, ["db"])

    assert path_to(radius, topology.index["db"]) == [topology.index["db"]]


def test_blast_radius_path_uses_followed_types_only(store: GraphStore) -> None:
    topology = load_bundle(store, make_bundle(PATH_GRAPH))

    radius = blast_radius(topology, ["db"], BlastRadiusOptions(relationship_types=["DEPENDS_ON"]))

    path = [topology.ids[step] for step in path_to(radius, topology.index["audit"])]
    assert path == ["db", "api", "worker", "audit"]


def test_business_services_reached_lists_leading_cis(store: GraphStore) -> None:
    bundle = make_bundle(
        [*PATH_GRAPH, rel("checkout", "PART_OF", "payments"), rel("ledger", "PART_OF", "finance")],
        types={"shop": "business_service", "payments": "transaction", "finance": "business_service"},
    )
    topology = load_bundle(store, bundle)
    radius = blast_radius(topology, ["db"])

    reached = business_services_reached(topology, radius)

    named = {topology.ids[b]: {topology.ids[n] for n in nodes} for b, nodes in reached.items()}
    assert named == {"shop": {"db", "api", "node-1", "worker"}}


def test_business_services_reached_inside_radius_only(store: GraphStore) -> None:
    topology = load_bundle(store, make_bundle(PATH_GRAPH, types={"shop": "business_service"}))
    radius = blast_radius(topology, ["db"], BlastRadiusOptions(relationship_types=["DEPENDS_ON", "RUNS_ON"]))

    reached = business_services_reached(topology, radius)

    assert reached == {}


def test_business_services_reached_skips_failed_business_ci(store: GraphStore) -> None:
    topology = load_bundle(store, make_bundle(PATH_GRAPH, types={"shop": "business_service"}))
    radius = blast_radius(topology, ["db", "shop"])

    reached = business_services_reached(topology, radius)

    assert reached == {}


# Validity at as_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_blast_radius_ci_not_yet_valid(store: GraphStore) -> None:
    bundle = make_bundle(WEB_CHAIN, cis={"web": {"valid_from": iso(T0 + timedelta(days=10))}})
    topology = load_bundle(store, bundle)

    before = blast_radius(topology, ["db"], BlastRadiusOptions(as_of=T0 + timedelta(days=9)))
    at_start = blast_radius(topology, ["db"], BlastRadiusOptions(as_of=T0 + timedelta(days=10)))

    assert outcome(topology, before) == {"app": ("DOWN", 1)}
    assert outcome(topology, at_start) == {"app": ("DOWN", 1), "web": ("DOWN", 2)}


def test_blast_radius_ci_no_longer_valid(store: GraphStore) -> None:
    bundle = make_bundle(WEB_CHAIN, cis={"app": {"valid_until": iso(T0 + timedelta(days=10))}})
    topology = load_bundle(store, bundle)

    before = blast_radius(topology, ["db"], BlastRadiusOptions(as_of=T0 + timedelta(days=9)))
    at_end = blast_radius(topology, ["db"], BlastRadiusOptions(as_of=T0 + timedelta(days=10)))

    assert outcome(topology, before) == {"app": ("DOWN", 1), "web": ("DOWN", 2)}
    assert outcome(topology, at_end) == {}


def test_blast_radius_as_of_follows_valid_relationships(store: GraphStore) -> None:
    window = {"valid_from": iso(T0), "valid_until": iso(T0 + timedelta(days=30))}
    bundle = make_bundle([rel("web", "DEPENDS_ON", "app", **window), rel("app", "DEPENDS_ON", "db")])
    topology = load_bundle(store, bundle)

    inside = blast_radius(topology, ["db"], BlastRadiusOptions(as_of=T0 + timedelta(days=1)))
    before = blast_radius(topology, ["db"], BlastRadiusOptions(as_of=T0 - timedelta(seconds=1)))
    after = blast_radius(topology, ["db"], BlastRadiusOptions(as_of=T0 + timedelta(days=30)))

    assert outcome(topology, inside) == {"app": ("DOWN", 1), "web": ("DOWN", 2)}
    assert outcome(topology, before) == {"app": ("DOWN", 1)}
    assert outcome(topology, after) == {"app": ("DOWN", 1)}


def test_blast_radius_as_of_sizes_groups(store: GraphStore) -> None:
    # 60 % of three media servers is two; once the third is retired on day 10, 60 % of two is two.
    media = [rel("conference", "DEPENDS_ON", f"media-{i}", group="media", percent=60) for i in range(1, 4)]
    media[2]["valid_until"] = iso(T0 + timedelta(days=10))
    topology = load_bundle(store, make_bundle(media))

    with_three = blast_radius(topology, ["media-1"], BlastRadiusOptions(as_of=T0 + timedelta(days=9)))
    with_two = blast_radius(topology, ["media-1"], BlastRadiusOptions(as_of=T0 + timedelta(days=11)))

    assert outcome(topology, with_three) == {"conference": ("DEGRADED", 1)}
    assert outcome(topology, with_two) == {"conference": ("DOWN", 1)}


# Invalid arguments


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param(BlastRadiusOptions(relationship_types=["USES"]), "USES", id="unknown-type"),
        pytest.param(
            BlastRadiusOptions(relationship_types=["DEPENDS_ON", "depends_on"]), "depends_on", id="lower-case-type"
        ),
        pytest.param(BlastRadiusOptions(max_depth=-1), "max_depth -1", id="negative-depth"),
        pytest.param(BlastRadiusOptions(limit=-3), "limit -3", id="negative-limit"),
    ],
)
def test_blast_radius_rejects_invalid_option(store: GraphStore, options: BlastRadiusOptions, match: str) -> None:
    topology = load_bundle(store, make_bundle(WEB_CHAIN))

    with pytest.raises(ValueError, match=match):
        blast_radius(topology, ["db"], options)


def test_blast_radius_unknown_failed_id(store: GraphStore) -> None:
    topology = load_bundle(store, make_bundle(WEB_CHAIN))

    with pytest.raises(KeyError, match="no-such-ci"):
        blast_radius(topology, ["db", "no-such-ci"])


# Generated graphs against the oracle

CI_TYPES = ["service", "application", "host", "database", "queue", "sip_trunk", "business_service", "transaction"]
TYPE_NAMES = [t.value for t in RelationshipType]
PERCENTS = [25.0, 33.33, 50.0, 66.67, 75.0, 100.0]


@dataclass
class GeneratedGraph:
    cis: list[CI]
    relationships: list[Relationship]
    moments: list[datetime] = field(default_factory=list)


@dataclass(frozen=True)
class Query:
    failed: list[str]
    max_depth: int | None
    relationship_types: list[str] | None
    as_of: datetime | None


def _window(rng: random.Random, moments: list[datetime]) -> tuple[datetime | None, datetime | None]:
    start = T0 + timedelta(days=rng.randint(0, 20)) if rng.random() < 0.6 else None
    end = T0 + timedelta(days=rng.randint(21, 40)) if rng.random() < 0.6 else None
    moments.extend(moment for moment in (start, end) if moment is not None)
    return start, end


def generate_graph(seed: int, min_size: int = 20, max_size: int = 300) -> GeneratedGraph:
    """Build a random topology with hard and soft edges, redundancy groups, cycles and PART_OF edges."""
    rng = random.Random(seed)
    size = rng.randint(min_size, max_size)
    timed = rng.random() < 0.4
    moments: list[datetime] = []
    ids = [f"{rng.choice(['app', 'db', 'Host', 'svc', 'ü-node', 'q'])}-{i:03d}" for i in range(size)]
    rng.shuffle(ids)

    cis = []
    for ci_id in ids:
        start, end = _window(rng, moments) if timed and rng.random() < 0.1 else (None, None)
        cis.append(CI(id=ci_id, name=ci_id, type=rng.choice(CI_TYPES), valid_from=start, valid_until=end))

    relationships: dict[tuple[str, str, str], Relationship] = {}

    def add(provider: str, consumer: str, type_name: str, **fields: Any) -> None:
        type_ = RelationshipType(type_name)
        source, target = (provider, consumer) if type_.provider_is_source else (consumer, provider)
        if provider == consumer or (source, target, type_name) in relationships:
            return
        if timed and rng.random() < 0.15:
            fields["valid_from"], fields["valid_until"] = _window(rng, moments)
        relationships[(source, target, type_name)] = Relationship(source, target, type_, **fields)

    for _ in range(rng.randint(size, 3 * size)):
        type_name = "PART_OF" if rng.random() < 0.15 else rng.choice(TYPE_NAMES[:4])
        strength = Strength.SOFT if rng.random() < 0.3 else Strength.HARD
        add(rng.choice(ids), rng.choice(ids), type_name, strength=strength)

    cycle = rng.sample(ids, rng.randint(2, 6))
    for provider, consumer in zip(cycle, cycle[1:] + cycle[:1]):
        add(provider, consumer, "DEPENDS_ON")

    for consumer in rng.sample(ids, max(1, size // 8)):
        members = rng.sample(ids, rng.randint(2, 5))
        if rng.random() < 0.5:
            # The minimum may exceed the group size: a group already short of providers.
            redundancy = Redundancy(f"g-{consumer}", min_available=rng.randint(1, len(members) + 1))
        else:
            redundancy = Redundancy(f"g-{consumer}", min_available_percent=rng.choice(PERCENTS))
        strength = Strength.SOFT if rng.random() < 0.3 else Strength.HARD
        for provider in members:
            type_name = rng.choice(["DEPENDS_ON", "DEPENDS_ON", "CONNECTS_TO", "PART_OF"])
            add(provider, consumer, type_name, strength=strength, redundancy=redundancy)

    return GeneratedGraph(cis, list(relationships.values()), sorted(set(moments)))


def generate_queries(seed: int, graph: GeneratedGraph, count: int = 4) -> list[Query]:
    rng = random.Random(seed * 7919 + 1)
    ids = [ci.id for ci in graph.cis]
    queries = []
    for _ in range(count):
        failed = rng.sample(ids, rng.randint(1, 5))
        max_depth = None if rng.random() < 0.5 else rng.randint(0, 6)
        types = None if rng.random() < 0.6 else rng.sample(TYPE_NAMES, rng.randint(1, len(TYPE_NAMES)))
        as_of = None
        if graph.moments and rng.random() < 0.7:
            moment = rng.choice(graph.moments)
            as_of = moment + rng.choice([timedelta(0), timedelta(seconds=-1), timedelta(hours=12)])
        queries.append(Query(failed, max_depth, types, as_of))
    return queries


def topology_data(cis: list[CI], relationships: list[Relationship], version: int = 1) -> TopologyData:
    """Return the bulk topology of model objects, as a store's ``load_topology`` would."""
    position = {ci.id: i for i, ci in enumerate(cis)}

    def epoch(moment: datetime | None) -> float:
        return np.nan if moment is None else moment.timestamp()

    def redundancy_number(relationship: Relationship, name: str) -> float:
        value = getattr(relationship.redundancy, name, None) if relationship.redundancy else None
        return np.nan if value is None else float(value)

    return TopologyData(
        version=version,
        ids=[ci.id for ci in cis],
        types=[ci.type for ci in cis],
        node_valid_from=np.array([epoch(ci.valid_from) for ci in cis], dtype=np.float64),
        node_valid_until=np.array([epoch(ci.valid_until) for ci in cis], dtype=np.float64),
        edge_source=np.array([position[r.source] for r in relationships], dtype=np.int64),
        edge_target=np.array([position[r.target] for r in relationships], dtype=np.int64),
        edge_type=[r.type.value for r in relationships],
        edge_hard=np.array([r.strength is Strength.HARD for r in relationships], dtype=bool),
        edge_group=[r.redundancy.group if r.redundancy else None for r in relationships],
        edge_min_available=np.array([redundancy_number(r, "min_available") for r in relationships]),
        edge_min_percent=np.array([redundancy_number(r, "min_available_percent") for r in relationships]),
        edge_valid_from=np.array([epoch(r.valid_from) for r in relationships], dtype=np.float64),
        edge_valid_until=np.array([epoch(r.valid_until) for r in relationships], dtype=np.float64),
    )


def assert_matches_oracle(topology: Topology, graph: Any, query: Query) -> None:
    """Compare the numpy blast radius of one query with the oracle, with paths, order, summary and limit."""
    options = BlastRadiusOptions(
        max_depth=query.max_depth, relationship_types=query.relationship_types, as_of=query.as_of
    )
    radius = blast_radius(topology, query.failed, options)
    reference = reference_blast_radius(
        graph,
        query.failed,
        max_depth=query.max_depth,
        relationship_types=query.relationship_types,
        as_of=query.as_of,
    )

    assert outcome(topology, radius) == reference_outcome(reference), query
    assert {topology.ids[node] for node in np.flatnonzero(radius.reached)} == reference.reached

    walk = {"relationship_types": query.relationship_types, "as_of": query.as_of}
    for node, distance in zip(radius.impacted, radius.distance, strict=True):
        path = [topology.ids[step] for step in path_to(radius, int(node))]
        assert path_errors(graph, path, set(query.failed), topology.ids[node], int(distance), **walk) == []

    ids = listed_ids(topology, radius)
    assert ids == sorted(ids, key=lambda ci_id: (-reference.impact[ci_id], reference.distance[ci_id], ci_id))
    assert radius.summary.by_impact == {level: Counter(reference.impact.values())[level] for level in Impact}
    expected_types = Counter(graph.nodes[ci_id]["type"] for ci_id in reference.impact)
    assert radius.summary.by_type == dict(expected_types)

    business = business_services_reached(topology, radius)
    named = {topology.ids[b]: {topology.ids[n] for n in nodes} for b, nodes in business.items()}
    assert named == reference_business_ancestors(graph, reference, set(query.failed), **walk)

    limit = len(ids) // 2
    limited = blast_radius(topology, query.failed, dataclasses.replace(options, limit=limit))
    assert listed_ids(topology, limited) == ids[:limit]
    assert limited.truncated is (len(ids) > limit)
    assert limited.summary == radius.summary


GENERATED_SEEDS = list(range(1, 31))


@pytest.mark.parametrize("seed", GENERATED_SEEDS)
def test_blast_radius_matches_oracle(seed: int) -> None:
    generated = generate_graph(seed)
    topology = build_topology(topology_data(generated.cis, generated.relationships))
    graph = impact_graph(generated.cis, generated.relationships)

    for query in generate_queries(seed, generated):
        assert_matches_oracle(topology, graph, query)


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_blast_radius_matches_oracle_in_store(store: GraphStore, seed: int) -> None:
    generated = generate_graph(seed, max_size=120)
    batch = ImportBatch(
        cis=[(ci, Origin("generated", ci.id)) for ci in generated.cis],
        relationships=[(r, Origin("generated", r.id)) for r in generated.relationships],
    )
    load(store, batch)
    topology = SnapshotCache(store).current()
    graph = impact_graph(generated.cis, generated.relationships)

    for query in generate_queries(seed, generated):
        assert_matches_oracle(topology, graph, query)
