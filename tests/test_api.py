"""GraphQL API over HTTP, on every store."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.store.base import GraphStore

ROOT = Path(__file__).resolve().parents[1]

BUNDLE = {
    "cis": [
        {"id": "db", "type": "database", "owner": "dba-team"},
        {"id": "app", "type": "service", "owner": "app-team", "tags": ["java"]},
        {"id": "web", "type": "service", "environment": "production"},
        {"id": "trunk-a", "type": "sip_trunk"},
        {"id": "trunk-b", "type": "sip_trunk"},
        {"id": "sbc", "type": "service"},
        {"id": "shop", "type": "business_service", "owner": "shop-owner"},
    ],
    "relationships": [
        {"source": "app", "target": "db", "type": "DEPENDS_ON"},
        {"source": "web", "target": "app", "type": "DEPENDS_ON", "strength": "soft"},
        {"source": "sbc", "target": "trunk-a", "type": "DEPENDS_ON", "redundancy": {"group": "trunks", "min_available": 1}},
        {"source": "sbc", "target": "trunk-b", "type": "DEPENDS_ON", "redundancy": {"group": "trunks", "min_available": 1}},
        {"source": "app", "target": "shop", "type": "PART_OF"},
        {"source": "sbc", "target": "shop", "type": "PART_OF"},
    ],
}

IMPORT = """
mutation($bundle: JSON!) {
  importBundle(bundle: $bundle) { result { cisCreated relationshipsCreated } rejected { field } }
}
"""

BLAST_RADIUS = """
query($ids: [ID!]!, $depth: Int, $limit: Int, $types: [String!]) {
  blastRadius(ciIds: $ids, maxDepth: $depth, limit: $limit, relationshipTypes: $types) {
    truncated
    failed { id }
    impacted { impact distance ci { id } path { id } businessServices { id } owners }
    summary {
      total
      byImpact { impact count }
      byType { type count }
      byBusinessService { ci { id } impact impactedCount }
    }
  }
}
"""


class GraphQLClient:
    def __init__(self, client: TestClient) -> None:
        self.http = client

    def post(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = self.post(query, **variables)
        assert "errors" not in body, body
        return body["data"]  # type: ignore[no-any-return]

    def error(self, query: str, **variables: Any) -> dict[str, Any]:
        body = self.post(query, **variables)
        assert body.get("errors"), body
        return body["errors"][0]  # type: ignore[no-any-return]


@pytest.fixture
def client(store: GraphStore) -> Iterator[GraphQLClient]:
    app = create_app(Settings(), store=store)
    with TestClient(app) as http:
        graphql = GraphQLClient(http)
        result = graphql.data(IMPORT, bundle=BUNDLE)
        assert result["importBundle"]["result"] == {"cisCreated": 7, "relationshipsCreated": 6}
        yield graphql


def test_api_blast_radius_impacts_and_paths(client: GraphQLClient) -> None:
    radius = client.data(BLAST_RADIUS, ids=["db"])["blastRadius"]

    impacted = {item["ci"]["id"]: item for item in radius["impacted"]}
    assert [item["ci"]["id"] for item in radius["impacted"]] == ["app", "shop", "web"]
    assert impacted["app"]["impact"] == "DOWN"
    assert impacted["web"]["impact"] == "DEGRADED"
    assert impacted["shop"]["impact"] == "DOWN"
    assert [step["id"] for step in impacted["web"]["path"]] == ["db", "app", "web"]
    assert impacted["web"]["distance"] == 2
    assert impacted["app"]["businessServices"] == [{"id": "shop"}]
    assert impacted["app"]["owners"] == ["app-team", "shop-owner"]
    assert radius["failed"] == [{"id": "db"}]
    assert radius["truncated"] is False


def test_api_blast_radius_summary_exact_when_truncated(client: GraphQLClient) -> None:
    radius = client.data(BLAST_RADIUS, ids=["db"], limit=1)["blastRadius"]

    assert radius["truncated"] is True
    assert len(radius["impacted"]) == 1
    assert radius["summary"]["total"] == 3
    assert radius["summary"]["byImpact"] == [
        {"impact": "DOWN", "count": 2},
        {"impact": "DEGRADED", "count": 1},
        {"impact": "AT_RISK", "count": 0},
    ]
    assert radius["summary"]["byType"] == [
        {"type": "business_service", "count": 1},
        {"type": "service", "count": 2},
    ]
    assert radius["summary"]["byBusinessService"] == [
        {"ci": {"id": "shop"}, "impact": "DOWN", "impactedCount": 1}
    ]


def test_api_blast_radius_redundant_trunks(client: GraphQLClient) -> None:
    one = client.data(BLAST_RADIUS, ids=["trunk-a"])["blastRadius"]
    both = client.data(BLAST_RADIUS, ids=["trunk-a", "trunk-b"])["blastRadius"]

    assert {i["ci"]["id"]: i["impact"] for i in one["impacted"]} == {"sbc": "DEGRADED", "shop": "DEGRADED"}
    assert {i["ci"]["id"]: i["impact"] for i in both["impacted"]} == {"sbc": "DOWN", "shop": "DOWN"}


def test_api_blast_radius_depth_and_types(client: GraphQLClient) -> None:
    shallow = client.data(BLAST_RADIUS, ids=["db"], depth=1)["blastRadius"]
    part_of_only = client.data(BLAST_RADIUS, ids=["app"], types=["PART_OF"])["blastRadius"]

    assert [i["ci"]["id"] for i in shallow["impacted"]] == ["app"]
    assert [i["ci"]["id"] for i in part_of_only["impacted"]] == ["shop"]


@pytest.mark.parametrize(
    ("query", "variables", "code", "message"),
    [
        pytest.param(BLAST_RADIUS, {"ids": ["nope"]}, "NOT_FOUND", "nope", id="unknown-ci"),
        pytest.param(BLAST_RADIUS, {"ids": []}, "INVALID_INPUT", "ciIds is empty", id="no-ci"),
        pytest.param(BLAST_RADIUS, {"ids": ["db"], "types": ["USES"]}, "INVALID_INPUT", "USES", id="bad-type"),
        pytest.param(BLAST_RADIUS, {"ids": ["db"], "depth": -1}, "INVALID_INPUT", "-1", id="negative-depth"),
        pytest.param("{ nothing }", {}, "INVALID_QUERY", "nothing", id="unknown-field"),
        pytest.param("{ ci(id: ", {}, "INVALID_QUERY", "Syntax Error", id="syntax"),
        pytest.param("{ cis(first: 5000) { totalCount } }", {}, "INVALID_INPUT", "5000", id="page-too-large"),
        pytest.param("{ cis(after: \"%%%\") { totalCount } }", {}, "INVALID_INPUT", "cursor", id="bad-cursor"),
    ],
)
def test_api_errors_carry_code(
    client: GraphQLClient, query: str, variables: dict[str, Any], code: str, message: str
) -> None:
    error = client.error(query, **variables)

    assert error["extensions"]["code"] == code
    assert message in error["message"]
    assert "Traceback" not in error["message"]


def test_api_ci_dependencies_and_dependents(client: GraphQLClient) -> None:
    query = """
    { ci(id: "app") {
        name
        dependencies { type provider { id } consumer { id } }
        dependents { type strength source { id } target { id } consumer { id } }
    } }
    """
    ci = client.data(query)["ci"]

    assert ci["name"] == "app"
    assert ci["dependencies"] == [{"type": "DEPENDS_ON", "provider": {"id": "db"}, "consumer": {"id": "app"}}]
    dependents = sorted(ci["dependents"], key=lambda r: r["consumer"]["id"])
    assert dependents[0] == {
        "type": "PART_OF",
        "strength": "hard",
        "source": {"id": "app"},
        "target": {"id": "shop"},
        "consumer": {"id": "shop"},
    }
    assert dependents[1]["consumer"] == {"id": "web"}
    assert dependents[1]["strength"] == "soft"


def test_api_ci_missing_is_null(client: GraphQLClient) -> None:
    assert client.data('{ ci(id: "missing") { id } }') == {"ci": None}


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        pytest.param({"type": "service"}, ["app", "sbc", "web"], id="type"),
        pytest.param({"tag": "java"}, ["app"], id="tag"),
        pytest.param({"environment": "production"}, ["web"], id="environment"),
        pytest.param({"name": "TRUNK"}, ["trunk-a", "trunk-b"], id="name"),
        pytest.param({"text": "dba-team"}, ["db"], id="text-owner"),
        pytest.param({"type": "service", "tag": "java"}, ["app"], id="combined"),
    ],
)
def test_api_cis_filter(client: GraphQLClient, filter_: dict[str, str], expected: list[str]) -> None:
    query = "query($f: CIFilter) { cis(filter: $f) { totalCount nodes { id } } }"
    result = client.data(query, f=filter_)["cis"]

    assert [node["id"] for node in result["nodes"]] == expected
    assert result["totalCount"] == len(expected)


def test_api_cis_pagination_walks_all(client: GraphQLClient) -> None:
    query = "query($after: String) { cis(first: 3, after: $after) { pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }"
    seen: list[str] = []
    after = None
    for _ in range(5):
        page = client.data(query, after=after)["cis"]
        seen.extend(edge["node"]["id"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == sorted(ci["id"] for ci in BUNDLE["cis"])


def test_api_mutations_upsert_and_delete(client: GraphQLClient) -> None:
    upsert = """
    mutation {
      upsertCIs(cis: [{id: "cache", type: "cache", owner: "app-team"}]) { cisCreated cisUpdated }
    }
    """
    relate = """
    mutation {
      upsertRelationships(relationships: [{source: "app", target: "cache", type: "DEPENDS_ON", strength: "soft"}]) {
        relationshipsCreated
      }
    }
    """
    assert client.data(upsert)["upsertCIs"] == {"cisCreated": 1, "cisUpdated": 0}
    assert client.data(upsert)["upsertCIs"] == {"cisCreated": 0, "cisUpdated": 0}
    assert client.data(relate)["upsertRelationships"] == {"relationshipsCreated": 1}

    radius = client.data(BLAST_RADIUS, ids=["cache"])["blastRadius"]
    assert {i["ci"]["id"]: i["impact"] for i in radius["impacted"]}["app"] == "DEGRADED"

    conflict = client.error('mutation { deleteCI(id: "cache") { cisDeleted } }')
    assert conflict["extensions"]["code"] == "CONFLICT"
    deleted = client.data('mutation { deleteCI(id: "cache", cascade: true) { cisDeleted relationshipsDeleted } }')
    assert deleted["deleteCI"] == {"cisDeleted": 1, "relationshipsDeleted": 1}
    assert client.data('{ ci(id: "cache") { id } }') == {"ci": None}
    missing = client.error('mutation { deleteCI(id: "cache") { cisDeleted } }')
    assert missing["extensions"]["code"] == "NOT_FOUND"


def test_api_delete_relationship(client: GraphQLClient) -> None:
    query = 'mutation { deleteRelationship(source: "web", target: "app", type: "DEPENDS_ON") }'

    assert client.data(query) == {"deleteRelationship": True}
    assert client.data(query) == {"deleteRelationship": False}
    radius = client.data(BLAST_RADIUS, ids=["db"])["blastRadius"]
    assert "web" not in {i["ci"]["id"] for i in radius["impacted"]}


@pytest.mark.parametrize(
    ("mutation", "field", "message"),
    [
        pytest.param('upsertCIs(cis: [{id: " ", type: "service"}]) { cisCreated }', "id", "identifier", id="blank-id"),
        pytest.param('upsertCIs(cis: [{id: "x", type: "Not A Type"}]) { cisCreated }', "type", "snake_case", id="bad-type"),
        pytest.param('upsertCIs(cis: [{id: "x", type: "service", status: "fine"}]) { cisCreated }', "status", "fine", id="bad-status"),
        pytest.param(
            'upsertCIs(cis: [{id: "x", type: "service", validFrom: "2026-01-01T00:00:00"}]) { cisCreated }',
            "valid_from",
            "time zone",
            id="naive-time",
        ),
        pytest.param(
            'upsertRelationships(relationships: [{source: "app", target: "ghost", type: "DEPENDS_ON"}]) { relationshipsCreated }',
            "target",
            "ghost",
            id="unknown-target",
        ),
        pytest.param(
            'upsertRelationships(relationships: [{source: "app", target: "app", type: "DEPENDS_ON"}]) { relationshipsCreated }',
            "target",
            "itself",
            id="self",
        ),
        pytest.param(
            'upsertRelationships(relationships: [{source: "app", target: "db", type: "USES"}]) { relationshipsCreated }',
            "type",
            "USES",
            id="unknown-relationship-type",
        ),
    ],
)
def test_api_mutation_rejects_bad_input(client: GraphQLClient, mutation: str, field: str, message: str) -> None:
    before = client.data("{ cis { totalCount } }")

    error = client.error(f"mutation {{ {mutation} }}")

    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert error["extensions"]["problems"][0]["field"] == field
    assert message in error["message"]
    assert client.data("{ cis { totalCount } }") == before


def test_api_import_file_kubernetes_reports_unresolved(client: GraphQLClient) -> None:
    pytest.importorskip("importers.kubernetes")
    manifest = (ROOT / "examples" / "online-boutique" / "kubernetes-manifests.yaml").read_text(encoding="utf-8")
    query = """
    mutation($content: String!) {
      importFile(format: "kubernetes", content: $content, filename: "boutique.yaml") {
        result { cisCreated } warnings
      }
    }
    """
    report = client.data(query, content=manifest)["importFile"]

    assert report["result"]["cisCreated"] > 10
    assert any("shoppingassistantservice" in warning for warning in report["warnings"])
    assert all("boutique.yaml" in warning for warning in report["warnings"])


def test_api_probes_and_metrics(client: GraphQLClient) -> None:
    http = client.http

    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    client.data(BLAST_RADIUS, ids=["db"])
    metrics = http.get("/metrics").text
    assert "faultgraph_snapshot_cis 7.0" in metrics
    assert 'faultgraph_graphql_requests_total{outcome="answered"}' in metrics


def test_api_graphiql_served(client: GraphQLClient) -> None:
    response = client.http.get("/graphql", headers={"accept": "text/html"})

    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_schema_file_matches_code() -> None:
    exported = subprocess.run(
        [sys.executable, "-m", "service", "export-schema"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    on_disk = (ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8")

    assert exported == on_disk, "schema/schema.graphql is stale; run `faultgraph export-schema > schema/schema.graphql`"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param("query($id: ID!) { ci(id: $id) { id } }", {"id": None}, id="null-required-variable"),
        pytest.param(
            "mutation($c: [CIInput!]!) { upsertCIs(cis: $c) { cisCreated } }",
            {"c": [{"id": "x", "type": "service", "criticality": 5}]},
            id="wrong-scalar-in-input",
        ),
        pytest.param(
            "mutation($c: [CIInput!]!) { upsertCIs(cis: $c) { cisCreated } }",
            {"c": [{"id": "x", "type": "service", "validFrom": "yesterday"}]},
            id="bad-datetime-variable",
        ),
        pytest.param(
            "mutation($c: [CIInput!]!) { upsertCIs(cis: $c) { cisCreated } }",
            {"c": [{"id": "x", "type": "service", "colour": "red"}]},
            id="unknown-input-field",
        ),
        pytest.param(
            "query($d: Int) { blastRadius(ciIds: [\"db\"], maxDepth: $d) { truncated } }",
            {"d": "three"},
            id="string-for-int",
        ),
    ],
)
def test_api_bad_variables_are_caller_errors(client: GraphQLClient, query: str, variables: dict[str, Any]) -> None:
    error = client.error(query, **variables)

    assert error["extensions"]["code"] in {"INVALID_INPUT", "INVALID_QUERY"}
    assert "internal error" not in error["message"]
    assert "$" in error["message"] or "Variable" in error["message"]


def test_api_import_file_names_given_filename(client: GraphQLClient) -> None:
    content = "relationships:\n  - {source: app, target: ghost, type: DEPENDS_ON}\n"
    query = """
    mutation($content: String!) {
      importFile(format: "bundle", content: $content, filename: "my.yaml") { result { cisCreated } }
    }
    """
    error = client.error(query, content=content)

    assert error["extensions"]["problems"][0]["source"] == "my.yaml"
    assert "my.yaml" in error["message"]
    assert "faultgraph-import-" not in error["message"]
