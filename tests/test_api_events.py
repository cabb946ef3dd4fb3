"""GraphQL API for changes, incidents, likely culprits and change review, on every store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from importers import native
from service.app import create_app
from service.config import Settings
from service.loader import load
from service.store.base import GraphStore
from tests.test_api import GraphQLClient

ROOT = Path(__file__).resolve().parents[1]

BUNDLE = {
    "cis": [
        {"id": "db", "type": "database", "owner": "dba-team"},
        {"id": "app", "type": "service", "owner": "app-team"},
        {"id": "web", "type": "service", "owner": "web-team"},
        {"id": "cache", "type": "cache"},
        {"id": "shop", "type": "business_service", "owner": "shop-owner"},
        {"id": "late", "type": "service", "valid_from": "2027-01-01T00:00:00Z"},
    ],
    "relationships": [
        {"source": "app", "target": "db", "type": "DEPENDS_ON"},
        {"source": "web", "target": "app", "type": "DEPENDS_ON"},
        {"source": "app", "target": "cache", "type": "DEPENDS_ON", "strength": "soft"},
        {"source": "app", "target": "shop", "type": "PART_OF"},
    ],
    "changes": [
        {
            "id": "CHG-0",
            "title": "Vacuum the orders table",
            "kind": "database",
            "status": "completed",
            "affected": ["db"],
            "actual_start": "2026-01-05T06:00:00Z",
            "actual_end": "2026-01-05T07:00:00Z",
        },
        {
            "id": "CHG-1",
            "title": "Lower the database connection limit",
            "kind": "config",
            "status": "completed",
            "risk": "medium",
            "affected": ["db"],
            "actual_start": "2026-03-02T09:30:00Z",
            "actual_end": "2026-03-02T09:40:00Z",
        },
        {
            "id": "CHG-2",
            "title": "Deploy the web front end",
            "kind": "deploy",
            "status": "completed",
            "risk": "low",
            "affected": ["web"],
            "actual_start": "2026-02-20T10:00:00Z",
            "actual_end": "2026-02-20T10:10:00Z",
        },
        {
            "id": "CHG-3",
            "title": "Upgrade the database",
            "kind": "database",
            "status": "approved",
            "affected": ["db"],
            "planned_start": "2026-03-10T20:00:00Z",
            "planned_end": "2026-03-10T22:00:00Z",
        },
        {
            "id": "CHG-4",
            "title": "Deploy the app",
            "kind": "deploy",
            "status": "approved",
            "risk": "low",
            "affected": ["app"],
            "planned_start": "2026-03-10T21:00:00Z",
            "planned_end": "2026-03-10T22:00:00Z",
        },
    ],
    "incidents": [
        {
            "id": "INC-1",
            "title": "Orders time out during the vacuum",
            "severity": "high",
            "status": "closed",
            "started_at": "2026-01-05T06:10:00Z",
            "resolved_at": "2026-01-05T07:05:00Z",
            "symptom_tags": ["timeout"],
            "impacted": ["app", "web"],
            "root_causes": ["db"],
            "caused_by_change": "CHG-0",
        },
    ],
}

IMPORT = """
mutation($bundle: JSON!) {
  importBundle(bundle: $bundle) {
    result { cisCreated changesCreated incidentsCreated } changesRead incidentsRead rejected { field }
  }
}
"""

SYMPTOM = {"ciIds": ["web"], "startedAt": "2026-03-02T10:00:00Z", "tags": ["slow_response"]}

CULPRITS = """
query($symptom: SymptomInput!, $limit: Int) {
  likelyCulprits(symptom: $symptom, limit: $limit) {
    rank score distance evidence ci { id } changes { id } incidents { id } explains { id }
  }
}
"""

ANALYSIS = """
query($symptom: SymptomInput!) {
  culpritAnalysis(symptom: $symptom) {
    reason candidateCount unknownCiIds rollbackFirst { id } culprits { ci { id } }
  }
}
"""

REVIEW = """
query($id: ID, $proposed: ChangeInput) {
  changeReview(changeId: $id, proposed: $proposed) {
    change { id }
    window { start end assumedEnd }
    risk riskReason reasons
    radius { summary { total } impacted { impact ci { id } } }
    businessImpact { ci { id } impact }
    collisions { change { id } overlapMinutes sharedCiIds impactedCiIds reason }
    pastIncidents { incident { id } changeId ciIds reason }
    reviewers { owner ciIds }
    unownedCiIds
    affected { id }
  }
}
"""


@pytest.fixture
def client(store: GraphStore) -> Iterator[GraphQLClient]:
    app = create_app(Settings(), store=store)
    with TestClient(app) as http:
        graphql = GraphQLClient(http)
        report = graphql.data(IMPORT, bundle=BUNDLE)["importBundle"]
        assert report["result"] == {"cisCreated": 6, "changesCreated": 5, "incidentsCreated": 1}
        assert (report["changesRead"], report["incidentsRead"], report["rejected"]) == (5, 1, [])
        yield graphql


# Reading changes and incidents


def test_api_change_by_id_with_links(client: GraphQLClient) -> None:
    query = """
    { change(id: "CHG-0") {
        id title kind status risk actualStart actualEnd affectedCiIds
        affected { id owner } incidents { id }
    } }
    """
    change = client.data(query)["change"]

    assert change["actualStart"] == "2026-01-05T06:00:00+00:00"
    assert (change["kind"], change["status"], change["risk"]) == ("database", "completed", "medium")
    assert change["affected"] == [{"id": "db", "owner": "dba-team"}]
    assert change["incidents"] == [{"id": "INC-1"}]


def test_api_incident_by_id_with_links(client: GraphQLClient) -> None:
    query = """
    { incident(id: "INC-1") {
        severity symptomTags impactedCiIds impacted { id } rootCauses { id } causedByChange { id title }
    } }
    """
    incident = client.data(query)["incident"]

    assert incident["impacted"] == [{"id": "app"}, {"id": "web"}]
    assert incident["rootCauses"] == [{"id": "db"}]
    assert incident["causedByChange"] == {"id": "CHG-0", "title": "Vacuum the orders table"}
    assert incident["symptomTags"] == ["timeout"]


def test_api_missing_change_and_incident_are_null(client: GraphQLClient) -> None:
    assert client.data('{ change(id: "CHG-404") { id } incident(id: "INC-404") { id } }') == {
        "change": None,
        "incident": None,
    }


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        pytest.param({"ciIds": ["db"]}, ["CHG-0", "CHG-1", "CHG-3"], id="ci"),
        pytest.param({"since": "2026-03-01T00:00:00Z"}, ["CHG-1", "CHG-3", "CHG-4"], id="since"),
        pytest.param({"since": "2026-03-02T00:00:00Z", "until": "2026-03-03T00:00:00+01:00"}, ["CHG-1"], id="window"),
        pytest.param({"status": "approved", "kind": "deploy"}, ["CHG-4"], id="status-kind"),
        pytest.param({"text": "DATABASE"}, ["CHG-1", "CHG-3"], id="text"),
    ],
)
def test_api_changes_filter(client: GraphQLClient, filter_: dict[str, Any], expected: list[str]) -> None:
    query = "query($f: ChangeFilter) { changes(filter: $f) { totalCount nodes { id } } }"
    result = client.data(query, f=filter_)["changes"]

    assert [node["id"] for node in result["nodes"]] == expected
    assert result["totalCount"] == len(expected)


def test_api_changes_pagination_walks_all(client: GraphQLClient) -> None:
    query = "query($after: String) { changes(first: 2, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } }"
    seen: list[str] = []
    after = None
    for _ in range(5):
        page = client.data(query, after=after)["changes"]
        seen.extend(edge["node"]["id"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == ["CHG-0", "CHG-1", "CHG-2", "CHG-3", "CHG-4"]


def test_api_incidents_filter(client: GraphQLClient) -> None:
    query = """
    { byChange: incidents(filter: {causedByChange: "CHG-0"}) { nodes { id } }
      byCi: incidents(filter: {ciIds: ["cache"]}) { totalCount }
      bySeverity: incidents(filter: {severity: "high", since: "2026-01-01T00:00:00Z"}) { nodes { id } } }
    """
    result = client.data(query)

    assert result["byChange"]["nodes"] == [{"id": "INC-1"}]
    assert result["byCi"]["totalCount"] == 0
    assert result["bySeverity"]["nodes"] == [{"id": "INC-1"}]


def test_api_ci_changes_newest_first_and_since(client: GraphQLClient) -> None:
    query = """
    { ci(id: "db") {
        all: changes { id }
        recent: changes(since: "2026-03-01T00:00:00Z") { id }
        incidents { id }
    } }
    """
    ci = client.data(query)["ci"]

    assert [change["id"] for change in ci["all"]] == ["CHG-3", "CHG-1", "CHG-0"]
    assert [change["id"] for change in ci["recent"]] == ["CHG-3", "CHG-1"]
    assert ci["incidents"] == [{"id": "INC-1"}]


def test_api_cis_list_changes_of_each(client: GraphQLClient) -> None:
    query = '{ cis(filter: {type: "service"}) { nodes { id changes { id } incidents { id } } } }'
    nodes = {node["id"]: node for node in client.data(query)["cis"]["nodes"]}

    assert nodes["app"]["changes"] == [{"id": "CHG-4"}]
    assert nodes["web"]["changes"] == [{"id": "CHG-2"}]
    assert nodes["web"]["incidents"] == [{"id": "INC-1"}]
    assert nodes["late"]["changes"] == []


# Likely culprits


def test_api_likely_culprits_change_before_onset_ranks_first(client: GraphQLClient) -> None:
    culprits = client.data(CULPRITS, symptom=SYMPTOM)["likelyCulprits"]

    assert [culprit["ci"]["id"] for culprit in culprits[:2]] == ["db", "web"]
    first = culprits[0]
    assert first["rank"] == 1
    assert first["changes"] == [{"id": "CHG-1"}]
    assert first["distance"] == 2
    assert first["explains"] == [{"id": "web"}]
    assert any(
        "CHG-1 'Lower the database connection limit' finished 20 min before onset" in line for line in first["evidence"]
    )
    assert [culprit["score"] for culprit in culprits] == sorted((c["score"] for c in culprits), reverse=True)


def test_api_likely_culprits_limit(client: GraphQLClient) -> None:
    assert len(client.data(CULPRITS, symptom=SYMPTOM, limit=1)["likelyCulprits"]) == 1


def test_api_culprit_analysis_rollback_first(client: GraphQLClient) -> None:
    analysis = client.data(ANALYSIS, symptom=SYMPTOM)["culpritAnalysis"]

    assert analysis["reason"] is None
    assert analysis["rollbackFirst"] == [{"id": "CHG-1"}]
    assert analysis["candidateCount"] == 4
    assert analysis["culprits"][0]["ci"]["id"] == "db"


def test_api_culprit_analysis_reason_without_candidates(client: GraphQLClient) -> None:
    symptom = {"ciIds": ["late"], "startedAt": "2026-03-02T10:00:00Z"}

    analysis = client.data(ANALYSIS, symptom=symptom)["culpritAnalysis"]

    assert analysis["culprits"] == []
    assert analysis["candidateCount"] == 0
    assert analysis["unknownCiIds"] == ["late"]
    assert "none of the symptom CIs (late) is in the topology" in analysis["reason"]


def test_api_likely_culprits_sees_new_change(client: GraphQLClient) -> None:
    upsert = """
    mutation { upsertChanges(changes: [{id: "CHG-9", title: "Resize the cache", kind: "scale", status: "failed",
      risk: "critical", affected: ["cache"], actualStart: "2026-03-02T09:55:00Z", actualEnd: "2026-03-02T09:58:00Z"}])
      { changesCreated } }
    """
    client.data(CULPRITS, symptom=SYMPTOM)

    assert client.data(upsert)["upsertChanges"] == {"changesCreated": 1}
    culprits = client.data(CULPRITS, symptom=SYMPTOM)["likelyCulprits"]
    assert culprits[0]["ci"]["id"] == "cache"
    assert culprits[0]["changes"] == [{"id": "CHG-9"}]


# Change review


def test_api_change_review_by_id(client: GraphQLClient) -> None:
    review = client.data(REVIEW, id="CHG-3")["changeReview"]

    assert review["window"] == {
        "start": "2026-03-10T20:00:00+00:00",
        "end": "2026-03-10T22:00:00+00:00",
        "assumedEnd": False,
    }
    assert review["radius"]["summary"]["total"] == 3
    assert {item["ci"]["id"]: item["impact"] for item in review["radius"]["impacted"]} == {
        "app": "DOWN",
        "shop": "DOWN",
        "web": "DOWN",
    }
    assert review["businessImpact"] == [{"ci": {"id": "shop"}, "impact": "DOWN"}]
    [collision] = review["collisions"]
    assert (collision["change"]["id"], collision["impactedCiIds"], collision["overlapMinutes"]) == (
        "CHG-4",
        ["app"],
        60.0,
    )
    assert [(item["incident"]["id"], item["changeId"]) for item in review["pastIncidents"]] == [("INC-1", "CHG-0")]
    assert review["risk"] == "critical"
    assert review["riskReason"].startswith("rated critical because the change itself is rated medium risk")
    assert review["reviewers"] == [
        {"owner": "dba-team", "ciIds": ["db"]},
        {"owner": "app-team", "ciIds": ["app"]},
        {"owner": "shop-owner", "ciIds": ["shop"]},
        {"owner": "web-team", "ciIds": ["web"]},
    ]
    assert review["affected"] == [{"id": "db"}]


def test_api_change_review_proposed(client: GraphQLClient) -> None:
    proposed = {
        "id": "draft-1",
        "title": "Flush the cache",
        "kind": "config",
        "status": "planned",
        "risk": "low",
        "affected": ["cache"],
        "plannedStart": "2026-03-10T21:30:00+01:00",
    }

    review = client.data(REVIEW, proposed=proposed)["changeReview"]

    assert review["change"] == {"id": "draft-1"}
    assert review["window"] == {
        "start": "2026-03-10T20:30:00+00:00",
        "end": "2026-03-11T00:30:00+00:00",
        "assumedEnd": True,
    }
    assert {item["ci"]["id"]: item["impact"] for item in review["radius"]["impacted"]} == {
        "app": "DEGRADED",
        "shop": "DEGRADED",
        "web": "DEGRADED",
    }
    assert [item["change"]["id"] for item in review["collisions"]] == ["CHG-4"]
    assert review["unownedCiIds"] == ["cache"]
    assert review["pastIncidents"] == []


# Mutations


def test_api_upsert_changes_and_incidents_count(client: GraphQLClient) -> None:
    changes = """
    mutation { upsertChanges(changes: [{id: "CHG-5", title: "Patch the cache", kind: "patch", status: "planned",
      affected: ["cache"], plannedStart: "2026-04-01T10:00:00+02:00"}]) { changesCreated changesUnchanged } }
    """
    incidents = """
    mutation { upsertIncidents(incidents: [{id: "INC-5", title: "Cache misses", severity: "low", status: "open",
      startedAt: "2026-04-01T09:00:00Z", impacted: ["cache"], causedByChange: "CHG-5"}]) { incidentsCreated } }
    """

    assert client.data(changes)["upsertChanges"] == {"changesCreated": 1, "changesUnchanged": 0}
    assert client.data(changes)["upsertChanges"] == {"changesCreated": 0, "changesUnchanged": 1}
    assert client.data(incidents)["upsertIncidents"] == {"incidentsCreated": 1}
    stored = client.data('{ change(id: "CHG-5") { plannedStart incidents { id } } }')["change"]
    assert stored == {"plannedStart": "2026-04-01T08:00:00+00:00", "incidents": [{"id": "INC-5"}]}


def test_api_update_change_keeps_other_fields(client: GraphQLClient) -> None:
    mutation = """
    mutation { updateChange(id: "CHG-3", status: "completed", actualStart: "2026-03-10T20:05:00Z",
                            actualEnd: "2026-03-10T21:15:00Z") {
      status actualStart actualEnd title plannedStart affectedCiIds } }
    """
    updated = client.data(mutation)["updateChange"]

    assert updated == {
        "status": "completed",
        "actualStart": "2026-03-10T20:05:00+00:00",
        "actualEnd": "2026-03-10T21:15:00+00:00",
        "title": "Upgrade the database",
        "plannedStart": "2026-03-10T20:00:00+00:00",
        "affectedCiIds": ["db"],
    }
    assert client.data('{ change(id: "CHG-3") { status } }')["change"] == {"status": "completed"}


def test_api_update_incident_sets_root_cause_and_resolution(client: GraphQLClient) -> None:
    create = """
    mutation { upsertIncidents(incidents: [{id: "INC-2", title: "Web slow", severity: "medium", status: "investigating",
      startedAt: "2026-03-02T10:00:00Z", impacted: ["web"]}]) { incidentsCreated } }
    """
    update = """
    mutation { updateIncident(id: "INC-2", status: "resolved", rootCauses: ["db"], causedByChange: "CHG-1",
                              resolvedAt: "2026-03-02T11:00:00Z") {
      status impactedCiIds rootCauseCiIds causedByChangeId resolvedAt } }
    """
    client.data(create)

    updated = client.data(update)["updateIncident"]

    assert updated == {
        "status": "resolved",
        "impactedCiIds": ["web"],
        "rootCauseCiIds": ["db"],
        "causedByChangeId": "CHG-1",
        "resolvedAt": "2026-03-02T11:00:00+00:00",
    }
    assert client.data('{ change(id: "CHG-1") { incidents { id } } }')["change"]["incidents"] == [{"id": "INC-2"}]


def test_api_delete_ci_named_by_events(client: GraphQLClient) -> None:
    conflict = client.error('mutation { deleteCI(id: "db") { cisDeleted } }')
    deleted = client.data(
        'mutation { deleteCI(id: "db", cascade: true) { relationshipsDeleted changeLinksDeleted incidentLinksDeleted } }'
    )["deleteCI"]

    assert conflict["extensions"]["code"] == "CONFLICT"
    assert "named by 3 change link(s) and 1 incident link(s)" in conflict["message"]
    assert deleted == {"relationshipsDeleted": 1, "changeLinksDeleted": 3, "incidentLinksDeleted": 1}
    change = client.data('{ change(id: "CHG-1") { affectedCiIds } }')["change"]
    assert change == {"affectedCiIds": []}


# Errors


@pytest.mark.parametrize(
    ("query", "variables", "code", "field", "message"),
    [
        pytest.param(
            CULPRITS,
            {"symptom": {**SYMPTOM, "ciIds": ["ghost"]}},
            "NOT_FOUND",
            "symptom.ciIds",
            "ghost",
            id="symptom-unknown-ci",
        ),
        pytest.param(
            CULPRITS,
            {"symptom": {**SYMPTOM, "ciIds": []}},
            "INVALID_INPUT",
            "symptom.ciIds",
            "is empty",
            id="symptom-no-ci",
        ),
        pytest.param(
            CULPRITS,
            {"symptom": {**SYMPTOM, "startedAt": "2026-03-02T10:00:00"}},
            "INVALID_INPUT",
            "symptom.startedAt",
            "has no time zone",
            id="symptom-naive-time",
        ),
        pytest.param(
            CULPRITS,
            {"symptom": {**SYMPTOM, "startedAt": "yesterday"}},
            "INVALID_INPUT",
            None,
            "startedAt",
            id="symptom-bad-time",
        ),
        pytest.param(
            CULPRITS, {"symptom": SYMPTOM, "limit": -1}, "INVALID_INPUT", "limit", "negative", id="negative-limit"
        ),
        pytest.param(
            REVIEW, {}, "INVALID_INPUT", "changeId", "exactly one of changeId and proposed", id="review-neither"
        ),
        pytest.param(
            REVIEW,
            {
                "id": "CHG-3",
                "proposed": {"id": "x", "title": "x", "kind": "config", "status": "planned", "affected": ["db"]},
            },
            "INVALID_INPUT",
            "changeId",
            "exactly one",
            id="review-both",
        ),
        pytest.param(REVIEW, {"id": "CHG-404"}, "NOT_FOUND", "changeId", "CHG-404", id="review-unknown-change"),
        pytest.param(
            REVIEW,
            {"proposed": {"id": "x", "title": "x", "kind": "config", "status": "planned", "affected": ["ghost"]}},
            "NOT_FOUND",
            "proposed.affected",
            "ghost",
            id="proposed-unknown-ci",
        ),
        pytest.param(
            REVIEW,
            {"proposed": {"id": "x", "title": "x", "kind": "rewrite", "status": "planned", "affected": ["db"]}},
            "INVALID_INPUT",
            "proposed.kind",
            "'rewrite' is not allowed",
            id="proposed-bad-kind",
        ),
        pytest.param(
            REVIEW,
            {
                "proposed": {
                    "id": "x",
                    "title": "x",
                    "kind": "config",
                    "status": "planned",
                    "affected": ["db"],
                    "plannedStart": "2026-03-10T20:00:00Z",
                    "plannedEnd": "2026-03-10T19:00:00Z",
                }
            },
            "INVALID_INPUT",
            "proposed.planned_end",
            "is before planned_start",
            id="proposed-end-before-start",
        ),
        pytest.param(
            "query($f: ChangeFilter) { changes(filter: $f) { totalCount } }",
            {"f": {"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}},
            "INVALID_INPUT",
            "filter.until",
            "is before filter.since",
            id="filter-until-before-since",
        ),
        pytest.param(
            "query($f: IncidentFilter) { incidents(filter: $f) { totalCount } }",
            {"f": {"since": "2026-03-02T00:00:00"}},
            "INVALID_INPUT",
            "filter.since",
            "has no time zone",
            id="filter-naive-time",
        ),
        pytest.param(
            '{ ci(id: "db") { changes(since: "2026-03-02") { id } } }',
            {},
            "INVALID_INPUT",
            "since",
            "has no time zone",
            id="ci-changes-naive",
        ),
    ],
)
def test_api_event_query_errors_carry_code_and_field(
    client: GraphQLClient, query: str, variables: dict[str, Any], code: str, field: str | None, message: str
) -> None:
    error = client.error(query, **variables)

    assert error["extensions"]["code"] == code
    assert error["extensions"].get("field") == field
    assert message in error["message"]
    assert "Traceback" not in error["message"]


@pytest.mark.parametrize(
    ("mutation", "field", "message"),
    [
        pytest.param(
            'upsertChanges(changes: [{id: "C", title: "t", kind: "config", status: "planned", affected: ["ghost"]}]) { changesCreated }',
            "affected",
            "'ghost' not found",
            id="change-unknown-ci",
        ),
        pytest.param(
            'upsertChanges(changes: [{id: "C", title: "t", kind: "config", status: "done", affected: ["db"]}]) { changesCreated }',
            "status",
            "'done' is not allowed",
            id="change-bad-status",
        ),
        pytest.param(
            'upsertChanges(changes: [{id: "C", title: "t", kind: "config", status: "planned", affected: ["db"], '
            'plannedStart: "2026-03-01T10:00:00"}]) { changesCreated }',
            "planned_start",
            "has no time zone",
            id="change-naive-time",
        ),
        pytest.param(
            'upsertIncidents(incidents: [{id: "I", title: "t", severity: "low", status: "open", '
            'startedAt: "2026-03-01T10:00:00Z", resolvedAt: "2026-03-01T09:00:00Z"}]) { incidentsCreated }',
            "resolved_at",
            "is before started_at",
            id="incident-resolved-before-start",
        ),
        pytest.param(
            'upsertIncidents(incidents: [{id: "I", title: "t", severity: "low", status: "open", '
            'startedAt: "2026-03-01T10:00:00Z", causedByChange: "CHG-404"}]) { incidentsCreated }',
            "caused_by_change",
            "'CHG-404' not found",
            id="incident-unknown-change",
        ),
        pytest.param(
            'updateChange(id: "CHG-1", actualEnd: "2026-03-02T09:00:00Z") { id }',
            "actual_end",
            "is before actual_start",
            id="update-change-merged-invalid",
        ),
        pytest.param(
            'updateIncident(id: "INC-1", rootCauses: ["ghost"]) { id }',
            "root_causes",
            "'ghost' not found",
            id="update-incident-unknown-ci",
        ),
    ],
)
def test_api_event_mutation_rejects_bad_input(client: GraphQLClient, mutation: str, field: str, message: str) -> None:
    before = client.data(
        "{ changes { totalCount nodes { status actualEnd } } incidents { totalCount nodes { rootCauseCiIds } } }"
    )

    error = client.error(f"mutation {{ {mutation} }}")

    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert error["extensions"]["problems"][0]["field"] == field
    assert message in error["message"]
    assert (
        client.data(
            "{ changes { totalCount nodes { status actualEnd } } incidents { totalCount nodes { rootCauseCiIds } } }"
        )
        == before
    )


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param('updateChange(id: "CHG-404", status: "completed") { id }', id="change"),
        pytest.param('updateIncident(id: "INC-404", status: "closed") { id }', id="incident"),
    ],
)
def test_api_update_unknown_record_is_not_found(client: GraphQLClient, mutation: str) -> None:
    error = client.error(f"mutation {{ {mutation} }}")

    assert error["extensions"] == {"code": "NOT_FOUND", "field": "id"}
    assert "404' not found" in error["message"]


# The call-center example that the README shows


README_CULPRITS = """
query {
  culpritAnalysis(symptom: {
    ciIds: ["screen-pop", "agent-desktop-app"]
    startedAt: "2026-03-09T09:05:00Z"
    tags: ["slow_response", "timeout"]
    text: "Screen pops take 20 to 30 seconds and time out"
  }, limit: 3) {
    culprits { rank score ci { id owner } changes { id title } incidents { id } evidence }
    rollbackFirst { id title }
    candidateCount
  }
}
"""

README_REVIEW = """
query {
  changeReview(changeId: "CHG-3120") {
    risk
    reasons
    radius { summary { total byImpact { impact count } } }
    collisions { change { id title } reason }
    pastIncidents { incident { id title } changeId }
    reviewers { owner ciIds }
  }
}
"""


@pytest.fixture
def call_center(store: GraphStore) -> Iterator[GraphQLClient]:
    load(store, native.read(ROOT / "examples" / "call-center" / "cmdb.yaml"))
    load(store, native.read(ROOT / "examples" / "call-center" / "changes-incidents.yaml"))
    with TestClient(create_app(Settings(), store=store)) as http:
        yield GraphQLClient(http)


def test_api_readme_culprits_on_call_center(call_center: GraphQLClient) -> None:
    analysis = call_center.data(README_CULPRITS)["culpritAnalysis"]

    first = analysis["culprits"][0]
    assert (first["ci"]["id"], first["changes"][0]["id"], first["incidents"]) == (
        "crm-db-primary",
        "CHG-3101",
        [{"id": "INC-2871"}],
    )
    assert [culprit["ci"]["id"] for culprit in analysis["culprits"][1:]] == ["agent-desktop-app", "agent-desktop-vm-1"]
    assert analysis["rollbackFirst"] == [
        {"id": "CHG-3101", "title": "Lower max_connections on the CRM primary from 400 to 150"}
    ]
    assert analysis["candidateCount"] == 41


def test_api_readme_change_review_on_call_center(call_center: GraphQLClient) -> None:
    review = call_center.data(README_REVIEW)["changeReview"]

    assert review["risk"] == "critical"
    assert len(review["reasons"]) == 5
    assert review["radius"]["summary"]["total"] == 15
    assert [item["change"]["id"] for item in review["collisions"]] == ["CHG-3121", "CHG-3122"]
    assert review["pastIncidents"] == [
        {
            "incident": {"id": "INC-2871", "title": "Screen pops time out after the CRM database index rebuild"},
            "changeId": "CHG-2950",
        }
    ]
    assert review["reviewers"][0] == {"owner": "database-team", "ciIds": ["crm-db-primary"]}
