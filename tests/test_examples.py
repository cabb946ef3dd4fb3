"""Tests of the example data under examples/: each file imports cleanly and gives the blast radii that examples/README.md lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from importers import native
from service.analysis.blast_radius import Impact, blast_radius, path_to
from service.analysis.topology import Topology
from service.loader import load
from service.model import RelationshipType, Strength
from service.records import ImportBatch
from service.snapshot import SnapshotCache
from service.store.base import GraphStore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CALL_CENTER = EXAMPLES / "call-center" / "cmdb.yaml"
ONLINE_BOUTIQUE = EXAMPLES / "online-boutique" / "kubernetes-manifests.yaml"

TRUNKS = ("sip-trunk-carrier-a", "sip-trunk-carrier-b")
SBCS = ("sbc-1", "sbc-2")


def workload_id(name: str) -> str:
    return f"k8s/default/deployment/{name}"


def service_id(name: str) -> str:
    return f"k8s/default/service/{name}"


@pytest.fixture
def call_center_batch() -> ImportBatch:
    return native.read(CALL_CENTER)


@pytest.fixture
def call_center(store: GraphStore, call_center_batch: ImportBatch) -> Topology:
    """The call-center CMDB loaded into the store, as a topology snapshot."""
    load(store, call_center_batch)
    return SnapshotCache(store).current()


def compute_impacts(topology: Topology, failed: list[str]) -> dict[str, Impact]:
    radius = blast_radius(topology, failed)
    return {
        topology.ids[node]: Impact(level) for node, level in zip(radius.impacted, radius.impact, strict=True)
    }


# Call center: import


def test_call_center_reads_without_problems(call_center_batch: ImportBatch) -> None:
    assert call_center_batch.problems == []
    assert call_center_batch.warnings == []


def test_call_center_imports_every_record(store: GraphStore, call_center_batch: ImportBatch) -> None:
    report = load(store, call_center_batch)

    assert report.rejected == []
    assert report.result.cis_created == len(call_center_batch.cis)
    assert report.result.relationships_created == len(call_center_batch.relationships)


def test_call_center_reimport_changes_nothing(store: GraphStore) -> None:
    load(store, native.read(CALL_CENTER))
    version = store.version()

    report = load(store, native.read(CALL_CENTER))

    assert not report.result.changed
    assert report.result.cis_unchanged == report.cis_read
    assert report.result.relationships_unchanged == report.relationships_read
    assert store.version() == version


# Call center: what the example covers


def test_call_center_size_fits_an_example(call_center_batch: ImportBatch) -> None:
    assert 60 <= len(call_center_batch.cis) <= 100
    assert 100 <= len(call_center_batch.relationships) <= 200


def test_call_center_uses_every_relationship_type(call_center_batch: ImportBatch) -> None:
    used = {(r.type, r.strength) for r, _ in call_center_batch.relationships}

    assert {type_ for type_, _ in used} == set(RelationshipType)
    assert {strength for _, strength in used} == set(Strength)


def test_call_center_has_count_and_percent_groups(call_center_batch: ImportBatch) -> None:
    groups = {
        (r.consumer, r.redundancy.group): r.redundancy
        for r, _ in call_center_batch.relationships
        if r.redundancy is not None
    }
    by_count = [g for g in groups.values() if g.min_available is not None]
    by_percent = [g for g in groups.values() if g.min_available_percent is not None]

    assert len(groups) >= 3
    assert by_count
    assert by_percent


def test_call_center_cis_are_production_and_owned(call_center_batch: ImportBatch) -> None:
    cis = [ci for ci, _ in call_center_batch.cis]

    assert {ci.environment for ci in cis} == {"production"}
    assert [ci.id for ci in cis if not ci.owner] == []
    assert [ci.id for ci in cis if ci.criticality is None] == []


def test_call_center_business_services_have_transactions(call_center_batch: ImportBatch) -> None:
    types = {ci.id: ci.type for ci, _ in call_center_batch.cis}
    part_of = [
        (r.source, r.target) for r, _ in call_center_batch.relationships if r.type is RelationshipType.PART_OF
    ]
    services = {ci_id for ci_id, type_ in types.items() if type_ == "business_service"}
    transactions = {ci_id for ci_id, type_ in types.items() if type_ == "transaction"}

    assert services == {target for source, target in part_of if types[source] == "transaction"}
    assert transactions == {source for source, target in part_of if types[target] == "business_service"}


# Call center: blast radius


@pytest.mark.parametrize(
    ("failed", "ci_id", "expected"),
    [
        pytest.param(["sip-trunk-carrier-a"], "sbc-1", Impact.DEGRADED, id="one-trunk-sbc-1"),
        pytest.param(["sip-trunk-carrier-a"], "sbc-2", Impact.DEGRADED, id="one-trunk-sbc-2"),
        pytest.param(["sip-trunk-carrier-b"], "inbound-call-handling", Impact.DEGRADED, id="one-trunk-inbound"),
        pytest.param(list(TRUNKS), "sbc-1", Impact.DOWN, id="both-trunks-sbc"),
        pytest.param(list(TRUNKS), "inbound-call-handling", Impact.DOWN, id="both-trunks-inbound"),
        pytest.param(list(TRUNKS), "outbound-campaigns", Impact.DOWN, id="both-trunks-outbound"),
        pytest.param(["crm-db-primary"], "crm-app", Impact.DOWN, id="crm-primary-app"),
        pytest.param(["crm-db-primary"], "screen-pop", Impact.DOWN, id="crm-primary-screen-pop"),
        pytest.param(["crm-db-primary"], "crm-db-replica", Impact.DEGRADED, id="crm-primary-replica"),
        pytest.param(["crm-db-primary"], "inbound-customer-service", Impact.DEGRADED, id="crm-primary-inbound"),
        pytest.param(["media-server-1", "media-server-3"], "media-pool", Impact.DEGRADED, id="half-media-pool"),
        pytest.param(
            ["media-server-1", "media-server-2", "media-server-3"], "media-pool", Impact.DOWN, id="media-pool-gone"
        ),
        pytest.param(["cti-node-1"], "cti-middleware", Impact.DEGRADED, id="cti-keeps-quorum"),
        pytest.param(["cti-node-1", "cti-node-3"], "cti-middleware", Impact.DOWN, id="cti-loses-quorum"),
        pytest.param(["mq-node-2"], "mq-cluster", Impact.DEGRADED, id="mq-keeps-quorum"),
        pytest.param(["mq-node-2", "mq-node-3"], "acd-routing", Impact.DOWN, id="mq-loses-quorum"),
        pytest.param(["core-switch-north-a"], "hv-north-01", Impact.DEGRADED, id="core-switch-hypervisor"),
        pytest.param(["core-switch-north-a"], "lb-north-1", Impact.DOWN, id="core-switch-single-uplink"),
        pytest.param(["corp-directory"], "agent-login", Impact.DOWN, id="directory-agent-login"),
        pytest.param(["speech-analytics"], "call-recording-compliance", Impact.DEGRADED, id="speech-compliance"),
        pytest.param(["speech-analytics"], "inbound-customer-service", Impact.AT_RISK, id="speech-inbound"),
    ],
)
def test_call_center_blast_radius_impact(
    call_center: Topology, failed: list[str], ci_id: str, expected: Impact
) -> None:
    assert compute_impacts(call_center, failed).get(ci_id) == expected


@pytest.mark.parametrize(
    ("failed", "down", "degraded", "at_risk"),
    [
        pytest.param(["sip-trunk-carrier-a"], 0, 10, 0, id="one-trunk"),
        pytest.param(list(TRUNKS), 10, 0, 0, id="both-trunks"),
        pytest.param(["crm-db-primary"], 7, 7, 1, id="crm-db-primary"),
        pytest.param(["core-switch-north-a"], 2, 53, 2, id="core-switch"),
        pytest.param(["hv-north-01"], 6, 19, 3, id="hypervisor"),
        pytest.param(["speech-analytics"], 0, 1, 2, id="speech-analytics"),
        pytest.param(["dc-north"], 55, 9, 0, id="dc-north"),
        pytest.param([workload_id("redis-cart")], 9, 0, 0, id="boutique-redis"),
        pytest.param([workload_id("productcatalogservice")], 9, 0, 0, id="boutique-catalog"),
    ],
)
def test_examples_readme_counts(
    store: GraphStore, failed: list[str], down: int, degraded: int, at_risk: int
) -> None:
    """The counts that examples/README.md states for each failure to try."""
    load(store, native.read(CALL_CENTER))
    if failed[0].startswith("k8s/"):
        kubernetes = pytest.importorskip("importers.kubernetes", reason="importers/kubernetes.py is not written yet")
        load(store, kubernetes.read(ONLINE_BOUTIQUE))
    topology = SnapshotCache(store).current()

    summary = blast_radius(topology, failed).summary

    assert summary.by_impact[Impact.DOWN] == down
    assert summary.by_impact[Impact.DEGRADED] == degraded
    assert summary.by_impact[Impact.AT_RISK] == at_risk


def test_call_center_one_trunk_downs_nothing(call_center: Topology) -> None:
    result = compute_impacts(call_center, ["sip-trunk-carrier-a"])

    assert result
    assert [ci_id for ci_id, level in result.items() if level is Impact.DOWN] == []


def test_call_center_trunks_spare_agent_login(call_center: Topology) -> None:
    result = compute_impacts(call_center, list(TRUNKS))

    assert "agent-login" not in result
    assert "agent-workplace" not in result


def test_call_center_trunk_path_passes_sbc(call_center: Topology) -> None:
    radius = blast_radius(call_center, list(TRUNKS))
    node = call_center.index["inbound-call-handling"]
    path = [call_center.ids[step] for step in path_to(radius, node)]

    assert path[0] in TRUNKS
    assert path[1] in SBCS
    assert path[-1] == "inbound-call-handling"


@pytest.mark.parametrize("failed", ["speech-analytics", "wfm-app", "reporting-dwh"])
def test_call_center_soft_dependency_downs_nothing(call_center: Topology, failed: str) -> None:
    result = compute_impacts(call_center, [failed])

    assert result
    assert [ci_id for ci_id, level in result.items() if level is Impact.DOWN] == []


def test_call_center_hypervisor_downs_only_its_vms(call_center: Topology, call_center_batch: ImportBatch) -> None:
    guests = {
        r.source
        for r, _ in call_center_batch.relationships
        if r.type is RelationshipType.HOSTED_ON and r.target == "hv-north-01"
    }

    result = compute_impacts(call_center, ["hv-north-01"])

    assert len(guests) > 1
    assert {ci_id for ci_id, level in result.items() if level is Impact.DOWN} == guests


# Online Boutique

WORKLOADS = (
    "frontend",
    "productcatalogservice",
    "currencyservice",
    "cartservice",
    "recommendationservice",
    "shippingservice",
    "checkoutservice",
    "adservice",
    "paymentservice",
    "emailservice",
    "redis-cart",
    "loadgenerator",
)
# Every workload but the load generator has a Service of its own name, and the
# frontend has a second, public one.
SERVICES = (*(name for name in WORKLOADS if name != "loadgenerator"), "frontend-external")
CALLS = {
    "frontend": {
        "productcatalogservice",
        "currencyservice",
        "cartservice",
        "recommendationservice",
        "shippingservice",
        "checkoutservice",
        "adservice",
    },
    "checkoutservice": {
        "productcatalogservice",
        "shippingservice",
        "paymentservice",
        "emailservice",
        "currencyservice",
        "cartservice",
    },
    "recommendationservice": {"productcatalogservice"},
    "cartservice": {"redis-cart"},
    "loadgenerator": {"frontend"},
}


@pytest.fixture
def boutique_batch() -> ImportBatch:
    kubernetes = pytest.importorskip("importers.kubernetes", reason="importers/kubernetes.py is not written yet")
    return kubernetes.read(ONLINE_BOUTIQUE)  # type: ignore[no-any-return]


def test_online_boutique_reads_without_problems(boutique_batch: ImportBatch) -> None:
    assert boutique_batch.problems == []
    assert boutique_batch.skipped == {}


def test_online_boutique_cis(boutique_batch: ImportBatch) -> None:
    ids = {ci.id for ci, _ in boutique_batch.cis}

    assert ids == {workload_id(name) for name in WORKLOADS} | {service_id(name) for name in SERVICES}


def test_online_boutique_env_dependencies(boutique_batch: ImportBatch) -> None:
    workloads = {workload_id(name) for name in WORKLOADS}
    calls = {(r.source, r.target) for r, _ in boutique_batch.relationships if r.source in workloads}

    assert calls == {
        (workload_id(client), service_id(server)) for client, servers in CALLS.items() for server in servers
    }


def test_online_boutique_service_selectors(boutique_batch: ImportBatch) -> None:
    services = {service_id(name) for name in SERVICES}
    selected = {(r.source, r.target) for r, _ in boutique_batch.relationships if r.source in services}

    assert selected == {
        (service_id(name), workload_id("frontend" if name == "frontend-external" else name)) for name in SERVICES
    }


def test_online_boutique_reports_shopping_assistant(boutique_batch: ImportBatch) -> None:
    frontend = next(ci for ci, _ in boutique_batch.cis if ci.id == workload_id("frontend"))

    assert len(boutique_batch.warnings) == 1
    assert "SHOPPING_ASSISTANT_SERVICE_ADDR" in boutique_batch.warnings[0]
    assert "shoppingassistantservice" in boutique_batch.warnings[0]
    assert [ref["host"] for ref in frontend.attributes["unresolved_references"]] == ["shoppingassistantservice"]


def test_online_boutique_redis_takes_down_shop(store: GraphStore, boutique_batch: ImportBatch) -> None:
    report = load(store, boutique_batch)
    topology = SnapshotCache(store).current()

    result = compute_impacts(topology, [workload_id("redis-cart")])

    assert report.rejected == []
    for name in ("cartservice", "checkoutservice", "frontend", "loadgenerator"):
        assert result.get(workload_id(name)) == Impact.DOWN, name
    assert workload_id("productcatalogservice") not in result
