"""Benchmark of the emergency plan on the generated 100k-CI graph.

It copies the embedded store that ``bench.bench_culprits`` builds (615k
relationships, about 100k CIs, 10,000 changes and 5,000 incidents are added
in memory as there) and writes a generated plan into the copy:

* 2,000 procedures over the five levels. 40 % link 1 to 3 random CIs
  directly. 40 % have an attribute selector: a CI type, with an environment
  or a tag of the graph half of the time. 20 % have a ``related_to``
  selector on a random CI with incoming relationships, a quarter of them
  transitive.

Then it times the snapshot's ``ProcedureIndex`` build and ``applicable`` for
random CIs. It also times the procedures of the first 1,000 entries of the
blast radius of a random host, records read from the store included. Last
come one emergency plan end to end (culprits, blast radius, CI records, the
plan and its Markdown) for symptoms on 1 to 3 random services, and the
plan-gaps report end to end (every CI read from the store).

Usage::

    python -m bench.bench_plan [--queries 50] [--seed 42]

The table goes to standard output and the figures to ``bench/out/plan.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_blast_radius import latency_stats, peak_rss_mib, timed
from bench.bench_culprits import REFERENCE, SIZE, generate_events, open_snapshot
from bench.generate import DEFAULT_SEED, OUT_DIR
from service.model import (
    Procedure,
    ProcedureAction,
    ProcedureLevel,
    RelatedTo,
    RelationshipType,
    Selector,
    Step,
)

logger = logging.getLogger(__name__)

RESULT_PATH = OUT_DIR / "plan.json"
PROCEDURE_COUNT = 2_000
RADIUS_ENTRIES = 1_000


def generate_procedures(store: Any, seed: int) -> list[Procedure]:
    """Return the generated plan for the CIs of ``store`` (see the module documentation)."""
    from service.planning import all_cis

    generator = random.Random(seed)
    cis = all_cis(store)
    types = sorted({ci.type for ci in cis})
    environments = sorted({ci.environment for ci in cis if ci.environment})
    tags = sorted({tag for ci in cis for tag in ci.tags})
    anchors = sorted({r.target for ci in generator.sample(cis, 500) for r in store.relationships_of(ci.id, "outgoing")})
    levels = list(ProcedureLevel)
    actions = list(ProcedureAction)
    procedures = []
    for number in range(PROCEDURE_COUNT):
        kind = number % 5
        applies_to: tuple[str, ...] = ()
        selectors: tuple[Selector, ...] = ()
        if kind < 2:
            applies_to = tuple(sorted({generator.choice(cis).id for _ in range(generator.randint(1, 3))}))
        elif kind < 4:
            extra: dict[str, Any] = {}
            if generator.random() < 0.5 and environments:
                extra["environment"] = generator.choice(environments)
            elif generator.random() < 0.5 and tags:
                extra["tags"] = (generator.choice(tags),)
            selectors = (Selector(type=generator.choice(types), **extra),)
        else:
            relationship = generator.choice([RelationshipType.RUNS_ON, RelationshipType.HOSTED_ON, RelationshipType.DEPENDS_ON])
            selectors = (
                Selector(related_to=RelatedTo(generator.choice(anchors), relationship, generator.random() < 0.25)),
            )
        procedures.append(
            Procedure(
                id=f"PROC-{number:05d}",
                title=f"Generated procedure {number}",
                level=generator.choice(levels),
                action=generator.choice(actions),
                steps=tuple(Step(f"Step {step} of procedure {number}.") for step in range(1, 5)),
                expected_minutes=generator.choice([5, 10, 20, 30, 60]),
                owner=f"team-{number % 40}",
                applies_to=applies_to,
                selectors=selectors,
                last_reviewed=REFERENCE - timedelta(days=generator.randint(0, 700)),
                last_drilled=None if number % 7 == 0 else REFERENCE - timedelta(days=generator.randint(0, 700)),
            )
        )
    return procedures


def open_plan_store(seed: int) -> Any:
    """Return an embedded store with the graph, the events and the generated plan, built on first use."""
    from service.planning import all_cis
    from service.store.embedded import EmbeddedStore

    open_snapshot(seed)
    source = OUT_DIR / f"culprits-store-{SIZE}-seed{seed}.db"
    database = OUT_DIR / f"plan-store-{SIZE}-seed{seed}.db"
    if not database.exists():
        partial = database.with_suffix(".partial")
        shutil.copyfile(source, partial)
        store = EmbeddedStore(partial)
        changes, incidents = generate_events([ci.id for ci in all_cis(store)], seed)
        store.write([], [], changes=changes, incidents=incidents, procedures=generate_procedures(store, seed))
        store.close()
        partial.replace(database)
        for suffix in ("-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
    return EmbeddedStore(database)


def run(queries: int, seed: int) -> dict[str, Any]:
    from service.analysis.blast_radius import BlastRadiusOptions, blast_radius
    from service.analysis.plan import PlanGapsOptions, Situation
    from service.analysis.procedures import ProcedureIndex
    from service.plan_report import plan_markdown
    from service.planning import build_emergency_plan, build_plan_gaps
    from service.snapshot import SnapshotCache

    store = open_plan_store(seed)
    snapshot_seconds, snapshot = timed(lambda: SnapshotCache(store).snapshot())
    topology = snapshot.topology
    _, procedures = store.load_procedures()
    index_seconds = []
    for _ in range(5):
        seconds, _index = timed(lambda: ProcedureIndex(procedures, topology))
        index_seconds.append(seconds)

    rng = np.random.default_rng(seed + 2)
    sample = [topology.ids[i] for i in rng.choice(topology.node_count, size=2_000, replace=False).tolist()]
    records = store.get_cis(sample)
    applicable_seconds, applied_counts = [], []
    for ci_id in sample:
        seconds, applied = timed(lambda: snapshot.plan.applicable(records[ci_id]))
        applicable_seconds.append(seconds)
        applied_counts.append(len(applied))

    type_of = np.array(topology.type_names)[topology.node_type]
    services = np.flatnonzero(np.isin(type_of, ["service", "application"]))
    # Hosts: their blast radius fills the 1,000 listed entries.
    hosts = np.flatnonzero(type_of == "host")
    radius_seconds, radius_entries = [], []
    for node in rng.choice(hosts, size=min(queries, len(hosts)), replace=False).tolist():
        radius = blast_radius(topology, [topology.ids[node]], BlastRadiusOptions(limit=RADIUS_ENTRIES))

        def procedures_of_entries() -> int:
            entries = store.get_cis([topology.ids[i] for i in radius.impacted.tolist()])
            return sum(len(snapshot.plan.applicable(ci)) for ci in entries.values())

        seconds, _total = timed(procedures_of_entries)
        radius_seconds.append(seconds)
        radius_entries.append(len(radius.impacted))

    plan_seconds, plan_lengths = [], []
    for _ in range(queries):
        nodes = rng.choice(services, size=int(rng.integers(1, 4)), replace=False)
        onset = REFERENCE - timedelta(minutes=float(rng.uniform(0, 30 * 24 * 60)))
        situation = Situation(tuple(topology.ids[i] for i in nodes.tolist()), onset, ("timeout",), None)

        def plan_once() -> str:
            plan, cis = build_emergency_plan(store, snapshot, situation, REFERENCE)
            return plan_markdown(plan, cis)

        seconds, markdown = timed(plan_once)
        plan_seconds.append(seconds)
        plan_lengths.append(markdown.count("\n"))

    gaps_seconds = []
    for _ in range(3):
        seconds, (gaps, _cis) = timed(lambda: build_plan_gaps(store, snapshot, REFERENCE, PlanGapsOptions()))
        gaps_seconds.append(seconds)
    store.close()

    return {
        "cis": topology.node_count,
        "relationships": topology.edge_count,
        "procedures": len(procedures),
        "snapshot_s": round(snapshot_seconds, 3),
        "procedure_index": latency_stats(index_seconds),
        "applicable": {**latency_stats(applicable_seconds), "median_procedures": float(np.median(applied_counts))},
        "blast_radius_procedures": {**latency_stats(radius_seconds), "median_entries": float(np.median(radius_entries))},
        "emergency_plan": {**latency_stats(plan_seconds), "median_markdown_lines": float(np.median(plan_lengths))},
        "plan_gaps": {
            **latency_stats(gaps_seconds),
            "important": gaps.important_count,
            "uncovered": len(gaps.uncovered),
            "stale": len(gaps.stale),
            "broken_links": len(gaps.broken_links),
        },
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"{result['cis']} CIs, {result['relationships']} relationships, {result['procedures']} procedures; "
        f"snapshot {result['snapshot_s']} s, peak RSS {result['peak_rss_mib']} MiB"
    )
    rows = [
        ("ProcedureIndex build", result["procedure_index"]),
        ("applicable (one CI)", result["applicable"]),
        (f"procedures of {RADIUS_ENTRIES} radius entries", result["blast_radius_procedures"]),
        ("emergency plan + Markdown", result["emergency_plan"]),
        ("plan gaps (all CIs)", result["plan_gaps"]),
    ]
    print(f"{'operation':36} {'n':>5} {'median ms':>10} {'p99 ms':>9} {'max ms':>9}")
    for name, stats in rows:
        print(f"{name:36} {stats['n']:>5} {stats['median_ms']:>10} {stats['p99_ms']:>9} {stats['max_ms']:>9}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=50, help="timed queries of each kind (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run(args.queries, args.seed)
    print_table(result)
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULT_PATH.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
