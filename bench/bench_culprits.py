"""Benchmark of likely culprits and change review on a generated 100k-CI graph.

The graph comes from ``bench.generate`` at 615k relationships, which gives
about 100k CIs. It is imported once into an embedded store file that later
runs reuse. Changes and incidents are generated from a fixed seed:

* 10,000 changes over the 30 days before the reference time, each on 1 to 3
  CIs drawn uniformly, with kind, risk and status drawn from fixed weights;
* 5,000 incidents over the year before, each with one root cause, 1 to 4
  impacted CIs, and tags and a text built from a small vocabulary. A third of
  them name a random change as ``caused_by_change``, and 1 % are still open.

Then it times ``build_event_index`` once, ``likely_culprits`` for symptoms on
1 to 3 random services or applications (and, separately, on a business
service, whose upstream is a large part of the graph), and
``review_change`` for random changes of the index and for one change on the
identity provider and a core router, whose radius covers most of the graph.
1 % of the CIs are degraded or down.

Usage::

    python -m bench.bench_culprits [--queries 200] [--seed 42]

The table goes to standard output and the figures to ``bench/out/culprits.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_blast_radius import latency_stats, peak_rss_mib, timed
from bench.generate import DEFAULT_SEED, OUT_DIR, parse_size, write_bundle
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

logger = logging.getLogger(__name__)

RESULT_PATH = OUT_DIR / "culprits.json"
SIZE = "615k"
REFERENCE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CHANGE_COUNT = 10_000
INCIDENT_COUNT = 5_000
TARGET_CULPRITS_MS = 100.0
TARGET_REVIEW_MS = 200.0

TAGS = ("timeout", "slow_response", "error_rate", "down", "capacity", "latency", "saturation")
WORDS = (
    "checkout", "login", "payment", "search", "queue", "database", "connection", "pool", "memory", "leak",
    "certificate", "dns", "latency", "errors", "timeouts", "disk", "full", "cpu", "throttling", "deploy",
    "rollback", "cache", "evictions", "replica", "lag", "network", "packet", "loss", "gateway", "503",
)


def generate_events(ci_ids: list[str], seed: int) -> tuple[list[Change], list[Incident]]:
    """Generate the benchmark's changes and incidents deterministically from ``seed``."""
    rng = np.random.default_rng(seed)
    kinds = list(ChangeKind)
    risks = [Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL]
    statuses = [ChangeStatus.COMPLETED, ChangeStatus.FAILED, ChangeStatus.ROLLED_BACK, ChangeStatus.IN_PROGRESS,
                ChangeStatus.APPROVED, ChangeStatus.CANCELLED]
    changes = []
    for number in range(CHANGE_COUNT):
        affected = tuple(dict.fromkeys(ci_ids[i] for i in rng.integers(len(ci_ids), size=int(rng.integers(1, 4)))))
        start = REFERENCE - timedelta(minutes=float(rng.uniform(0, 30 * 24 * 60)))
        status = statuses[int(rng.choice(len(statuses), p=[0.8, 0.04, 0.04, 0.02, 0.06, 0.04]))]
        end = None if status in (ChangeStatus.IN_PROGRESS, ChangeStatus.APPROVED) else start + timedelta(
            minutes=float(rng.uniform(2, 240))
        )
        changes.append(
            Change(
                id=f"CHG{number:06d}",
                title=" ".join(rng.choice(WORDS, size=4)),
                kind=kinds[int(rng.integers(len(kinds)))],
                status=status,
                affected=affected,
                risk=risks[int(rng.choice(4, p=[0.4, 0.4, 0.15, 0.05]))],
                actual_start=start if status is not ChangeStatus.APPROVED else None,
                actual_end=end,
                planned_start=start,
                planned_end=start + timedelta(hours=2),
            )
        )

    incidents = []
    for number in range(INCIDENT_COUNT):
        root = ci_ids[int(rng.integers(len(ci_ids)))]
        impacted = tuple(dict.fromkeys(ci_ids[i] for i in rng.integers(len(ci_ids), size=int(rng.integers(1, 5)))))
        started = REFERENCE - timedelta(minutes=float(rng.uniform(0, 365 * 24 * 60)))
        still_open = rng.random() < 0.01
        cause = changes[int(rng.integers(len(changes)))] if rng.random() < 1 / 3 else None
        incidents.append(
            Incident(
                id=f"INC{number:06d}",
                title=" ".join(rng.choice(WORDS, size=3)),
                severity=list(Severity)[int(rng.integers(4))],
                status=IncidentStatus.OPEN if still_open else IncidentStatus.CLOSED,
                started_at=started,
                resolved_at=None if still_open else started + timedelta(minutes=float(rng.uniform(10, 600))),
                impacted=impacted,
                root_causes=(root,),
                symptom_text=" ".join(rng.choice(WORDS, size=12)),
                symptom_tags=tuple(dict.fromkeys(rng.choice(TAGS, size=int(rng.integers(1, 3))))),
                caused_by_change=cause.id if cause is not None else None,
            )
        )
    return changes, incidents


def open_snapshot(seed: int) -> Any:
    """Return the topology of the generated graph, importing it into a store file on first use."""
    from importers import native
    from service import loader
    from service.analysis.topology import build_topology
    from service.store.embedded import EmbeddedStore

    count = parse_size(SIZE)
    bundle = write_bundle(count, seed)
    database = OUT_DIR / f"culprits-store-{SIZE}-seed{seed}.db"
    if not database.exists():
        partial = database.with_suffix(".partial")
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            leftover.unlink(missing_ok=True)
        store = EmbeddedStore(partial)
        batch = native.read(bundle)
        loader.load(store, batch)
        store.close()
        partial.replace(database)
        for suffix in ("-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
    store = EmbeddedStore(database)
    topology = build_topology(store.load_topology())
    store.close()
    return topology


def run(queries: int, seed: int) -> dict[str, Any]:
    from service.analysis.change_review import review_change
    from service.analysis.culprits import CulpritOptions, Symptom, likely_culprits
    from service.analysis.events import build_event_index

    snapshot_seconds, topology = timed(lambda: open_snapshot(seed))
    changes, incidents = generate_events(topology.ids, seed)
    index_seconds, index = timed(lambda: build_event_index(changes, incidents))

    rng = np.random.default_rng(seed + 1)
    unhealthy = rng.choice(topology.node_count, size=topology.node_count // 100, replace=False)
    statuses = {topology.ids[i]: (Status.DOWN if i % 3 == 0 else Status.DEGRADED) for i in unhealthy.tolist()}
    type_of = np.array(topology.type_names)[topology.node_type]
    symptom_pool = np.flatnonzero(np.isin(type_of, ["service", "application"]))
    business_pool = np.flatnonzero(topology.is_business)
    options = CulpritOptions(limit=10)

    def symptom_at(nodes: np.ndarray) -> Symptom:
        onset = REFERENCE - timedelta(minutes=float(rng.uniform(0, 30 * 24 * 60)))
        text = " ".join(rng.choice(WORDS, size=6))
        tags = tuple(dict.fromkeys(rng.choice(TAGS, size=2)))
        return Symptom(tuple(topology.ids[i] for i in nodes.tolist()), onset, tags, text)

    # Warm up every code path once before timing.
    likely_culprits(topology, symptom_at(symptom_pool[:2]), index, statuses, options)
    review_change(topology, changes[0], index)

    culprit_seconds, candidate_counts = [], []
    for _ in range(queries):
        nodes = rng.choice(symptom_pool, size=int(rng.integers(1, 4)), replace=False)
        seconds, report = timed(lambda: likely_culprits(topology, symptom_at(nodes), index, statuses, options))
        culprit_seconds.append(seconds)
        candidate_counts.append(report.candidate_count)

    business_seconds, business_counts = [], []
    for _ in range(max(5, queries // 10)):
        nodes = rng.choice(business_pool, size=1)
        seconds, report = timed(lambda: likely_culprits(topology, symptom_at(nodes), index, statuses, options))
        business_seconds.append(seconds)
        business_counts.append(report.candidate_count)

    review_seconds, radius_sizes, collision_counts = [], [], []
    for position in rng.choice(len(changes), size=queries, replace=False).tolist():
        seconds, review = timed(lambda: review_change(topology, changes[position], index))
        review_seconds.append(seconds)
        radius_sizes.append(len(review.impacted_ci_ids))
        collision_counts.append(len(review.collisions))

    # A change on shared hubs: its blast radius covers most of the graph.
    hub_change = Change(
        id="CHG-HUB", title="Patch identity provider and core router 0", kind=ChangeKind.PATCH,
        status=ChangeStatus.APPROVED, affected=("identity-provider", "core-router-0"), risk=Risk.HIGH,
        planned_start=REFERENCE - timedelta(days=3), planned_end=REFERENCE - timedelta(days=3, hours=-2),
    )
    hub_seconds = []
    for _ in range(max(5, queries // 10)):
        seconds, hub_review = timed(lambda: review_change(topology, hub_change, index))
        hub_seconds.append(seconds)

    return {
        "cis": topology.node_count,
        "relationships": topology.edge_count,
        "changes": len(changes),
        "incidents": len(incidents),
        "snapshot_s": round(snapshot_seconds, 3),
        "build_event_index_s": round(index_seconds, 3),
        "likely_culprits": {**latency_stats(culprit_seconds), "median_candidates": float(np.median(candidate_counts))},
        "likely_culprits_business_service": {
            **latency_stats(business_seconds), "median_candidates": float(np.median(business_counts)),
        },
        "change_review": {
            **latency_stats(review_seconds),
            "median_impacted": float(np.median(radius_sizes)),
            "max_impacted": int(max(radius_sizes)),
            "median_collisions": float(np.median(collision_counts)),
        },
        "change_review_hub": {
            **latency_stats(hub_seconds),
            "impacted": len(hub_review.impacted_ci_ids),
            "collisions": len(hub_review.collisions),
        },
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"{result['cis']} CIs, {result['relationships']} relationships, {result['changes']} changes, "
        f"{result['incidents']} incidents; event index built in {result['build_event_index_s']} s"
    )
    rows = [
        ("likely_culprits (1-3 services)", result["likely_culprits"], TARGET_CULPRITS_MS),
        ("likely_culprits (business service)", result["likely_culprits_business_service"], TARGET_CULPRITS_MS),
        ("change_review (random change)", result["change_review"], TARGET_REVIEW_MS),
        ("change_review (hub change)", result["change_review_hub"], TARGET_REVIEW_MS),
    ]
    print(f"{'query':38} {'n':>5} {'median ms':>10} {'p99 ms':>9} {'max ms':>9} {'target ms':>10}")
    for name, stats, target in rows:
        print(f"{name:38} {stats['n']:>5} {stats['median_ms']:>10} {stats['p99_ms']:>9} {stats['max_ms']:>9} {target:>10}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200, help="timed queries of each kind (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    result = run(args.queries, args.seed)
    result["total_s"] = round(time.perf_counter() - started, 1)
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULT_PATH.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)


if __name__ == "__main__":
    main()
