"""Tests of the Kubernetes manifest importer, on our own samples and on the Online Boutique manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from importers import kubernetes, read_files
from importers.kubernetes import Address, looks_like_address_name, parse_address, service_named
from importers.source import SourceError
from service.analysis.blast_radius import Impact, blast_radius, path_to
from service.errors import ImportRejectedError
from service.loader import load
from service.model import CI, Redundancy, RelationshipType
from service.records import ImportBatch
from service.snapshot import SnapshotCache
from service.store.base import GraphStore
from tests.conftest import SHARED_DATA, TEST_DATA

SAMPLES = TEST_DATA / "kubernetes"
BOUTIQUE = SHARED_DATA / "online-boutique"
needs_boutique = pytest.mark.skipif(
    not (BOUTIQUE / "kubernetes-manifests.yaml").is_file(),
    reason=f"the Online Boutique manifests are not in {BOUTIQUE}",
)

# Which workloads call which through the env vars of the Online Boutique (name -> called names).
BOUTIQUE_CALLS = {
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
BOUTIQUE_WORKLOADS = {
    "adservice",
    "cartservice",
    "checkoutservice",
    "currencyservice",
    "emailservice",
    "frontend",
    "loadgenerator",
    "paymentservice",
    "productcatalogservice",
    "recommendationservice",
    "redis-cart",
    "shippingservice",
}
BOUTIQUE_INPUTS = [
    pytest.param(["kubernetes-manifests.yaml"], id="one-file"),
    pytest.param(["kubernetes-manifests", "*.yaml"], id="file-per-service"),
]


def read_boutique(parts: list[str]) -> ImportBatch:
    """Read the single release file, or every ``*.yaml`` of the per-service folder in one import."""
    if len(parts) == 1:
        return kubernetes.read(BOUTIQUE / parts[0])
    paths = sorted((BOUTIQUE / parts[0]).glob(parts[1]))
    return read_files("kubernetes", paths)


def cis_by_id(batch: ImportBatch) -> dict[str, CI]:
    return {ci.id: ci for ci, _ in batch.cis}


def dependencies(batch: ImportBatch) -> dict[str, set[str]]:
    """Return source id -> target ids of the DEPENDS_ON relationships."""
    result: dict[str, set[str]] = {}
    for relationship, _ in batch.relationships:
        assert relationship.type is RelationshipType.DEPENDS_ON
        result.setdefault(relationship.source, set()).add(relationship.target)
    return result


def call_graph(batch: ImportBatch) -> dict[str, set[str]]:
    """Return workload name -> names of the workloads it reaches through one Service."""
    cis = cis_by_id(batch)
    edges = dependencies(batch)
    calls: dict[str, set[str]] = {}
    for source, targets in edges.items():
        if cis[source].type != "workload":
            continue
        for service in targets:
            for backend in edges.get(service, set()):
                calls.setdefault(cis[source].name, set()).add(cis[backend].name)
    return calls


def write_manifests(tmp_path: Path, *documents: Any, name: str = "manifests.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return path


def deployment(name: str, **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


# Addresses in env var values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("cartservice", Address("cartservice", None), id="host"),
        pytest.param("cartservice:7070", Address("cartservice", 7070), id="host-port"),
        pytest.param("http://frontend:80/_healthz", Address("frontend", 80), id="url"),
        pytest.param("https://payments.billing/v2", Address("payments.billing", None), id="url-no-port"),
        pytest.param("postgres://app:pw@orders-db:5432/orders", Address("orders-db", 5432), id="url-userinfo"),
        pytest.param("cache.shop:6379", Address("cache.shop", 6379), id="host-namespace"),
        pytest.param("cache.shop.svc:6379", Address("cache.shop.svc", 6379), id="host-namespace-svc"),
        pytest.param(
            "ledger.billing.svc.cluster.local",
            Address("ledger.billing.svc.cluster.local", None),
            id="cluster-fqdn",
        ),
        pytest.param(
            "ledger.billing.svc.cluster.local.:80",
            Address("ledger.billing.svc.cluster.local", 80),
            id="trailing-dot",
        ),
        pytest.param(" Frontend:80 ", Address("frontend", 80), id="upper-case-and-spaces"),
    ],
)
def test_parse_address_accepts_host_forms(value: str, expected: Address) -> None:
    assert parse_address(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("8080", id="port-number"),
        pytest.param("0", id="zero"),
        pytest.param("true", id="boolean"),
        pytest.param("localhost:6060", id="localhost"),
        pytest.param("10.20.0.7:9090", id="ipv4"),
        pytest.param("http://[::1]:80/", id="ipv6-url"),
        pytest.param("cartservice:99999", id="port-out-of-range"),
        pytest.param("http://cartservice:http/", id="port-not-a-number"),
        pytest.param("$(API_HOST):80", id="variable"),
        pytest.param("shop_session-id=x-readiness-probe", id="cookie"),
        pytest.param("two words", id="sentence"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_address_rejects_non_addresses(value: str) -> None:
    assert parse_address(value) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("cartservice", ("shop", "cartservice"), id="bare-name-own-namespace"),
        pytest.param("payments.billing", ("billing", "payments"), id="name-namespace"),
        pytest.param("payments.example", None, id="name-unknown-namespace"),
        pytest.param("ledger.billing.svc", ("billing", "ledger"), id="svc"),
        pytest.param("ledger.billing.svc.cluster.local", ("billing", "ledger"), id="cluster-fqdn"),
        pytest.param("ledger.billing.svc.corp.internal", ("billing", "ledger"), id="other-cluster-domain"),
        pytest.param(
            "orders-db-0.orders-db.shop.svc.cluster.local", ("shop", "orders-db"), id="pod-of-headless-service"
        ),
        pytest.param("api.gateway.example.com", None, id="external-host"),
        pytest.param("1st-service", None, id="name-starting-with-digit"),
    ],
)
def test_service_named_reads_dns_forms(host: str, expected: tuple[str, str] | None) -> None:
    assert service_named(host, "shop", {"shop", "billing"}) == expected


@pytest.mark.parametrize(
    ("env_name", "expected"),
    [
        pytest.param("REDIS_ADDR", True, id="addr-suffix"),
        pytest.param("ADDRESS_LIST", True, id="contains-addr"),
        pytest.param("DB_HOST", True, id="host"),
        pytest.param("DATABASE_URL", True, id="url"),
        pytest.param("AUTH_URI", True, id="uri"),
        pytest.param("OTEL_EXPORTER_OTLP_ENDPOINT", True, id="endpoint"),
        pytest.param("CART_SERVICE", True, id="service"),
        pytest.param("SMTP_SERVER", True, id="server"),
        pytest.param("redis_addr", True, id="lower-case"),
        pytest.param("PORT", False, id="port"),
        pytest.param("SERVICE_NAME", False, id="service-prefix"),
        pytest.param("MODE", False, id="setting"),
    ],
)
def test_looks_like_address_name_cases(env_name: str, expected: bool) -> None:
    assert looks_like_address_name(env_name) is expected


# Our samples


def test_read_workload_ci_fields() -> None:
    orders = cis_by_id(kubernetes.read(SAMPLES / "shop.yaml"))["k8s/shop/deployment/orders"]

    assert orders.name == "orders"
    assert orders.type == "workload"
    assert orders.environment == "staging"
    assert orders.owner == "order-team"
    assert orders.tags == ("app.kubernetes.io/part-of=shop", "app=orders", "kind=Deployment")
    assert orders.source == "kubernetes"
    assert orders.source_id == "Deployment/shop/orders"
    assert orders.attributes["kind"] == "Deployment"
    assert orders.attributes["namespace"] == "shop"
    assert orders.attributes["replicas"] == 3
    assert orders.attributes["images"] == ["busybox:1.36", "registry.example/orders:1.4.2"]
    assert orders.attributes["ports"] == [{"port": 8080, "protocol": "TCP", "container": "api", "name": "http"}]
    assert orders.attributes["labels"]["team"] == "order-team"
    assert orders.attributes["pod_labels"] == {"app": "orders", "tier": "api"}


def test_read_service_ci_fields() -> None:
    service = cis_by_id(kubernetes.read(SAMPLES / "shop.yaml"))["k8s/shop/service/orders-db"]

    assert service.type == "k8s_service"
    assert service.source_id == "Service/shop/orders-db"
    assert service.attributes["service_type"] == "ClusterIP"
    assert service.attributes["headless"] is True
    assert service.attributes["selector"] == {"app": "orders-db"}
    assert service.attributes["ports"] == [{"port": 5432, "protocol": "TCP"}]


def test_read_statefulset_and_daemonset() -> None:
    batch = kubernetes.read(SAMPLES / "shop.yaml")
    cis = cis_by_id(batch)
    database = cis["k8s/shop/statefulset/orders-db"]
    agent = cis["k8s/observability/daemonset/node-agent"]

    assert database.type == "workload"
    assert database.attributes["kind"] == "StatefulSet"
    assert database.attributes["replicas"] == 2
    assert agent.type == "workload"
    assert agent.attributes["kind"] == "DaemonSet"
    assert "replicas" not in agent.attributes
    assert dependencies(batch)["k8s/shop/service/orders-db"] == {"k8s/shop/statefulset/orders-db"}
    assert dependencies(batch)["k8s/observability/daemonset/node-agent"] == {"k8s/observability/service/collector"}


def test_read_ids_unique_across_kinds() -> None:
    batch = kubernetes.read(SAMPLES / "shop.yaml")
    ids = [ci.id for ci, _ in batch.cis]

    assert len(ids) == len(set(ids)) == 16
    assert "k8s/shop/deployment/orders" in ids
    assert "k8s/shop/service/orders" in ids


def test_read_skipped_kinds_counted() -> None:
    assert kubernetes.read(SAMPLES / "shop.yaml").skipped == {"Namespace": 1, "ConfigMap": 1}


def test_read_selector_needs_every_pair() -> None:
    batch = kubernetes.read(SAMPLES / "shop.yaml")

    # orders-worker has app=orders too, but tier=worker instead of tier=api.
    assert dependencies(batch)["k8s/shop/service/orders"] == {"k8s/shop/deployment/orders"}


def test_read_service_with_several_backends_is_redundancy_group() -> None:
    batch = kubernetes.read(SAMPLES / "shop.yaml")
    members = {r.target: r for r, _ in batch.relationships if r.source == "k8s/shop/service/cache"}

    # billing/cache-c carries app=cache too, but a Service selects only in its own namespace.
    assert set(members) == {"k8s/shop/deployment/cache-a", "k8s/shop/deployment/cache-b"}
    for relationship in members.values():
        assert relationship.redundancy == Redundancy("backends", min_available=1)


def test_read_single_backend_has_no_redundancy_group() -> None:
    batch = kubernetes.read(SAMPLES / "shop.yaml")
    relationship = next(r for r, _ in batch.relationships if r.source == "k8s/shop/service/orders")

    assert relationship.redundancy is None


@pytest.mark.parametrize(
    ("env_name", "target"),
    [
        pytest.param("WAIT_FOR", "k8s/shop/service/orders-db", id="init-container-plain-name"),
        pytest.param("DATABASE_URL", "k8s/shop/service/orders-db", id="url-with-path"),
        pytest.param("CACHE_ADDR", "k8s/shop/service/cache", id="host-namespace-svc-port"),
        pytest.param("PAYMENTS_ENDPOINT", "k8s/billing/service/payments", id="url-host-other-namespace"),
        pytest.param("LEDGER_HOST", "k8s/billing/service/ledger", id="cluster-fqdn-no-port"),
        pytest.param("TRACES_URL", "k8s/observability/service/collector", id="url-cluster-fqdn-port"),
    ],
)
def test_read_env_reference_forms(env_name: str, target: str) -> None:
    batch = kubernetes.read(SAMPLES / "shop.yaml")
    via_env = {
        name: r.target
        for r, _ in batch.relationships
        if r.source == "k8s/shop/deployment/orders"
        for name in r.attributes["env"]
    }

    assert via_env[env_name] == target


def test_read_one_relationship_per_referenced_service() -> None:
    batch = kubernetes.read(SAMPLES / "shop.yaml")
    to_database = [
        r
        for r, _ in batch.relationships
        if (r.source, r.target) == ("k8s/shop/deployment/orders", "k8s/shop/service/orders-db")
    ]

    assert len(to_database) == 1
    assert to_database[0].attributes == {"via": "env", "env": ["DATABASE_URL", "WAIT_FOR"]}


def test_read_non_references_ignored() -> None:
    batch = kubernetes.read(SAMPLES / "shop.yaml")
    orders = cis_by_id(batch)["k8s/shop/deployment/orders"]

    # PORT, ENABLE_PROFILER, METRICS_ADDR (an IP), DEBUG_HOST (localhost), CARD_GATEWAY_URL
    # (an external host), DB_PASSWORD (valueFrom) and SERVICE_NAME (its own Service) add nothing.
    assert dependencies(batch)["k8s/shop/deployment/orders"] == {
        "k8s/shop/service/orders-db",
        "k8s/shop/service/cache",
        "k8s/billing/service/payments",
        "k8s/billing/service/ledger",
        "k8s/observability/service/collector",
    }
    assert "unresolved_references" not in orders.attributes
    assert batch.warnings == []


def test_read_list_kind() -> None:
    batch = kubernetes.read(SAMPLES / "list.yaml")
    origins = {ci.id: origin.record for ci, origin in batch.cis}

    assert set(origins) == {"k8s/default/deployment/web", "k8s/default/deployment/api", "k8s/default/service/api"}
    assert origins["k8s/default/deployment/web"] == "document #1 (List), items[0] (Deployment 'default/web')"
    assert batch.skipped == {"ConfigMap": 1}
    assert dependencies(batch)["k8s/default/deployment/web"] == {"k8s/default/service/api"}


def test_read_typed_list_items_without_kind(tmp_path: Path) -> None:
    item = deployment("web")
    del item["kind"]
    path = write_manifests(tmp_path, {"apiVersion": "apps/v1", "kind": "DeploymentList", "items": [item]})

    batch = kubernetes.read(path)

    assert [ci.id for ci, _ in batch.cis] == ["k8s/default/deployment/web"]


def test_read_undefined_reference_warns() -> None:
    path = SAMPLES / "undefined-reference.yaml"
    batch = kubernetes.read(path)
    env_warnings = [w for w in batch.warnings if "env var" in w]

    assert env_warnings == [
        f"{path}: document #1 (Deployment 'default/checkout'): env var RECOMMENDER_ADDR='recommender:8080' "
        "names Service 'recommender', which the manifests do not define; no dependency recorded"
    ]


def test_read_undefined_reference_in_attributes() -> None:
    batch = kubernetes.read(SAMPLES / "undefined-reference.yaml")
    checkout = cis_by_id(batch)["k8s/default/deployment/checkout"]

    assert checkout.attributes["unresolved_references"] == [
        {"env": "RECOMMENDER_ADDR", "value": "recommender:8080", "host": "recommender"}
    ]


def test_read_undefined_reference_adds_no_ci() -> None:
    batch = kubernetes.read(SAMPLES / "undefined-reference.yaml")

    assert not [ci.id for ci, _ in batch.cis if "recommender" in ci.id]
    assert "k8s/default/deployment/checkout" not in dependencies(batch)


def test_read_service_without_selector_warns() -> None:
    path = SAMPLES / "undefined-reference.yaml"
    batch = kubernetes.read(path)

    assert (
        f"{path}: document #3 (Service 'default/legacy-db'): the Service is an alias of the external "
        "name 'db.legacy.example.com', which is outside the manifests; no dependency recorded"
    ) in batch.warnings
    assert "k8s/default/service/legacy-db" in cis_by_id(batch)


def test_read_service_selecting_nothing_warns() -> None:
    path = SAMPLES / "undefined-reference.yaml"
    batch = kubernetes.read(path)

    assert (
        f"{path}: document #4 (Service 'default/reports'): the Service selects app=reports, but no "
        "Deployment, StatefulSet or DaemonSet in namespace 'default' has those pod labels; "
        "no dependency recorded"
    ) in batch.warnings
    assert batch.problems == []


def test_read_invalid_yaml_raises() -> None:
    expected = r"invalid\.yaml: record line 6, column 5, field '\(file\)': invalid YAML"
    with pytest.raises(SourceError, match=expected):
        kubernetes.read(SAMPLES / "invalid.yaml")


def test_read_non_utf8_raises() -> None:
    with pytest.raises(SourceError, match=r"latin1\.yaml: record line 7, .*not valid UTF-8 \(byte 0xe9"):
        kubernetes.read(SAMPLES / "latin1.yaml")


def test_read_missing_name_is_problem() -> None:
    batch = kubernetes.read(SAMPLES / "missing-name.yaml")
    problem = batch.problems[0]

    assert problem.source == str(SAMPLES / "missing-name.yaml")
    assert problem.record == "document #2 (Deployment)"
    assert problem.field == "metadata.name"
    assert "give the Deployment a name" in problem.message


def test_read_document_not_mapping_is_problem() -> None:
    batch = kubernetes.read(SAMPLES / "missing-name.yaml")
    problem = batch.problems[1]

    assert len(batch.problems) == 2
    assert problem.record == "document #3"
    assert problem.field == "(document)"
    assert "not a list" in problem.message


@pytest.mark.parametrize(
    ("document", "record", "field"),
    [
        pytest.param({"apiVersion": "v1", "metadata": {"name": "x"}}, "document #1", "kind", id="no-kind"),
        pytest.param(
            {**deployment("web"), "metadata": {"name": "web", "labels": {"version": 2}}},
            "document #1 (Deployment 'default/web')",
            "metadata.labels.version",
            id="label-not-string",
        ),
        pytest.param(
            deployment("web", containers=[{"name": "web", "env": [{"name": "WORKERS", "value": 4}]}]),
            "document #1 (Deployment 'default/web')",
            "spec.template.spec.containers[0].env[0].value",
            id="env-value-not-string",
        ),
        pytest.param(
            deployment("web", containers={"name": "web"}),
            "document #1 (Deployment 'default/web')",
            "spec.template.spec.containers",
            id="containers-not-list",
        ),
        pytest.param(
            {**deployment("web"), "spec": {**deployment("web")["spec"], "replicas": "three"}},
            "document #1 (Deployment 'default/web')",
            "spec.replicas",
            id="replicas-not-number",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "api"},
                "spec": {"ports": [{"port": "http"}]},
            },
            "document #1 (Service 'default/api')",
            "spec.ports[0].port",
            id="service-port-not-number",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Service", "metadata": "api"},
            "document #1 (Service)",
            "metadata",
            id="metadata-not-mapping",
        ),
    ],
)
def test_read_wrong_field_is_problem(tmp_path: Path, document: dict[str, Any], record: str, field: str) -> None:
    batch = kubernetes.read(write_manifests(tmp_path, document))

    assert [(p.record, p.field) for p in batch.problems] == [(record, field)]
    assert batch.cis == []


def test_read_many_resolves_across_files() -> None:
    batch = kubernetes.read_many(sorted((SAMPLES / "split").glob("*.yaml")))

    assert dependencies(batch)["k8s/default/deployment/web"] == {"k8s/default/service/api"}
    assert batch.warnings == []


def test_read_one_file_resolves_within_it() -> None:
    batch = kubernetes.read(SAMPLES / "split" / "web.yaml")

    assert "k8s/default/deployment/web" not in dependencies(batch)
    assert len(batch.warnings) == 1
    expected = "env var API_ADDR='api:8080' names Service 'api', which the manifests do not define"
    assert expected in batch.warnings[0]


def test_read_files_keeps_other_files_after_bad_one() -> None:
    batch = read_files("kubernetes", [SAMPLES / "invalid.yaml", SAMPLES / "list.yaml"])

    assert [p.record for p in batch.problems] == ["line 6, column 5"]
    assert len(batch.cis) == 3


def test_load_rejects_manifests_with_problem(store: GraphStore) -> None:
    batch = kubernetes.read(SAMPLES / "missing-name.yaml")

    with pytest.raises(ImportRejectedError, match=r"document #2 \(Deployment\), field 'metadata.name'"):
        load(store, batch)
    assert store.existing_ids(["k8s/default/service/fine"]) == set()


def test_load_same_file_twice_changes_nothing(store: GraphStore) -> None:
    first = load(store, kubernetes.read(SAMPLES / "shop.yaml"))
    version = store.version()
    second = load(store, kubernetes.read(SAMPLES / "shop.yaml"))

    assert (first.result.cis_created, first.result.relationships_created) == (16, 13)
    assert second.result.cis_created == 0
    assert second.result.cis_updated == 0
    assert second.result.relationships_created == 0
    assert second.result.relationships_updated == 0
    assert store.version() == version


def test_blast_radius_one_cache_backend_degrades_orders(store: GraphStore) -> None:
    load(store, kubernetes.read(SAMPLES / "shop.yaml"))
    topology = SnapshotCache(store).current()

    radius = blast_radius(topology, ["k8s/shop/deployment/cache-a"])
    impact = {topology.ids[int(n)]: Impact(int(i)) for n, i in zip(radius.impacted, radius.impact, strict=True)}

    # The cache Service still has cache-b, so it and its consumer are degraded, not down.
    assert impact["k8s/shop/service/cache"] is Impact.DEGRADED
    assert impact["k8s/shop/deployment/orders"] is Impact.DEGRADED
    assert impact["k8s/shop/service/orders"] is Impact.DEGRADED


# Online Boutique, the real manifests


@needs_boutique
@pytest.mark.parametrize("parts", BOUTIQUE_INPUTS)
def test_boutique_call_graph(parts: list[str]) -> None:
    batch = read_boutique(parts)

    assert batch.problems == []
    assert call_graph(batch) == BOUTIQUE_CALLS
    assert {ci.name for ci, _ in batch.cis if ci.type == "workload"} == BOUTIQUE_WORKLOADS


@needs_boutique
@pytest.mark.parametrize("parts", BOUTIQUE_INPUTS)
def test_boutique_dependencies_go_through_services(parts: list[str]) -> None:
    batch = read_boutique(parts)
    types = {ci.id: ci.type for ci, _ in batch.cis}
    pairs = {(types[r.source], types[r.target]) for r, _ in batch.relationships}

    assert pairs == {("workload", "k8s_service"), ("k8s_service", "workload")}


@needs_boutique
@pytest.mark.parametrize("parts", BOUTIQUE_INPUTS)
def test_boutique_undefined_shopping_assistant(parts: list[str]) -> None:
    batch = read_boutique(parts)
    frontend = cis_by_id(batch)["k8s/default/deployment/frontend"]

    assert len(batch.warnings) == 1
    assert "frontend" in batch.warnings[0]
    assert "SHOPPING_ASSISTANT_SERVICE_ADDR='shoppingassistantservice:80'" in batch.warnings[0]
    assert "names Service 'shoppingassistantservice', which the manifests do not define" in batch.warnings[0]
    assert frontend.attributes["unresolved_references"] == [
        {
            "env": "SHOPPING_ASSISTANT_SERVICE_ADDR",
            "value": "shoppingassistantservice:80",
            "host": "shoppingassistantservice",
        }
    ]
    assert not [ci.id for ci, _ in batch.cis if "shoppingassistant" in ci.id]


@needs_boutique
def test_boutique_service_accounts_skipped() -> None:
    batch = read_boutique(["kubernetes-manifests.yaml"])

    assert batch.skipped == {"ServiceAccount": 11}


@needs_boutique
def test_boutique_folder_same_graph_as_file() -> None:
    one_file = read_boutique(["kubernetes-manifests.yaml"])
    per_service = read_boutique(["kubernetes-manifests", "*.yaml"])

    assert dependencies(per_service) == dependencies(one_file)
    assert set(cis_by_id(per_service)) == set(cis_by_id(one_file))


@needs_boutique
@pytest.mark.parametrize("parts", BOUTIQUE_INPUTS)
def test_boutique_blast_radius_of_product_catalog(store: GraphStore, parts: list[str]) -> None:
    report = load(store, read_boutique(parts))
    topology = SnapshotCache(store).current()

    radius = blast_radius(topology, ["k8s/default/deployment/productcatalogservice"])
    paths = {
        topology.ids[int(node)]: [topology.ids[i] for i in path_to(radius, int(node))]
        for node in radius.impacted
    }
    impact = {topology.ids[int(n)]: Impact(int(i)) for n, i in zip(radius.impacted, radius.impact, strict=True)}
    workloads = {ci_id for ci_id in paths if "/deployment/" in ci_id}

    assert report.rejected == []
    assert workloads == {
        "k8s/default/deployment/frontend",
        "k8s/default/deployment/checkoutservice",
        "k8s/default/deployment/recommendationservice",
        "k8s/default/deployment/loadgenerator",
    }
    assert paths["k8s/default/deployment/frontend"] == [
        "k8s/default/deployment/productcatalogservice",
        "k8s/default/service/productcatalogservice",
        "k8s/default/deployment/frontend",
    ]
    assert paths["k8s/default/deployment/checkoutservice"] == [
        "k8s/default/deployment/productcatalogservice",
        "k8s/default/service/productcatalogservice",
        "k8s/default/deployment/checkoutservice",
    ]
    assert paths["k8s/default/deployment/recommendationservice"] == [
        "k8s/default/deployment/productcatalogservice",
        "k8s/default/service/productcatalogservice",
        "k8s/default/deployment/recommendationservice",
    ]
    assert paths["k8s/default/deployment/loadgenerator"] == [
        "k8s/default/deployment/productcatalogservice",
        "k8s/default/service/productcatalogservice",
        "k8s/default/deployment/frontend",
        "k8s/default/service/frontend",
        "k8s/default/deployment/loadgenerator",
    ]
    assert {impact[ci_id] for ci_id in workloads} == {Impact.DOWN}
