"""The ``plan`` and ``plan-gaps`` commands, run as a user runs them, on the plan test bundle.

The bundle is tests/data/plan/call-center.yaml, and tests/test_api_plan.py
describes its topology and the gaps of its plan.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import TEST_DATA
from tests.support.cli import run_cli
from tests.support.text import positions

PLAN_BUNDLE = TEST_DATA / "plan" / "call-center.yaml"
AS_OF = "2026-04-01T12:00:00Z"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded store with the plan test bundle, imported through the CLI."""
    path = tmp_path_factory.mktemp("cli-plan") / "fg.db"
    run_cli("import", "bundle", str(PLAN_BUNDLE), db=path)
    return path


# Import


def test_cli_import_prints_procedures_line(tmp_path: Path) -> None:
    db = tmp_path / "fg.db"

    first = run_cli("import", "bundle", str(PLAN_BUNDLE), db=db)
    second = run_cli("import", "bundle", str(PLAN_BUNDLE), db=db)

    assert "procedures: 10 read, 10 created, 0 updated, 0 unchanged" in first.stdout
    assert "procedures: 10 read, 0 created, 0 updated, 10 unchanged" in second.stdout
    assert "warning: " in first.stderr
    assert "rollback_procedure 'PROC-DB-RESTORE' is not a procedure of this import or of the store" in first.stderr


# plan


def test_cli_plan_incident_sections_order(db: Path) -> None:
    output = run_cli("plan", "--incident", "INC-1", db=db).stdout

    parts = [
        "# Emergency plan: callback-booking (Callback booking)",
        "Situation: incident INC-1 (Callback booking times out, high, resolved); symptoms at callback-booking "
        "since 2026-04-01T09:00:00Z; tags timeout",
        "## First steps",
        "2. The incident records the root cause: crm-app (CRM application). Start there.",
        "3. Service level: PROC-CRM-ROLLBACK, Roll back the CRM configuration.",
        "## 1. Notify",
        "- **care-ops**, owner of business services and transactions callback-booking (Callback booking)",
        "- **care-director**, owner of business services and transactions customer-care (Customer care)",
        "#### [ ] PROC-CARE-BANNER: Show the callback outage banner to agents",
        "#### [ ] PROC-NOTIFY-CARE: Tell the care director and open the bridge",
        "## 2. Check first",
        "1. **crm-app (CRM application)**, the recorded root cause",
        "2. **callback-booking (Callback booking)**",
        "## 3. Act",
        "**No procedure** covers hv-1 (Hypervisor 1)",
        "### Transaction level",
        "#### [ ] PROC-CALLBACK-MANUAL: Take callback requests on paper",
        "### Service level",
        "#### [ ] PROC-CRM-ROLLBACK: Roll back the CRM configuration",
        "#### [ ] PROC-JAVA-RESTART: Restart a Java application",
        "### System level",
        "#### [ ] PROC-DB-FAILOVER: Fail the database over to its replica",
        "## 4. Tooling notes",
        "#### PROC-CARE-DASHBOARD: Read the customer-care dashboard",
    ]
    found = positions(output, parts)
    assert found == sorted(found)


def test_cli_plan_steps_and_contacts(db: Path) -> None:
    output = run_cli("plan", "--incident", "INC-1", db=db).stdout

    rollback = output[output.index("PROC-CRM-ROLLBACK: Roll back") : output.index("PROC-JAVA-RESTART: Restart")]
    assert "Why: crm-app: resolved incident INC-1 (recorded on the incident)" in rollback
    assert re.search(
        r"^1\. Redeploy the previous CRM configuration release\.\n2\. Check that agents can open customer records\.$",
        rollback,
        re.MULTILINE,
    )
    assert "Contacts: CRM on call: #crm-oncall" in rollback
    assert "Contacts: Care director on call (business owner): +41 44 555 01 01" in output
    assert "Escalate: after 30 min to Head of operations: +41 44 555 09 09" in output


def test_cli_plan_symptom_rolls_back_change_first(db: Path) -> None:
    output = run_cli("plan", "--at", "crm-app", "--since", "2026-04-01T09:00:00Z", "--tag", "timeout", db=db).stdout

    assert "1. **crm-app (CRM application)**" in output
    assert "- **crm-team**, owner of CIs to check first crm-app (CRM application)" in output
    assert "Why: crm-app: rolls back config CHG-1 (Cut the CRM connection pool from 200 to 40)" in output
    service_level = output[output.index("### Service level") : output.index("### System level")]
    assert service_level.index("PROC-CRM-ROLLBACK") < service_level.index("PROC-JAVA-RESTART")


def test_cli_plan_json(db: Path) -> None:
    document = json.loads(run_cli("plan", "--incident", "INC-1", "--json", db=db).stdout)

    assert document["situation"]["incident"] == "INC-1"
    assert document["situation"]["started_at"] == "2026-04-01T09:00:00Z"
    # The owners of the recorded root cause and the top culprits have to act, so they are notified too.
    assert [(item["owner"], item["business"]) for item in document["notify"]] == [
        ("care-ops", True),
        ("care-director", True),
        ("crm-team", False),
        ("dba-team", False),
    ]
    # The escalation applies to the recorded root cause crm-app, so it leads.
    assert [item["procedure"]["id"] for item in document["communication"]] == [
        "PROC-PROD-ESCALATE",
        "PROC-CARE-BANNER",
        "PROC-NOTIFY-CARE",
    ]
    assert [item["id"] for item in document["check_first"]] == [
        "crm-app",
        "callback-booking",
        "crm-db",
        "crm-vm",
        "hv-1",
    ]
    assert document["rollback_first"] == ["CHG-1"]
    assert [(item["procedure"]["level"], item["procedure"]["id"]) for item in document["actions"]] == [
        ("transaction", "PROC-CALLBACK-MANUAL"),
        ("service", "PROC-CRM-ROLLBACK"),
        ("service", "PROC-JAVA-RESTART"),
        ("system", "PROC-DB-FAILOVER"),
        ("system", "PROC-VM-SNAPSHOT"),
    ]
    first_step = document["actions"][1]["procedure"]["steps"][0]
    assert first_step == {"text": "Redeploy the previous CRM configuration release."}
    assert [item["procedure"]["id"] for item in document["tooling"]] == ["PROC-CARE-DASHBOARD"]
    assert document["uncovered"] == ["hv-1"]


def test_cli_plan_for_ci(db: Path) -> None:
    document = json.loads(run_cli("plan", "--ci", "crm-db", "--json", db=db).stdout)

    assert document["situation"]["observed"] == ["crm-db"]
    assert document["situation"]["incident"] is None
    assert [item["id"] for item in document["check_first"]] == ["crm-db", "crm-vm", "hv-1"]
    assert [item["owner"] for item in document["notify"]] == [
        "care-ops",
        "care-director",
        "dba-team",
        "infra-team",
        "crm-team",
    ]


def test_cli_plan_output_writes_file(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "plan.md"

    result = run_cli("plan", "--incident", "INC-1", "--output", str(target), db=db)

    assert result.stdout == ""
    assert f"wrote {target}" in result.stderr
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Emergency plan: callback-booking (Callback booking)\n")
    assert "## 3. Act" in text


def test_cli_plan_json_output_writes_file(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "plan.json"

    run_cli("plan", "--incident", "INC-1", "--json", "--output", str(target), db=db)

    assert json.loads(target.read_text(encoding="utf-8"))["situation"]["incident"] == "INC-1"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(("--at", "crm-app"), "a symptom needs --since as well as --at", id="at-without-since"),
        pytest.param(("--since", "2026-04-01T09:00:00Z"), "say what the plan is for", id="since-only"),
        pytest.param(("--ci", "crm-app", "--tag", "timeout"), "give them with --at", id="ci-with-tag"),
        pytest.param(("--incident", "INC-1", "--since", "2026-04-01T09:00:00Z"), "give them with --at", id="incident-since"),
        pytest.param((), "say what the plan is for: --at with --since, --incident, or --ci", id="nothing"),
        pytest.param(("--at", "crm-app", "--since", "2026-04-01T09:00:00"), "has no time zone", id="naive-time"),
        pytest.param(("--at", "crm-app", "--since", "yesterday"), "is not an ISO 8601 time", id="bad-time"),
    ],
)
def test_cli_plan_usage_errors_exit_2(db: Path, arguments: tuple[str, ...], message: str) -> None:
    result = run_cli("plan", *arguments, db=db, check=False)

    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(("--incident", "INC-404"), "incident 'INC-404' not found", id="unknown-incident"),
        pytest.param(("--ci", "ghost"), "CI(s) not found: ghost", id="unknown-ci"),
    ],
)
def test_cli_plan_bad_input_exits_1(db: Path, arguments: tuple[str, ...], message: str) -> None:
    result = run_cli("plan", *arguments, db=db, check=False)

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_plan_without_store_exits_1(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"

    result = run_cli("plan", "--incident", "INC-1", db=missing, check=False)

    assert result.returncode == 1
    assert f"no embedded store at {missing}" in result.stderr
    assert not missing.exists()


# plan-gaps


def test_cli_plan_gaps_lists_fixture_gaps(db: Path) -> None:
    output = run_cli("plan-gaps", "--as-of", AS_OF, db=db).stdout

    parts = [
        "# Emergency plan upkeep",
        "As of 2026-04-01T12:00:00Z: 10 procedures, 6 important CIs, 5 gaps.",
        "## Important CIs without a procedure (1)",
        "- hv-1 (Hypervisor 1): criticality high; carries transaction callback-booking; "
        "carries business service customer-care",
        "## Procedures overdue for review or drill (2)",
        "- PROC-CARE-BANNER (Show the callback outage banner to agents): never drilled",
        "- PROC-DB-FAILOVER (Fail the database over to its replica): last reviewed 2024-11-04, 513 days ago "
        "(limit 365 days)",
        "## Links to CIs that are gone, and selectors that match nothing (1)",
        "- PROC-PBX-REBOOT applies_to.0: linked CI old-pbx is retired; relink or remove it",
        "## Procedures named but not in the plan (1)",
        "- CHG-0 rollback_procedure: PROC-DB-RESTORE is not in the plan",
    ]
    found = positions(output, parts)
    assert found == sorted(found)


def test_cli_plan_gaps_json(db: Path) -> None:
    document = json.loads(run_cli("plan-gaps", "--as-of", AS_OF, "--json", db=db).stdout)

    assert document["gap_count"] == 5
    assert [item["id"] for item in document["uncovered"]] == ["hv-1"]
    assert [item["id"] for item in document["stale"]] == ["PROC-CARE-BANNER", "PROC-DB-FAILOVER"]
    assert document["broken_links"] == [
        {
            "procedure": "PROC-PBX-REBOOT",
            "field": "applies_to.0",
            "ci_id": "old-pbx",
            "reason": "linked CI old-pbx is retired; relink or remove it",
        }
    ]
    assert document["missing_procedures"] == [
        {"referenced_by": "CHG-0", "field": "rollback_procedure", "procedure_id": "PROC-DB-RESTORE"}
    ]
    assert (document["review_within_days"], document["drill_within_days"], document["min_criticality"]) == (
        365,
        365,
        "high",
    )


def test_cli_plan_gaps_options(db: Path) -> None:
    document = json.loads(
        run_cli(
            "plan-gaps", "--as-of", AS_OF, "--review-days", "600", "--min-criticality", "critical", "--json", db=db
        ).stdout
    )

    assert [item["id"] for item in document["stale"]] == ["PROC-CARE-BANNER"]
    assert document["uncovered"] == [{"id": "hv-1", "reasons": ["carries business service customer-care"]}]
    assert document["gap_count"] == 4


def test_cli_plan_gaps_fail_on_gaps_exits_4(db: Path) -> None:
    plain = run_cli("plan-gaps", "--as-of", AS_OF, db=db, check=False)
    failing = run_cli("plan-gaps", "--as-of", AS_OF, "--fail-on-gaps", db=db, check=False)

    assert plain.returncode == 0
    assert failing.returncode == 4
    assert failing.stdout == plain.stdout


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        pytest.param(("--review-days", "0"), 2, "Invalid value for '--review-days'", id="review-zero"),
        pytest.param(("--drill-days", "-1"), 2, "Invalid value for '--drill-days'", id="drill-negative"),
        pytest.param(("--min-criticality", "urgent"), 2, "Invalid value for '--min-criticality'", id="criticality"),
        pytest.param(("--as-of", "2026-04-01T12:00:00"), 1, "has no time zone", id="naive-as-of"),
    ],
)
def test_cli_plan_gaps_rejects_bad_input(db: Path, arguments: tuple[str, ...], code: int, message: str) -> None:
    result = run_cli("plan-gaps", *arguments, db=db, check=False)

    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# The call-center example, as `faultgraph serve --examples` loads it


@pytest.fixture(scope="module")
def example_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-plan-example") / "fg.db"
    for name in ("cmdb.yaml", "emergency-plan.yaml", "changes-incidents.yaml"):
        run_cli("import", "bundle", str(EXAMPLE / name), db=path)
    return path


EXAMPLE = TEST_DATA.parent.parent / "examples" / "call-center"
MONDAY = ("--at", "screen-pop", "--at", "agent-desktop-app", "--since", "2026-03-09T09:05:00Z")


def test_cli_plan_example_monday_order(example_db: Path) -> None:
    text = run_cli("plan", *MONDAY, "--tag", "slow_response", "--tag", "timeout", db=example_db).stdout
    headings = [line for line in text.splitlines() if line.startswith("#")]
    sections = [line for line in headings if line.startswith(("## ", "### "))]
    procedures = [line.split(":")[0].removeprefix("#### [ ] ") for line in headings if line.startswith("#### [ ] ")]

    assert sections == [
        "## First steps",
        "## 1. Notify",
        "## 2. Check first",
        "## 3. Act",
        "### Transaction level: restore what customers and agents do",
        "### Service level",
        "### System level",
        "## 4. Tooling notes",
    ]
    assert "1. **crm-db-primary (CRM database (primary))**" in text
    assert procedures.index("PROC-CRM-DB-PARAMETERS") < procedures.index("PROC-CRM-DB-SNAPSHOT-ANALYSIS")
    assert procedures.index("PROC-CRM-DB-SNAPSHOT-ANALYSIS") < procedures.index("PROC-CRM-DB-PROMOTE-REPLICA")
    assert procedures.index("PROC-CRM-DB-PROMOTE-REPLICA") < procedures.index("PROC-CRM-DB-RESTORE")
    assert "rolls back database CHG-3101" in text


def test_cli_plan_gaps_example_lists_real_gaps(example_db: Path) -> None:
    result = run_cli("plan-gaps", "--json", "--as-of", "2026-12-04T00:00:00Z", db=example_db)
    gaps = json.loads(result.stdout)

    assert [item["id"] for item in gaps["uncovered"]] == [
        "agent-workstations",
        "corp-directory",
        "hq-access-switches",
        "payment-gateway",
    ]
    assert {item["id"] for item in gaps["stale"]} == {
        "PROC-WFM-RELEASE-ROLLBACK",
        "PROC-NET-HA-FAILOVER",
        "PROC-LEGACY-PBX-FALLBACK",
        "PROC-TXN-RECORDING-LOSS",
        "PROC-CRM-DB-RESTORE",
        "PROC-DC-DISASTER-RECOVERY",
    }
    assert [(link["procedure"], link["ci_id"]) for link in gaps["broken_links"]] == [
        ("PROC-LEGACY-PBX-FALLBACK", "legacy-pbx")
    ]
    assert gaps["missing_procedures"] == []
    assert gaps["gap_count"] == 11


def test_cli_plan_gaps_explains_no_important_ci(tmp_path: Path) -> None:
    bundle = tmp_path / "flat.yaml"
    bundle.write_text("cis:\n  - {id: web, type: service}\n  - {id: db, type: database}\n", encoding="utf-8")
    db = tmp_path / "fg.db"
    run_cli("import", "bundle", str(bundle), db=db)

    output = run_cli("plan-gaps", db=db).stdout

    assert "0 important CIs" in output
    assert "No CI counts as important: none has criticality high or higher" in output


def test_cli_plan_brief_leaves_out_steps(db: Path) -> None:
    full = run_cli("plan", "--incident", "INC-1", db=db).stdout
    brief = run_cli("plan", "--incident", "INC-1", "--brief", db=db).stdout

    assert "1. Redeploy the previous CRM configuration release." in full
    assert "1. Redeploy the previous CRM configuration release." not in brief
    assert "#### [ ] PROC-CRM-ROLLBACK: Roll back the CRM configuration" in brief
    assert "`faultgraph procedure ID` prints the steps" in brief


def test_cli_procedure_prints_steps_and_contacts(db: Path) -> None:
    output = run_cli("procedure", "PROC-CRM-ROLLBACK", db=db).stdout

    assert output.startswith("# PROC-CRM-ROLLBACK: Roll back the CRM configuration\n")
    assert "1. Redeploy the previous CRM configuration release." in output
    assert "Contacts: CRM on call: #crm-oncall" in output
    assert "Selector: tag crm" in output


def test_cli_procedure_json_is_bundle_record(db: Path) -> None:
    record = json.loads(run_cli("procedure", "PROC-CRM-ROLLBACK", "--json", db=db).stdout)

    assert record["id"] == "PROC-CRM-ROLLBACK"
    assert record["selectors"] == [{"tags": ["crm"]}]


def test_cli_procedure_unknown_exits_1(db: Path) -> None:
    result = run_cli("procedure", "PROC-NOPE", db=db, check=False)

    assert result.returncode == 1
    assert "procedure 'PROC-NOPE' not found" in result.stderr
