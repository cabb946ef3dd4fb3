"""GraphQL API of the emergency plan: procedures, emergencyPlan and planGaps, on every store.

The fixture is tests/data/plan/call-center.yaml: impact flows hv-1 -> crm-vm ->
crm-db -> crm-app -> callback-booking -> customer-care, and the plan has one
or more procedures at every level, linked directly and through type, tag,
environment and related_to selectors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.store.base import GraphStore
from tests.conftest import TEST_DATA
from tests.test_api import GraphQLClient
from tests.support.text import positions

PLAN_BUNDLE = TEST_DATA / "plan" / "call-center.yaml"

IMPORT = """
mutation($content: String!) {
  importFile(format: "bundle", content: $content, filename: "call-center.yaml") {
    result { cisCreated relationshipsCreated changesCreated incidentsCreated proceduresCreated }
    proceduresRead rejected { field } warnings
  }
}
"""

CI_PROCEDURES = """
query($id: ID!) {
  ci(id: $id) { procedures { procedure { id } ciId reason reasons direct specificity } }
}
"""

CULPRITS = """
query($symptom: SymptomInput!) {
  likelyCulprits(symptom: $symptom) {
    rank ci { id } changes { id } procedures { procedure { id } reason reasons direct specificity }
  }
}
"""

PLAN = """
query($symptom: SymptomInput, $incidentId: ID, $ciId: ID) {
  emergencyPlan(symptom: $symptom, incidentId: $incidentId, ciId: $ciId) {
    situation startedAt observedIds incident { id }
    impactedCount
    impacted { ciId impact distance }
    businessServiceIds
    notify { owner business ciIds }
    communication { procedure { id } ciIds reasons culpritRank }
    checkFirst { rank ci { id } }
    rollbackFirst { id }
    actions { level procedure { id } ciIds reasons culpritRank }
    tooling { procedure { id } ciIds }
    uncoveredIds
    markdown
  }
}
"""

GAPS = """
query($review: Int, $drill: Int, $criticality: String, $asOf: DateTime) {
  planGaps(reviewWithinDays: $review, drillWithinDays: $drill, minCriticality: $criticality, asOf: $asOf) {
    asOf reviewWithinDays drillWithinDays minCriticality procedureCount importantCount gapCount
    uncovered { ciId reasons }
    stale { procedure { id } reasons }
    brokenLinks { procedure { id } field ciId reason }
    missingProcedures { referencedBy field procedureId }
    markdown
  }
}
"""

UPSERT = """
mutation($procedures: [ProcedureInput!]!) {
  upsertProcedures(procedures: $procedures) { proceduresCreated proceduresUpdated proceduresUnchanged }
}
"""

AS_OF = "2026-04-01T12:00:00Z"
SYMPTOM_AT_CRM_APP = {"ciIds": ["crm-app"], "startedAt": "2026-04-01T09:00:00Z", "tags": ["timeout"]}
PROCEDURE_COUNT = 10


@pytest.fixture
def client(store: GraphStore) -> Iterator[GraphQLClient]:
    app = create_app(Settings(), store=store)
    with TestClient(app) as http:
        graphql = GraphQLClient(http)
        report = graphql.data(IMPORT, content=PLAN_BUNDLE.read_text(encoding="utf-8"))["importFile"]
        assert report["result"] == {
            "cisCreated": 8,
            "relationshipsCreated": 5,
            "changesCreated": 2,
            "incidentsCreated": 1,
            "proceduresCreated": PROCEDURE_COUNT,
        }
        assert report["proceduresRead"] == PROCEDURE_COUNT
        assert report["rejected"] == []
        yield graphql


def applied(client: GraphQLClient, ci_id: str) -> list[dict[str, Any]]:
    return client.data(CI_PROCEDURES, id=ci_id)["ci"]["procedures"]  # type: ignore[no-any-return]


def procedure_ids(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["procedure"]["id"] for entry in entries]


def plan_for(client: GraphQLClient, **arguments: Any) -> dict[str, Any]:
    variables = {"symptom": None, "incidentId": None, "ciId": None, **arguments}
    return client.data(PLAN, **variables)["emergencyPlan"]  # type: ignore[no-any-return]


# Import


def test_api_import_warns_missing_rollback(client: GraphQLClient) -> None:
    report = client.data(IMPORT, content=PLAN_BUNDLE.read_text(encoding="utf-8"))["importFile"]

    assert report["result"]["proceduresCreated"] == 0
    assert report["warnings"] == [
        "call-center.yaml record changes#0 (id 'CHG-0'): rollback_procedure 'PROC-DB-RESTORE' is not a procedure "
        "of this import or of the store; import the procedure or correct the id"
    ]


# Procedures of a CI


@pytest.mark.parametrize(
    ("ci_id", "expected"),
    [
        pytest.param(
            "crm-app",
            [
                ("PROC-JAVA-RESTART", ["linked to crm-app directly", "selector 1 matches: tag java"]),
                ("PROC-CARE-DASHBOARD", ["selector 1 matches: PART_OF customer-care (directly or through others)"]),
                ("PROC-PROD-ESCALATE", ["selector 1 matches: environment production"]),
                ("PROC-CRM-ROLLBACK", ["selector 1 matches: tag crm"]),
            ],
            id="direct-then-relationship-then-level",
        ),
        pytest.param(
            "crm-db",
            [
                (
                    "PROC-DB-FAILOVER",
                    ["selector 2 matches: type database, environment production", "selector 1 matches: type database"],
                ),
                ("PROC-PROD-ESCALATE", ["selector 1 matches: environment production"]),
            ],
            id="two-selectors-most-specific-first",
        ),
        pytest.param(
            "crm-vm",
            [
                ("PROC-VM-SNAPSHOT", ["selector 1 matches: HOSTED_ON hv-1"]),
                ("PROC-PROD-ESCALATE", ["selector 1 matches: environment production"]),
            ],
            id="related-to-hosted-on",
        ),
        pytest.param(
            "callback-booking",
            [
                ("PROC-CALLBACK-MANUAL", ["linked to callback-booking directly"]),
                ("PROC-CARE-BANNER", ["selector 1 matches: PART_OF customer-care"]),
                ("PROC-CARE-DASHBOARD", ["selector 1 matches: PART_OF customer-care (directly or through others)"]),
            ],
            id="part-of-direct-and-transitive",
        ),
        pytest.param(
            "customer-care",
            [("PROC-NOTIFY-CARE", ["linked to customer-care directly"])],
            id="anchor-not-its-own-part",
        ),
        pytest.param("hv-1", [], id="anchor-not-hosted-on-itself"),
        pytest.param("wallboard", [("PROC-JAVA-RESTART", ["selector 1 matches: tag java"])], id="tag-only"),
        pytest.param("old-pbx", [("PROC-PBX-REBOOT", ["linked to old-pbx directly"])], id="retired-ci"),
    ],
)
def test_api_ci_procedures_order_and_reasons(
    client: GraphQLClient, ci_id: str, expected: list[tuple[str, list[str]]]
) -> None:
    found = applied(client, ci_id)

    assert [(entry["procedure"]["id"], entry["reasons"]) for entry in found] == expected
    assert all(entry["ciId"] == ci_id for entry in found)
    assert all(entry["reason"] == entry["reasons"][0] for entry in found)


def test_api_ci_procedures_direct_flag_and_specificity(client: GraphQLClient) -> None:
    found = {entry["procedure"]["id"]: entry for entry in applied(client, "crm-app")}

    assert (found["PROC-JAVA-RESTART"]["direct"], found["PROC-JAVA-RESTART"]["specificity"]) == (True, 100)
    assert (found["PROC-CARE-DASHBOARD"]["direct"], found["PROC-CARE-DASHBOARD"]["specificity"]) == (False, 2)
    assert (found["PROC-CRM-ROLLBACK"]["direct"], found["PROC-CRM-ROLLBACK"]["specificity"]) == (False, 1)


def test_api_ci_procedures_selector_only_match(client: GraphQLClient) -> None:
    wallboard = applied(client, "wallboard")[0]

    assert wallboard["procedure"]["id"] == "PROC-JAVA-RESTART"
    assert (wallboard["direct"], wallboard["specificity"]) == (False, 1)


def test_api_related_to_part_of_direction(client: GraphQLClient) -> None:
    procedure = {
        "id": "PROC-BOOKING-PARTS",
        "title": "Check the parts of callback booking",
        "level": "service",
        "action": "diagnose",
        "selectors": [{"relatedTo": {"ci": "callback-booking", "relationship": "PART_OF"}}],
    }
    client.data(UPSERT, procedures=[procedure])

    assert "PROC-BOOKING-PARTS" in procedure_ids(applied(client, "crm-app"))
    assert "PROC-BOOKING-PARTS" not in procedure_ids(applied(client, "customer-care"))
    assert "PROC-BOOKING-PARTS" not in procedure_ids(applied(client, "callback-booking"))
    assert "PROC-BOOKING-PARTS" not in procedure_ids(applied(client, "crm-db"))


def test_api_related_to_transitive_same_type(client: GraphQLClient) -> None:
    # crm-db RUNS_ON crm-vm, so a chain of HOSTED_ON relationships to hv-1 stops at crm-vm.
    procedure = {
        "id": "PROC-HV1-ALL",
        "title": "Everything hosted on hv-1",
        "level": "system",
        "action": "diagnose",
        "selectors": [{"relatedTo": {"ci": "hv-1", "relationship": "HOSTED_ON", "transitive": True}}],
    }
    client.data(UPSERT, procedures=[procedure])

    assert "PROC-HV1-ALL" in procedure_ids(applied(client, "crm-vm"))
    assert "PROC-HV1-ALL" not in procedure_ids(applied(client, "crm-db"))
    assert "PROC-HV1-ALL" not in procedure_ids(applied(client, "hv-1"))


def test_api_procedure_by_id_with_fields(client: GraphQLClient) -> None:
    query = """
    { procedure(id: "PROC-JAVA-RESTART") {
        id title level action owner expectedMinutes lastReviewed lastDrilled
        steps { position title text } appliesToIds appliesTo { id } selectors { tags description }
    } }
    """
    procedure = client.data(query)["procedure"]

    assert (procedure["level"], procedure["action"], procedure["owner"]) == ("service", "restart", "crm-team")
    assert procedure["expectedMinutes"] == 10
    assert procedure["steps"] == [
        {"position": 1, "title": "Drain", "text": "Take the node out of the load balancer."},
        {"position": 2, "title": "Restart", "text": "Restart the service and wait for the health check."},
    ]
    assert procedure["appliesTo"] == [{"id": "crm-app"}]
    assert procedure["selectors"] == [{"tags": ["java"], "description": "tag java"}]
    assert procedure["lastReviewed"] == "2026-01-15T00:00:00+00:00"


def test_api_procedure_missing_is_null(client: GraphQLClient) -> None:
    assert client.data('{ procedure(id: "PROC-404") { id } }') == {"procedure": None}


def test_api_procedure_linked_to_retired_ci_keeps_id(client: GraphQLClient) -> None:
    query = '{ procedure(id: "PROC-PBX-REBOOT") { appliesToIds appliesTo { id status } } }'

    assert client.data(query)["procedure"] == {
        "appliesToIds": ["old-pbx"],
        "appliesTo": [{"id": "old-pbx", "status": "retired"}],
    }


def test_api_procedure_linked_to_deleted_ci(client: GraphQLClient) -> None:
    client.data('mutation { deleteCI(id: "old-pbx", cascade: true) { cisDeleted } }')

    procedure = client.data('{ procedure(id: "PROC-PBX-REBOOT") { appliesToIds appliesTo { id } } }')["procedure"]
    broken = client.data(GAPS, asOf=AS_OF)["planGaps"]["brokenLinks"]

    assert procedure == {"appliesToIds": ["old-pbx"], "appliesTo": []}
    assert [(item["field"], item["reason"]) for item in broken] == [
        ("applies_to.0", "linked CI old-pbx is not in the CMDB; relink or remove it")
    ]


# Blast radius and likely culprits


def test_api_blast_radius_entries_carry_procedures(client: GraphQLClient) -> None:
    query = '{ blastRadius(ciIds: ["crm-db"]) { impacted { ci { id } procedures { procedure { id } reason } } } }'
    impacted = {entry["ci"]["id"]: entry["procedures"] for entry in client.data(query)["blastRadius"]["impacted"]}

    assert list(impacted) == ["crm-app", "callback-booking", "customer-care"]
    assert procedure_ids(impacted["crm-app"]) == [
        "PROC-JAVA-RESTART",
        "PROC-CARE-DASHBOARD",
        "PROC-PROD-ESCALATE",
        "PROC-CRM-ROLLBACK",
    ]
    assert procedure_ids(impacted["callback-booking"]) == [
        "PROC-CALLBACK-MANUAL",
        "PROC-CARE-BANNER",
        "PROC-CARE-DASHBOARD",
    ]
    assert impacted["customer-care"] == [
        {"procedure": {"id": "PROC-NOTIFY-CARE"}, "reason": "linked to customer-care directly"}
    ]


def test_api_culprit_with_recent_change_rollback_first(client: GraphQLClient) -> None:
    culprits = client.data(CULPRITS, symptom=SYMPTOM_AT_CRM_APP)["likelyCulprits"]

    first = culprits[0]
    assert (first["ci"]["id"], first["changes"]) == ("crm-app", [{"id": "CHG-1"}])
    assert procedure_ids(first["procedures"]) == [
        "PROC-CRM-ROLLBACK",
        "PROC-JAVA-RESTART",
        "PROC-CARE-DASHBOARD",
        "PROC-PROD-ESCALATE",
    ]
    rollback = first["procedures"][0]
    assert rollback["reason"] == (
        "rolls back config CHG-1 (Cut the CRM connection pool from 200 to 40), a suspect change on crm-app"
    )
    assert rollback["reasons"][1:] == ["selector 1 matches: tag crm"]
    assert (rollback["direct"], rollback["specificity"]) == (True, 1000)


def test_api_culprit_without_change_keeps_ci_order(client: GraphQLClient) -> None:
    culprits = {item["ci"]["id"]: item for item in client.data(CULPRITS, symptom=SYMPTOM_AT_CRM_APP)["likelyCulprits"]}

    assert culprits["crm-db"]["changes"] == []
    assert procedure_ids(culprits["crm-db"]["procedures"]) == procedure_ids(applied(client, "crm-db"))


def test_api_culprit_missing_rollback_procedure(client: GraphQLClient) -> None:
    symptom = {"ciIds": ["crm-db"], "startedAt": "2026-01-10T22:30:00Z"}
    culprits = {item["ci"]["id"]: item for item in client.data(CULPRITS, symptom=symptom)["likelyCulprits"]}

    assert culprits["crm-db"]["changes"] == [{"id": "CHG-0"}]
    assert procedure_ids(culprits["crm-db"]["procedures"]) == ["PROC-DB-FAILOVER", "PROC-PROD-ESCALATE"]


# Emergency plan


def test_api_emergency_plan_for_symptom_sections(client: GraphQLClient) -> None:
    plan = plan_for(client, symptom=SYMPTOM_AT_CRM_APP)

    assert plan["observedIds"] == ["crm-app"]
    assert plan["incident"] is None
    # A timeout is no outage: the observed CI and all it reaches count as degraded.
    assert plan["impacted"] == [
        {"ciId": "crm-app", "impact": "DEGRADED", "distance": 0},
        {"ciId": "callback-booking", "impact": "DEGRADED", "distance": 1},
        {"ciId": "customer-care", "impact": "DEGRADED", "distance": 2},
    ]
    assert plan["impactedCount"] == 3
    assert plan["businessServiceIds"] == ["callback-booking", "customer-care"]
    assert plan["notify"] == [
        {"owner": "care-ops", "business": True, "ciIds": ["callback-booking"]},
        {"owner": "care-director", "business": True, "ciIds": ["customer-care"]},
        {"owner": "crm-team", "business": False, "ciIds": ["crm-app"]},
        {"owner": "dba-team", "business": False, "ciIds": ["crm-db"]},
        {"owner": "infra-team", "business": False, "ciIds": ["crm-vm"]},
    ]
    assert procedure_ids(plan["communication"]) == ["PROC-PROD-ESCALATE", "PROC-NOTIFY-CARE", "PROC-CARE-BANNER"]
    assert [item["ci"]["id"] for item in plan["checkFirst"]] == ["crm-app", "crm-db", "crm-vm", "hv-1"]
    assert plan["rollbackFirst"] == [{"id": "CHG-1"}]
    assert [(item["level"], item["procedure"]["id"]) for item in plan["actions"]] == [
        ("transaction", "PROC-CALLBACK-MANUAL"),
        ("service", "PROC-CRM-ROLLBACK"),
        ("service", "PROC-JAVA-RESTART"),
        ("system", "PROC-DB-FAILOVER"),
        ("system", "PROC-VM-SNAPSHOT"),
    ]
    assert [(item["procedure"]["id"], item["ciIds"]) for item in plan["tooling"]] == [
        ("PROC-CARE-DASHBOARD", ["crm-app", "callback-booking"])
    ]
    assert plan["uncoveredIds"] == ["hv-1"]


def test_api_emergency_plan_actions_carry_reasons_and_rank(client: GraphQLClient) -> None:
    actions = {item["procedure"]["id"]: item for item in plan_for(client, symptom=SYMPTOM_AT_CRM_APP)["actions"]}

    assert actions["PROC-CRM-ROLLBACK"]["reasons"] == [
        "crm-app: rolls back config CHG-1 (Cut the CRM connection pool from 200 to 40), a suspect change on crm-app"
    ]
    assert actions["PROC-CRM-ROLLBACK"]["culpritRank"] == 1
    assert actions["PROC-DB-FAILOVER"]["culpritRank"] == 2
    assert actions["PROC-CALLBACK-MANUAL"]["culpritRank"] is None
    assert actions["PROC-CALLBACK-MANUAL"]["ciIds"] == ["callback-booking"]


def test_api_emergency_plan_for_incident(client: GraphQLClient) -> None:
    plan = plan_for(client, incidentId="INC-1")

    assert plan["incident"] == {"id": "INC-1"}
    assert plan["observedIds"] == ["callback-booking"]
    assert plan["startedAt"] == "2026-04-01T09:00:00+00:00"
    assert plan["situation"].startswith(
        "incident INC-1 (Callback booking times out, high, resolved); symptoms at callback-booking"
    )
    # The recorded root cause leads, ahead of its higher-scored consumer.
    assert [item["ci"]["id"] for item in plan["checkFirst"]] == [
        "crm-app",
        "callback-booking",
        "crm-db",
        "crm-vm",
        "hv-1",
    ]
    assert [(item["owner"], item["business"]) for item in plan["notify"]] == [
        ("care-ops", True),
        ("care-director", True),
        ("crm-team", False),
        ("dba-team", False),
    ]
    # The escalation applies to the recorded root cause crm-app, so it leads.
    assert procedure_ids(plan["communication"]) == ["PROC-PROD-ESCALATE", "PROC-CARE-BANNER", "PROC-NOTIFY-CARE"]
    assert [item["level"] for item in plan["actions"]] == ["transaction", "service", "service", "system", "system"]
    assert procedure_ids(plan["actions"])[1] == "PROC-CRM-ROLLBACK"
    assert plan["rollbackFirst"] == [{"id": "CHG-1"}]


def test_api_emergency_plan_for_ci_starts_now(client: GraphQLClient) -> None:
    before = datetime.now(UTC)
    plan = plan_for(client, ciId="crm-db")

    started_at = datetime.fromisoformat(plan["startedAt"])
    assert before - timedelta(seconds=1) <= started_at <= datetime.now(UTC)
    assert plan["observedIds"] == ["crm-db"]
    assert [item["ci"]["id"] for item in plan["checkFirst"]] == ["crm-db", "crm-vm", "hv-1"]
    assert plan["notify"] == [
        {"owner": "care-ops", "business": True, "ciIds": ["callback-booking"]},
        {"owner": "care-director", "business": True, "ciIds": ["customer-care"]},
        {"owner": "dba-team", "business": False, "ciIds": ["crm-db"]},
        {"owner": "infra-team", "business": False, "ciIds": ["crm-vm", "hv-1"]},
        {"owner": "crm-team", "business": False, "ciIds": ["crm-app"]},
    ]
    # No change is suspect now, so the low-risk rollback comes before the restart of unstated risk.
    assert procedure_ids(plan["actions"]) == [
        "PROC-CALLBACK-MANUAL",
        "PROC-CRM-ROLLBACK",
        "PROC-JAVA-RESTART",
        "PROC-DB-FAILOVER",
        "PROC-VM-SNAPSHOT",
    ]
    assert plan["rollbackFirst"] == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        pytest.param(
            {"ciId": "crm-app"},
            ["PROC-CRM-FLAG", "PROC-CRM-ROLLBACK", "PROC-JAVA-RESTART", "PROC-CRM-SCALE"],
            id="least-risky-then-quickest",
        ),
        pytest.param(
            {"symptom": SYMPTOM_AT_CRM_APP},
            ["PROC-CRM-ROLLBACK", "PROC-CRM-FLAG", "PROC-JAVA-RESTART", "PROC-CRM-SCALE"],
            id="suspect-change-rollback-first",
        ),
    ],
)
def test_api_emergency_plan_service_actions_order(
    client: GraphQLClient, arguments: dict[str, Any], expected: list[str]
) -> None:
    extra = [
        {
            "id": "PROC-CRM-SCALE",
            "title": "Add CRM nodes",
            "level": "service",
            "action": "scale",
            "risk": "high",
            "expectedMinutes": 5,
            "appliesTo": ["crm-app"],
        },
        {
            "id": "PROC-CRM-FLAG",
            "title": "Switch off CRM search suggestions",
            "level": "service",
            "action": "disable_feature",
            "risk": "low",
            "expectedMinutes": 2,
            "selectors": [{"tags": ["crm"]}],
        },
    ]
    client.data(UPSERT, procedures=extra)

    actions = plan_for(client, **arguments)["actions"]

    assert [item["procedure"]["id"] for item in actions if item["level"] == "service"] == expected


def test_api_emergency_plan_down_tag_counts_observed_down(client: GraphQLClient) -> None:
    plan = plan_for(client, symptom={**SYMPTOM_AT_CRM_APP, "tags": ["down"]})

    assert plan["impacted"] == [
        {"ciId": "crm-app", "impact": "DOWN", "distance": 0},
        {"ciId": "callback-booking", "impact": "DOWN", "distance": 1},
        {"ciId": "customer-care", "impact": "DOWN", "distance": 2},
    ]
    assert "the observed CIs count as down; they hurt 2 more CIs (2 down)" in plan["markdown"]


def test_api_plan_markdown_headings_order(client: GraphQLClient) -> None:
    markdown = plan_for(client, symptom=SYMPTOM_AT_CRM_APP)["markdown"]

    headings = [
        "# Emergency plan: crm-app (CRM application)",
        "## First steps",
        "## 1. Notify",
        "## 2. Check first",
        "## 3. Act",
        "**No procedure** covers hv-1 (Hypervisor 1)",
        "### Transaction level",
        "### Service level",
        "### System level",
        "## 4. Tooling notes",
    ]
    found = positions(markdown, headings)
    assert found == sorted(found)


def test_api_plan_markdown_procedures_order(client: GraphQLClient) -> None:
    markdown = plan_for(client, symptom=SYMPTOM_AT_CRM_APP)["markdown"]

    headings = [
        "- **care-ops**, owner of business services",
        "- **crm-team**, owner of CIs to check first",
        "PROC-PROD-ESCALATE: Call the major-incident manager",
        "1. **crm-app (CRM application)**",
        "PROC-CALLBACK-MANUAL: Take callback requests on paper",
        "PROC-CRM-ROLLBACK: Roll back the CRM configuration",
        "PROC-JAVA-RESTART: Restart a Java application",
        "PROC-DB-FAILOVER: Fail the database over to its replica",
        "PROC-CARE-DASHBOARD: Read the customer-care dashboard",
    ]
    found = positions(markdown, headings)
    assert found == sorted(found)


def test_api_plan_markdown_steps_and_contacts(client: GraphQLClient) -> None:
    markdown = plan_for(client, symptom=SYMPTOM_AT_CRM_APP)["markdown"]

    notify_care = markdown[markdown.index("PROC-NOTIFY-CARE:") :]
    assert re.search(
        r"^1\. Call the care director\.\n2\. Open the incident bridge and post its number in #care-incidents\.$",
        notify_care,
        re.MULTILINE,
    )
    assert "Contacts: Care director on call (business owner): +41 44 555 01 01" in notify_care
    assert "1. **Drain**: Take the node out of the load balancer.\n2. **Restart**: Restart the service" in markdown
    assert "Escalate: after 30 min to Head of operations: +41 44 555 09 09" in markdown
    assert "#### [ ] PROC-CRM-ROLLBACK: Roll back the CRM configuration" in markdown
    assert (
        "- CHG-1: Cut the CRM connection pool from 200 to 40 (config, completed, rollback procedure PROC-CRM-ROLLBACK)"
        in markdown
    )


@pytest.mark.parametrize(
    ("variables", "code", "field", "message"),
    [
        pytest.param({}, "INVALID_INPUT", "symptom", "needs a symptom, an incidentId or a ciId", id="nothing-given"),
        pytest.param(
            {"incidentId": "INC-404"}, "NOT_FOUND", "incidentId", "incident 'INC-404' not found", id="incident"
        ),
        pytest.param({"ciId": "ghost"}, "NOT_FOUND", "ciId", "CI(s) not found: ghost", id="ci"),
        pytest.param(
            {"symptom": {"ciIds": ["ghost"], "startedAt": "2026-04-01T09:00:00Z"}},
            "NOT_FOUND",
            "symptom.ciIds",
            "CI(s) not found: ghost",
            id="symptom-ci",
        ),
        pytest.param(
            {"symptom": {"ciIds": ["crm-app"], "startedAt": "2026-04-01T09:00:00"}},
            "INVALID_INPUT",
            "symptom.startedAt",
            "has no time zone",
            id="naive-time",
        ),
        pytest.param(
            {"symptom": {"ciIds": [], "startedAt": "2026-04-01T09:00:00Z"}},
            "INVALID_INPUT",
            "symptom.ciIds",
            "symptom.ciIds is empty",
            id="no-ci-ids",
        ),
    ],
)
def test_api_emergency_plan_rejects_bad_input(
    client: GraphQLClient, variables: dict[str, Any], code: str, field: str, message: str
) -> None:
    error = client.error(PLAN, **{"symptom": None, "incidentId": None, "ciId": None, **variables})

    assert error["extensions"] == {"code": code, "field": field}
    assert message in error["message"]


# Plan gaps


def test_api_plan_gaps_lists_fixture_gaps(client: GraphQLClient) -> None:
    gaps = client.data(GAPS, asOf=AS_OF)["planGaps"]

    assert gaps["uncovered"] == [
        {
            "ciId": "hv-1",
            "reasons": [
                "criticality high",
                "carries transaction callback-booking",
                "carries business service customer-care",
            ],
        }
    ]
    assert gaps["stale"] == [
        {"procedure": {"id": "PROC-CARE-BANNER"}, "reasons": ["never drilled"]},
        {
            "procedure": {"id": "PROC-DB-FAILOVER"},
            "reasons": ["last reviewed 2024-11-04, 513 days ago (limit 365 days)"],
        },
    ]
    assert gaps["brokenLinks"] == [
        {
            "procedure": {"id": "PROC-PBX-REBOOT"},
            "field": "applies_to.0",
            "ciId": "old-pbx",
            "reason": "linked CI old-pbx is retired; relink or remove it",
        }
    ]
    assert gaps["missingProcedures"] == [
        {"referencedBy": "CHG-0", "field": "rollback_procedure", "procedureId": "PROC-DB-RESTORE"}
    ]
    assert (gaps["gapCount"], gaps["procedureCount"], gaps["importantCount"]) == (5, PROCEDURE_COUNT, 6)
    assert (gaps["reviewWithinDays"], gaps["drillWithinDays"], gaps["minCriticality"]) == (365, 365, "high")


def test_api_plan_gaps_markdown_sections(client: GraphQLClient) -> None:
    markdown = client.data(GAPS, asOf=AS_OF)["planGaps"]["markdown"]

    headings = [
        "# Emergency plan upkeep",
        "## Important CIs without a procedure (1)",
        "- hv-1 (Hypervisor 1): criticality high",
        "## Procedures overdue for review or drill (2)",
        "- PROC-CARE-BANNER (Show the callback outage banner to agents): never drilled",
        "## Links to CIs that are gone, and selectors that match nothing (1)",
        "- PROC-PBX-REBOOT applies_to.0: linked CI old-pbx is retired",
        "## Procedures named but not in the plan (1)",
        "- CHG-0 rollback_procedure: PROC-DB-RESTORE is not in the plan",
    ]
    found = positions(markdown, headings)
    assert found == sorted(found)


@pytest.mark.parametrize(
    ("variables", "stale", "uncovered_reasons", "important"),
    [
        pytest.param(
            {"review": 600},
            [("PROC-CARE-BANNER", ["never drilled"])],
            ["criticality high", "carries transaction callback-booking", "carries business service customer-care"],
            6,
            id="longer-review",
        ),
        pytest.param(
            {"drill": 120},
            [
                ("PROC-CALLBACK-MANUAL", ["last drilled 2025-11-20, 132 days ago (limit 120 days)"]),
                ("PROC-CARE-BANNER", ["never drilled"]),
                ("PROC-CARE-DASHBOARD", ["last drilled 2025-11-20, 132 days ago (limit 120 days)"]),
                ("PROC-CRM-ROLLBACK", ["last drilled 2025-11-20, 132 days ago (limit 120 days)"]),
                (
                    "PROC-DB-FAILOVER",
                    [
                        "last reviewed 2024-11-04, 513 days ago (limit 365 days)",
                        "last drilled 2025-11-20, 132 days ago (limit 120 days)",
                    ],
                ),
                ("PROC-JAVA-RESTART", ["last drilled 2025-11-20, 132 days ago (limit 120 days)"]),
                ("PROC-NOTIFY-CARE", ["last drilled 2025-11-20, 132 days ago (limit 120 days)"]),
                ("PROC-PBX-REBOOT", ["last drilled 2025-11-20, 132 days ago (limit 120 days)"]),
                ("PROC-PROD-ESCALATE", ["last drilled 2025-11-20, 132 days ago (limit 120 days)"]),
                ("PROC-VM-SNAPSHOT", ["last drilled 2025-11-20, 132 days ago (limit 120 days)"]),
            ],
            ["criticality high", "carries transaction callback-booking", "carries business service customer-care"],
            6,
            id="shorter-drill",
        ),
        pytest.param(
            {"criticality": "critical"},
            [
                ("PROC-CARE-BANNER", ["never drilled"]),
                ("PROC-DB-FAILOVER", ["last reviewed 2024-11-04, 513 days ago (limit 365 days)"]),
            ],
            ["carries business service customer-care"],
            6,
            id="critical-only",
        ),
        pytest.param(
            {"criticality": "low"},
            [
                ("PROC-CARE-BANNER", ["never drilled"]),
                ("PROC-DB-FAILOVER", ["last reviewed 2024-11-04, 513 days ago (limit 365 days)"]),
            ],
            ["criticality high", "carries transaction callback-booking", "carries business service customer-care"],
            7,
            id="down-to-low",
        ),
    ],
)
def test_api_plan_gaps_options(
    client: GraphQLClient,
    variables: dict[str, Any],
    stale: list[tuple[str, list[str]]],
    uncovered_reasons: list[str],
    important: int,
) -> None:
    gaps = client.data(GAPS, asOf=AS_OF, **variables)["planGaps"]

    assert [(item["procedure"]["id"], item["reasons"]) for item in gaps["stale"]] == stale
    assert gaps["uncovered"] == [{"ciId": "hv-1", "reasons": uncovered_reasons}]
    assert gaps["importantCount"] == important


def test_api_plan_gaps_selector_matching_nothing(client: GraphQLClient) -> None:
    procedure = {
        "id": "PROC-WALLBOARD-ONLY",
        "title": "Restart the wallboard",
        "level": "service",
        "action": "restart",
        "selectors": [{"type": "application", "environment": "staging"}],
        "lastReviewed": "2026-03-01T00:00:00Z",
        "lastDrilled": "2026-03-01T00:00:00Z",
    }
    client.data(UPSERT, procedures=[procedure])
    client.data('mutation { deleteCI(id: "wallboard", cascade: true) { cisDeleted } }')

    broken = client.data(GAPS, asOf=AS_OF)["planGaps"]["brokenLinks"]

    assert [(item["procedure"]["id"], item["field"]) for item in broken] == [
        ("PROC-PBX-REBOOT", "applies_to.0"),
        ("PROC-WALLBOARD-ONLY", "selectors.0"),
    ]
    assert broken[1]["ciId"] is None
    assert broken[1]["reason"] == (
        "selector (type application, environment staging) matches no live CI; correct it or remove it"
    )


@pytest.mark.parametrize(
    ("variables", "field", "message"),
    [
        pytest.param(
            {"criticality": "urgent"}, "minCriticality", "minCriticality 'urgent' is not allowed", id="criticality"
        ),
        pytest.param({"review": 0}, "reviewWithinDays", "reviewWithinDays 0 is not positive", id="review-zero"),
        pytest.param({"drill": -3}, "drillWithinDays", "drillWithinDays -3 is not positive", id="drill-negative"),
        pytest.param({"asOf": "2026-04-01T12:00:00"}, "asOf", "has no time zone", id="naive-as-of"),
    ],
)
def test_api_plan_gaps_rejects_bad_input(
    client: GraphQLClient, variables: dict[str, Any], field: str, message: str
) -> None:
    error = client.error(GAPS, **variables)

    assert error["extensions"] == {"code": "INVALID_INPUT", "field": field}
    assert message in error["message"]


# Writing procedures


NEW_PROCEDURE = {
    "id": "PROC-HV-EVACUATE",
    "title": "Move the VMs off a failing hypervisor",
    "level": "system",
    "action": "failover",
    "owner": "infra-team",
    "steps": [
        {"text": "Put the host into maintenance mode."},
        {"title": "Check", "text": "Check that every VM moved."},
    ],
    "contacts": [{"name": "Infra on call", "reach": "+41 44 555 07 07"}],
    "appliesTo": ["hv-1"],
    "lastReviewed": "2026-03-01T00:00:00Z",
    "lastDrilled": "2026-03-01T00:00:00Z",
}


def test_api_upsert_procedures_creates_and_covers(client: GraphQLClient, store: GraphStore) -> None:
    version = store.version()

    result = client.data(UPSERT, procedures=[NEW_PROCEDURE])["upsertProcedures"]

    assert result == {"proceduresCreated": 1, "proceduresUpdated": 0, "proceduresUnchanged": 0}
    assert store.version() > version
    assert procedure_ids(applied(client, "hv-1")) == ["PROC-HV-EVACUATE"]
    assert client.data(GAPS, asOf=AS_OF)["planGaps"]["uncovered"] == []


def test_api_upsert_procedures_unchanged_keeps_version(client: GraphQLClient, store: GraphStore) -> None:
    client.data(UPSERT, procedures=[NEW_PROCEDURE])
    version = store.version()

    result = client.data(UPSERT, procedures=[NEW_PROCEDURE])["upsertProcedures"]

    assert result == {"proceduresCreated": 0, "proceduresUpdated": 0, "proceduresUnchanged": 1}
    assert store.version() == version


def test_api_upsert_procedures_update_replaces_record(client: GraphQLClient, store: GraphStore) -> None:
    client.data(UPSERT, procedures=[NEW_PROCEDURE])
    version = store.version()
    moved = {key: value for key, value in NEW_PROCEDURE.items() if key != "contacts"}
    moved["appliesTo"] = ["crm-vm"]

    result = client.data(UPSERT, procedures=[moved])["upsertProcedures"]

    assert result == {"proceduresCreated": 0, "proceduresUpdated": 1, "proceduresUnchanged": 0}
    assert store.version() > version
    assert applied(client, "hv-1") == []
    assert procedure_ids(applied(client, "crm-vm"))[0] == "PROC-HV-EVACUATE"
    stored = client.data('{ procedure(id: "PROC-HV-EVACUATE") { contacts { name } appliesToIds } }')["procedure"]
    assert stored == {"contacts": [], "appliesToIds": ["crm-vm"]}


def test_api_upsert_procedures_counts_mixed_batch(client: GraphQLClient) -> None:
    existing = {
        "id": "PROC-CARE-BANNER",
        "title": "Show the callback outage banner to agents",
        "level": "communication",
        "action": "notify",
        "owner": "care-ops",
        "steps": [{"text": "Switch on the outage banner in the agent desktop."}],
        "selectors": [{"relatedTo": {"ci": "customer-care", "relationship": "PART_OF"}}],
        "lastReviewed": "2026-02-01T00:00:00Z",
    }
    drilled = {**existing, "lastDrilled": "2026-03-15T00:00:00Z"}

    unchanged = client.data(UPSERT, procedures=[existing, NEW_PROCEDURE])["upsertProcedures"]
    updated = client.data(UPSERT, procedures=[drilled])["upsertProcedures"]

    assert unchanged == {"proceduresCreated": 1, "proceduresUpdated": 0, "proceduresUnchanged": 1}
    assert updated == {"proceduresCreated": 0, "proceduresUpdated": 1, "proceduresUnchanged": 0}
    stale = client.data(GAPS, asOf=AS_OF)["planGaps"]["stale"]
    assert [item["procedure"]["id"] for item in stale] == ["PROC-DB-FAILOVER"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        pytest.param({"level": "urgent"}, "level", "'urgent' is not allowed", id="bad-level"),
        pytest.param({"action": "reboot"}, "action", "'reboot' is not allowed", id="bad-action"),
        pytest.param({"appliesTo": ["ghost"]}, "applies_to", "'ghost' not found", id="unknown-ci"),
        pytest.param(
            {"selectors": [{}]},
            "selectors.0",
            "a selector needs at least one of 'type', 'environment', 'tags' and 'related_to'",
            id="empty-selector",
        ),
        pytest.param(
            {"selectors": [{"relatedTo": {"ci": "ghost", "relationship": "HOSTED_ON"}}]},
            "selectors.0.related_to.ci",
            "'ghost' not found",
            id="unknown-anchor",
        ),
        pytest.param(
            {"selectors": [{"relatedTo": {"ci": "hv-1", "relationship": "NEXT_TO"}}]},
            "selectors.0.related_to.relationship",
            "'NEXT_TO' is not allowed",
            id="bad-relationship",
        ),
        pytest.param(
            {"lastReviewed": "2026-03-01T00:00:00"}, "last_reviewed", "has no time zone", id="naive-review-time"
        ),
    ],
)
def test_api_upsert_procedures_rejects_bad_input(
    client: GraphQLClient, store: GraphStore, change: dict[str, Any], field: str, message: str
) -> None:
    version = store.version()

    error = client.error(UPSERT, procedures=[{**NEW_PROCEDURE, **change}])

    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert error["extensions"]["problems"][0]["field"] == field
    assert error["extensions"]["problems"][0]["record"] == "procedures#0 (id 'PROC-HV-EVACUATE')"
    assert message in error["message"]
    assert store.version() == version
    assert client.data('{ procedure(id: "PROC-HV-EVACUATE") { id } }') == {"procedure": None}


def test_api_delete_procedure(client: GraphQLClient, store: GraphStore) -> None:
    version = store.version()

    deleted = client.data('mutation { deleteProcedure(id: "PROC-JAVA-RESTART") }')
    again = client.data('mutation { deleteProcedure(id: "PROC-JAVA-RESTART") }')

    assert deleted == {"deleteProcedure": True}
    assert again == {"deleteProcedure": False}
    assert store.version() > version
    assert "PROC-JAVA-RESTART" not in procedure_ids(applied(client, "crm-app"))
    assert client.data('{ procedure(id: "PROC-JAVA-RESTART") { id } }') == {"procedure": None}


def test_api_delete_rollback_procedure_gap(client: GraphQLClient) -> None:
    client.data('mutation { deleteProcedure(id: "PROC-CRM-ROLLBACK") }')

    missing = client.data(GAPS, asOf=AS_OF)["planGaps"]["missingProcedures"]
    culprit = client.data(CULPRITS, symptom=SYMPTOM_AT_CRM_APP)["likelyCulprits"][0]

    assert missing == [
        {"referencedBy": "CHG-0", "field": "rollback_procedure", "procedureId": "PROC-DB-RESTORE"},
        {"referencedBy": "CHG-1", "field": "rollback_procedure", "procedureId": "PROC-CRM-ROLLBACK"},
        {"referencedBy": "INC-1", "field": "resolved_with", "procedureId": "PROC-CRM-ROLLBACK"},
    ]
    assert culprit["changes"] == [{"id": "CHG-1"}]
    assert procedure_ids(culprit["procedures"]) == ["PROC-JAVA-RESTART", "PROC-CARE-DASHBOARD", "PROC-PROD-ESCALATE"]


def test_api_plan_markdown_multiline_step(client: GraphQLClient) -> None:
    procedure = {**NEW_PROCEDURE, "steps": [{"text": "Put the host into maintenance mode.\nWait for the VMs to move."}]}
    client.data(UPSERT, procedures=[procedure])

    markdown = plan_for(client, ciId="hv-1")["markdown"]

    assert "1. Put the host into maintenance mode.\n   Wait for the VMs to move.\n" in markdown


# Listing procedures


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        pytest.param(None, None, id="all-in-id-order"),
        pytest.param(
            {"ciId": "crm-app"},
            ["PROC-CARE-DASHBOARD", "PROC-CRM-ROLLBACK", "PROC-JAVA-RESTART", "PROC-PROD-ESCALATE"],
            id="ci",
        ),
        pytest.param({"level": "system"}, ["PROC-DB-FAILOVER", "PROC-PBX-REBOOT", "PROC-VM-SNAPSHOT"], id="level"),
        pytest.param({"action": "notify"}, ["PROC-CARE-BANNER", "PROC-NOTIFY-CARE"], id="action"),
        pytest.param({"text": "crm"}, ["PROC-CRM-ROLLBACK", "PROC-JAVA-RESTART"], id="text-id-title-owner"),
        pytest.param({"text": "CARE-OPS"}, ["PROC-CALLBACK-MANUAL", "PROC-CARE-BANNER"], id="text-owner-any-case"),
        pytest.param(
            {"ciId": "crm-app", "level": "service"}, ["PROC-CRM-ROLLBACK", "PROC-JAVA-RESTART"], id="combined"
        ),
        pytest.param({"ciId": "hv-1"}, [], id="ci-without-procedures"),
    ],
)
def test_api_procedures_filter(
    client: GraphQLClient, filter_: dict[str, Any] | None, expected: list[str] | None
) -> None:
    listed = client.data("query($f: ProcedureFilter) { procedures(filter: $f) { id } }", f=filter_)["procedures"]

    found = [item["id"] for item in listed]

    if expected is None:
        assert len(found) == PROCEDURE_COUNT
        assert found == sorted(found)
    else:
        assert found == expected


@pytest.mark.parametrize(
    ("filter_", "field"),
    [
        pytest.param({"level": "urgent"}, "filter.level", id="level"),
        pytest.param({"action": "pray"}, "filter.action", id="action"),
    ],
)
def test_api_procedures_filter_rejects_unknown_value(
    client: GraphQLClient, filter_: dict[str, Any], field: str
) -> None:
    error = client.error("query($f: ProcedureFilter) { procedures(filter: $f) { id } }", f=filter_)

    assert error["extensions"] == {"code": "INVALID_INPUT", "field": field}
    assert "is not allowed; use one of" in error["message"]


def test_api_upsert_procedures_day_and_warnings(client: GraphQLClient) -> None:
    query = """
    mutation($procedures: [ProcedureInput!]!) {
      upsertProcedures(procedures: $procedures) { proceduresCreated warnings }
    }
    """
    record = {
        "id": "PROC-NEW",
        "title": "Restart the mainframe",
        "level": "system",
        "action": "restart",
        "lastReviewed": "2026-01-05",
        "selectors": [{"type": "mainframe"}],
    }

    result = client.data(query, procedures=[record])["upsertProcedures"]
    stored = client.data('{ procedure(id: "PROC-NEW") { lastReviewed } }')["procedure"]

    assert result["proceduresCreated"] == 1
    assert len(result["warnings"]) == 1
    assert "selectors.0 (type mainframe) of procedure 'PROC-NEW' matches no CI" in result["warnings"][0]
    assert stored["lastReviewed"] == "2026-01-05T00:00:00+00:00"
