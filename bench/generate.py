"""Generate CMDB dependency graphs of realistic shape as native JSON bundles.

The graph is layered the way a data centre is: core routers, access switches,
hypervisor hosts and clusters with their storage, VMs, databases and queues,
DNS and an identity provider, services, applications, transactions and
business services. A few hubs (core routers, DNS, identity, hypervisor
clusters, the most popular databases and services) have very many consumers,
and most CIs have few. Services and applications pick their providers with a
skewed (power-law like) choice that favours a small set of popular targets.

The generated bundle contains about 10 % soft relationships, redundancy groups
with a minimum count and with a minimum percentage, ``PART_OF`` relationships
to a few dozen transactions and business services, and a few dependency
cycles. The same size and seed always give the same file.

Usage::

    python -m bench.generate --sizes 10k,100k,1m --seed 42

Each size writes ``bench/out/graph-<size>-seed<seed>.json`` and a
``.meta.json`` file beside it that lists the hubs and the counts.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

OUT_DIR = Path(__file__).resolve().parent / "out"
DEFAULT_SEED = 42

# Relationships per service that the model below produces, measured on
# generated graphs (12.6 to 12.8); used to size a graph for a target count.
RELATIONSHIPS_PER_SERVICE = 12.7

TEAMS = (
    "network", "platform", "storage", "dba", "messaging", "identity", "payments",
    "checkout", "catalog", "search", "accounts", "shipping", "billing", "support",
)
ENVIRONMENTS = ("production", "production", "production", "staging")
CRITICALITIES = ("critical", "high", "medium", "medium", "low")


def parse_size(text: str) -> int:
    """Parse a relationship count such as ``10k``, ``1m`` or ``250000``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if match is None:
        raise ValueError(f"size {text!r} is invalid; write a count such as 10k, 100k, 1m or 250000")
    number = float(match.group(1))
    multiplier = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    count = int(number * multiplier)
    if count < 1_000:
        raise ValueError(f"size {text!r} is too small; generate at least 1k relationships")
    return count


def size_label(count: int) -> str:
    """Return the short label of a relationship count: 10000 -> ``10k``, 1000000 -> ``1m``."""
    if count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    if count % 1_000 == 0:
        return f"{count // 1_000}k"
    return str(count)


def bundle_path(count: int, seed: int, out_dir: Path = OUT_DIR) -> Path:
    return out_dir / f"graph-{size_label(count)}-seed{seed}.json"


def meta_path(bundle: Path) -> Path:
    return bundle.with_suffix(".meta.json")


@dataclass
class GraphBuilder:
    """Accumulates CI and relationship records, dropping repeated relationships."""

    rng: np.random.Generator
    cis: list[dict[str, Any]] = field(default_factory=list)
    relationships: list[dict[str, Any]] = field(default_factory=list)
    keys: set[tuple[str, str, str]] = field(default_factory=set)
    groups_by_count: int = 0
    groups_by_percent: int = 0

    def add_ci(self, ci_id: str, ci_type: str, team: str, **extra: Any) -> str:
        record: dict[str, Any] = {
            "id": ci_id,
            "name": ci_id.replace("-", " "),
            "type": ci_type,
            "environment": ENVIRONMENTS[len(self.cis) % len(ENVIRONMENTS)],
            "criticality": CRITICALITIES[len(self.cis) % len(CRITICALITIES)],
            "owner": team,
            "tags": [ci_type, team],
        }
        record.update(extra)
        self.cis.append(record)
        return ci_id

    def relate(
        self,
        source: str,
        target: str,
        relationship_type: str,
        *,
        soft: bool = False,
        redundancy: dict[str, Any] | None = None,
    ) -> bool:
        """Add ``source -[type]-> target`` unless it is a self-relationship or already added."""
        key = (source, target, relationship_type)
        if source == target or key in self.keys:
            return False
        self.keys.add(key)
        record: dict[str, Any] = {"source": source, "target": target, "type": relationship_type}
        if soft:
            record["strength"] = "soft"
        if redundancy is not None:
            record["redundancy"] = redundancy
        self.relationships.append(record)
        return True

    def relate_group(
        self,
        consumer: str,
        providers: list[str],
        relationship_type: str,
        group: str,
        *,
        min_available: int | None = None,
        min_percent: float | None = None,
        soft: bool = False,
    ) -> None:
        """Relate a consumer to providers; with two or more, they form one redundancy group.

        ``PART_OF`` points from the provider (the part) to the consumer, the
        other types from the consumer to the provider.
        """
        providers = list(dict.fromkeys(providers))
        redundancy = None
        if len(providers) > 1:
            if min_percent is not None:
                redundancy = {"group": group, "min_available_percent": min_percent}
                self.groups_by_percent += 1
            else:
                redundancy = {"group": group, "min_available": min(min_available or 1, len(providers))}
                self.groups_by_count += 1
        for provider in providers:
            if relationship_type == "PART_OF":
                self.relate(provider, consumer, relationship_type, soft=soft, redundancy=redundancy)
            else:
                self.relate(consumer, provider, relationship_type, soft=soft, redundancy=redundancy)

    def skewed(self, count: int, size: int, exponent: float) -> np.ndarray:
        """Draw ``size`` indices in [0, count) that favour low indices (a power-law like choice).

        With u uniform in [0, 1), floor(count * u**exponent) gives index 0 a share
        of about count**(-1/exponent), so the first few indices become hubs.
        """
        return np.minimum((count * self.rng.random(size) ** exponent).astype(np.int64), count - 1)


def generate(target_relationships: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build a bundle of about ``target_relationships`` relationships.

    Returns:
        The bundle (``cis`` and ``relationships``) and its description: the
        hub ids, the counts and the in-degree distribution.
    """
    services = max(40, round(target_relationships / RELATIONSHIPS_PER_SERVICE))
    builder = GraphBuilder(rng=np.random.default_rng(seed))
    rng = builder.rng
    hubs: dict[str, list[str]] = {}

    # Network: a ring of core routers (a cycle of soft links), access switches
    # with redundant uplinks to two cores, hypervisor hosts with two NICs.
    core = [builder.add_ci(f"core-router-{i}", "network_device", "network") for i in range(4)]
    for i, router in enumerate(core):
        builder.relate(router, core[(i + 1) % len(core)], "CONNECTS_TO", soft=True)
    hubs["core network"] = core

    clusters = max(4, services // 3000)
    hosts_per_cluster = 12
    access = [
        builder.add_ci(f"access-switch-{i:04d}", "network_device", "network")
        for i in range(max(2, clusters * hosts_per_cluster // 8))
    ]
    for i, switch in enumerate(access):
        builder.relate_group(
            switch, [core[i % 4], core[(i + 1) % 4]], "CONNECTS_TO", "uplinks", min_available=1
        )

    storage = [
        builder.add_ci(f"storage-array-{i:02d}", "storage_array", "storage")
        for i in range(max(1, clusters // 4))
    ]
    cluster_ids = [
        builder.add_ci(f"hv-cluster-{i:03d}", "hypervisor_cluster", "platform") for i in range(clusters)
    ]
    hubs["hypervisor clusters"] = cluster_ids
    for c, cluster in enumerate(cluster_ids):
        builder.relate(cluster, storage[c % len(storage)], "DEPENDS_ON")
        hosts = [
            builder.add_ci(f"hv-host-{c:03d}-{h:02d}", "host", "platform", attributes={"cores": 64})
            for h in range(hosts_per_cluster)
        ]
        # The cluster keeps running while 75 % of its hosts are up.
        builder.relate_group(cluster, hosts, "PART_OF", "hosts", min_percent=75.0)
        for h, host in enumerate(hosts):
            first = (c * hosts_per_cluster + h) // 8 % len(access)
            builder.relate_group(
                host, [access[first], access[(first + 1) % len(access)]], "CONNECTS_TO", "nics",
                min_available=1,
            )

    # VMs, spread evenly over the clusters.
    vm_count = int(services * 0.6) + 16
    vms = [
        builder.add_ci(f"vm-{i:06d}", "vm", "platform", attributes={"vcpus": 2 << (i % 3)})
        for i in range(vm_count)
    ]
    for i, vm in enumerate(vms):
        builder.relate(vm, cluster_ids[i % clusters], "HOSTED_ON")

    def pick_vms(count: int) -> list[str]:
        return [vms[i] for i in rng.choice(vm_count, size=count, replace=False)]

    # Shared infrastructure services: DNS and an identity provider.
    dns = [builder.add_ci(f"dns-{i}", "dns_server", "network") for i in range(2)]
    for server in dns:
        builder.relate(server, pick_vms(1)[0], "RUNS_ON")
    identity = builder.add_ci("identity-provider", "identity_provider", "identity")
    builder.relate_group(identity, pick_vms(2), "RUNS_ON", "instances", min_available=1)
    hubs["dns and identity"] = [*dns, identity]

    # Databases: most run on one VM; one in five is a 3-node cluster needing 2.
    databases = [builder.add_ci(f"db-{i:05d}", "database", "dba") for i in range(max(4, services // 6))]
    for i, database in enumerate(databases):
        if i % 5 == 0:
            builder.relate_group(database, pick_vms(3), "RUNS_ON", "nodes", min_available=2)
        else:
            builder.relate(database, pick_vms(1)[0], "RUNS_ON")
    builder.relate(identity, databases[0], "DEPENDS_ON")

    # Queues: 3 brokers each, at least half of them up.
    queues = [builder.add_ci(f"queue-{i:04d}", "queue", "messaging") for i in range(max(2, services // 25))]
    for queue in queues:
        builder.relate_group(queue, pick_vms(3), "RUNS_ON", "brokers", min_percent=50.0)

    load_balancers = [
        builder.add_ci(f"lb-{i:03d}", "load_balancer", "network") for i in range(2 * max(1, services // 5000))
    ]
    for i, balancer in enumerate(load_balancers):
        builder.relate_group(balancer, [core[i % 4], core[(i + 2) % 4]], "CONNECTS_TO", "uplinks", min_available=1)

    # Services: instances on VMs, DNS, identity, databases, queues and earlier
    # services, which makes the service layer a DAG with skewed in-degrees.
    service_ids = [
        builder.add_ci(f"svc-{i:05d}", "service", TEAMS[6 + i % (len(TEAMS) - 6)]) for i in range(services)
    ]
    instance_counts = rng.choice([1, 2, 3], size=services, p=[0.3, 0.4, 0.3])
    db_counts = rng.poisson(1.2, size=services)
    queue_counts = rng.binomial(2, 0.35, size=services)
    upstream_counts = rng.geometric(1 / 3.2, size=services) - 1
    for s, service in enumerate(service_ids):
        instances = pick_vms(int(instance_counts[s]))
        if s % 2:
            builder.relate_group(service, instances, "RUNS_ON", "instances", min_available=1)
        else:
            builder.relate_group(service, instances, "RUNS_ON", "instances", min_percent=50.0)
        builder.relate_group(service, dns, "DEPENDS_ON", "dns", min_available=1)
        builder.relate(service, identity, "DEPENDS_ON", soft=bool(s % 2))
        for d in builder.skewed(len(databases), int(db_counts[s]), 2.5):
            builder.relate(service, databases[d], "DEPENDS_ON")
        for q in builder.skewed(len(queues), int(queue_counts[s]), 2.0):
            builder.relate(service, queues[q], "DEPENDS_ON", soft=rng.random() < 0.3)
        if s:
            for upstream in np.minimum((s * rng.random(int(upstream_counts[s])) ** 3).astype(np.int64), s - 1):
                builder.relate(service, service_ids[upstream], "DEPENDS_ON", soft=rng.random() < 0.25)
    hubs["popular services"] = service_ids[:3]
    hubs["popular databases"] = databases[:3]

    applications = [
        builder.add_ci(f"app-{i:05d}", "application", TEAMS[6 + i % (len(TEAMS) - 6)])
        for i in range(max(4, services // 4))
    ]
    app_service_counts = rng.integers(2, 11, size=len(applications))
    for a, application in enumerate(applications):
        builder.relate(application, pick_vms(1)[0], "RUNS_ON")
        pair = 2 * (a % (len(load_balancers) // 2))
        builder.relate_group(
            application, load_balancers[pair : pair + 2], "DEPENDS_ON", "load_balancers", min_available=1
        )
        builder.relate(application, identity, "DEPENDS_ON")
        for s in builder.skewed(services, int(app_service_counts[a]), 2.0):
            builder.relate(application, service_ids[s], "DEPENDS_ON")

    # Business layer: a few dozen transactions and business services, made of
    # applications and some services.
    transaction_count = min(48, max(6, services // 100))
    business_count = min(24, max(3, services // 200))
    transactions = [builder.add_ci(f"tx-{i:02d}", "transaction", "support") for i in range(transaction_count)]
    business = [builder.add_ci(f"bs-{i:02d}", "business_service", "support") for i in range(business_count)]
    for t, transaction in enumerate(transactions):
        builder.relate(transaction, business[t % business_count], "PART_OF")
        if t % 3 == 0:
            builder.relate(transaction, business[(t + 1) % business_count], "PART_OF")
    for application in applications:
        if rng.random() < 0.3:
            builder.relate(application, transactions[builder.skewed(transaction_count, 1, 1.5)[0]], "PART_OF")
        if rng.random() < 0.1:
            builder.relate(application, business[int(rng.integers(business_count))], "PART_OF")
    for service in service_ids:
        if rng.random() < 0.05:
            builder.relate(service, transactions[int(rng.integers(transaction_count))], "PART_OF")

    cycles = _add_cycles(builder, service_ids, 3 + services // 10_000)

    bundle = {"format": "faultgraph-bundle/1", "cis": builder.cis, "relationships": builder.relationships}
    return bundle, _describe(builder, hubs, cycles, seed, target_relationships)


def _add_cycles(builder: GraphBuilder, service_ids: list[str], count: int) -> list[list[str]]:
    """Close ``count`` cycles between services by adding one back edge to a dependency chain."""
    depends_on: dict[str, list[str]] = {}
    for record in builder.relationships:
        if record["type"] == "DEPENDS_ON" and record["source"].startswith("svc-") and record["target"].startswith("svc-"):
            depends_on.setdefault(record["source"], []).append(record["target"])
    cycles: list[list[str]] = []
    candidates = [service_ids[i] for i in builder.rng.permutation(len(service_ids))]
    for start in candidates:
        if len(cycles) == count:
            break
        chain = [start]
        # Follow up to two dependencies, then point the last back at the start.
        for _ in range(1 + len(cycles) % 2):
            upstream = depends_on.get(chain[-1])
            if not upstream:
                break
            chain.append(upstream[0])
        if len(chain) > 1 and builder.relate(chain[-1], start, "DEPENDS_ON", soft=len(cycles) % 3 == 0):
            cycles.append(chain)
    return cycles


def _describe(
    builder: GraphBuilder, hubs: dict[str, list[str]], cycles: list[list[str]], seed: int, target: int
) -> dict[str, Any]:
    """Count what the graph contains, including the in-degree in impact direction."""
    relationships = builder.relationships
    consumers_of: Counter[str] = Counter()
    for record in relationships:
        provider = record["source"] if record["type"] == "PART_OF" else record["target"]
        consumers_of[provider] += 1
    degrees = np.array(
        [consumers_of.get(record["id"], 0) for record in builder.cis], dtype=np.int64
    )
    soft = sum(1 for record in relationships if record.get("strength") == "soft")
    grouped = sum(1 for record in relationships if "redundancy" in record)
    return {
        "seed": seed,
        "target_relationships": target,
        "cis": len(builder.cis),
        "relationships": len(relationships),
        "relationships_per_ci": round(len(relationships) / len(builder.cis), 2),
        "ci_types": dict(sorted(Counter(record["type"] for record in builder.cis).items())),
        "relationship_types": dict(sorted(Counter(record["type"] for record in relationships).items())),
        "soft_fraction": round(soft / len(relationships), 4),
        "redundancy_groups": {"by_count": builder.groups_by_count, "by_percent": builder.groups_by_percent},
        "relationships_in_groups": grouped,
        "cycles": cycles,
        "hubs": hubs,
        "consumers_per_provider": {
            "median": float(np.median(degrees)),
            "p90": float(np.percentile(degrees, 90)),
            "p99": float(np.percentile(degrees, 99)),
            "max": int(degrees.max()),
            "top": [[ci_id, count] for ci_id, count in consumers_of.most_common(10)],
        },
    }


def write_bundle(count: int, seed: int, out_dir: Path = OUT_DIR, *, force: bool = False) -> Path:
    """Generate the bundle of a size and seed into ``out_dir`` unless it is already there."""
    path = bundle_path(count, seed, out_dir)
    if path.exists() and meta_path(path).exists() and not force:
        logger.info("reusing %s", path)
        return path
    started = time.perf_counter()
    bundle, description = generate(count, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name first so an interrupted run leaves no truncated bundle behind.
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as stream:
        json.dump(bundle, stream, separators=(",", ":"))
    partial.replace(path)
    meta_path(path).write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    logger.info(
        "generated %s: %d CIs, %d relationships in %.1f s",
        path, description["cis"], description["relationships"], time.perf_counter() - started,
    )
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="10k,100k,1m",
        help="comma-separated relationship counts, such as 10k,100k,1m (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: bench/out)")
    parser.add_argument("--force", action="store_true", help="regenerate bundles that already exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        counts = [parse_size(text) for text in args.sizes.split(",")]
    except ValueError as exc:
        parser.error(str(exc))
    for count in counts:
        write_bundle(count, args.seed, args.out, force=args.force)


if __name__ == "__main__":
    main()
