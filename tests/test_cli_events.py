"""The ``culprits`` and ``review-change`` commands, run as a user runs them, on the call-center example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import EXAMPLES
from tests.conftest import TEST_DATA
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
CALL_CENTER = ROOT / "examples" / "call-center" / "cmdb.yaml"
CHANGES = TEST_DATA / "events" / "call-center-changes.yaml"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded store with the call-center CMDB and the test changes, imported through the CLI."""
    path = tmp_path_factory.mktemp("cli-events") / "fg.db"
    result = run_cli("import", "bundle", str(CALL_CENTER), str(CHANGES), db=path)
    assert "changes: 5 read, 5 created, 0 updated, 0 unchanged" in result.stdout
    assert "incidents: 1 read, 1 created, 0 updated, 0 unchanged" in result.stdout
    return path


CULPRITS = ("culprits", "--at", "screen-pop", "--since", "2026-04-01T09:00:00Z", "--tag", "slow_response")


def test_cli_culprits_table_ranks_recent_change_first(db: Path) -> None:
    output = run_cli(*CULPRITS, "--limit", "3", db=db).stdout

    rank, _score, ci_id = output.splitlines()[2].split()[:3]
    assert (rank, ci_id) == ("1", "crm-app")
    assert "config CHG-T1 'Cut the CRM application's JDBC pool from 200 to 40 connections' finished 25 min" in output
    assert "roll back first:\n  CHG-T1" in output
    assert "candidates; showing 3" in output


def test_cli_culprits_json(db: Path) -> None:
    document = json.loads(run_cli(*CULPRITS, "--json", db=db).stdout)

    assert document["culprits"][0]["id"] == "crm-app"
    assert document["culprits"][0]["changes"][0]["id"] == "CHG-T1"
    assert document["culprits"][0]["owner"] == "crm-team"
    assert document["rollback_first"][0]["id"] == "CHG-T1"
    assert document["symptom"]["started_at"] == "2026-04-01T09:00:00Z"
    assert document["reason"] is None
    assert len(document["culprits"]) == 10


def test_cli_culprits_onset_other_offset_same_moment(db: Path) -> None:
    utc = json.loads(run_cli(*CULPRITS, "--json", db=db).stdout)
    shifted_arguments = [argument.replace("2026-04-01T09:00:00Z", "2026-04-01T11:00:00+02:00") for argument in CULPRITS]
    shifted = json.loads(run_cli(*shifted_arguments, "--json", db=db).stdout)

    assert shifted["culprits"] == utc["culprits"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            ("--at", "ghost", "--since", "2026-04-01T09:00:00Z"), "--at: CI(s) not found: ghost", id="unknown-ci"
        ),
        pytest.param(("--at", "screen-pop", "--since", "2026-04-01T09:00:00"), "has no time zone", id="naive-time"),
        pytest.param(("--at", "screen-pop", "--since", "yesterday"), "is not an ISO 8601 time", id="bad-time"),
        pytest.param(
            (
                "--since",
                "2026-04-01T09:00:00Z",
            ),
            "Missing option '--at'",
            id="no-ci",
        ),
    ],
)
def test_cli_culprits_rejects_bad_input(db: Path, arguments: tuple[str, ...], message: str) -> None:
    result = run_cli("culprits", *arguments, db=db, check=False)

    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_review_change_table(db: Path) -> None:
    output = run_cli("review-change", "CHG-T3", db=db).stdout

    assert output.startswith("CHG-T3 'Restart the CRM primary for a kernel patch' (patch, approved, risk medium)")
    assert "window: 2026-04-05T20:00:00Z to 2026-04-05T21:00:00Z" in output
    assert "risk: HIGH" in output
    assert "blast radius: 15 CIs (7 DOWN, 7 DEGRADED, 1 AT_RISK)" in output
    assert "CHG-T4    2026-04-05T20:30:00Z to 2026-04-05T21:30:00Z  crm-app" in output
    assert "INC-T1" in output
    assert "CHG-T0" in output
    assert "database-team" in output
    assert "crm-team" in output


def test_cli_review_change_json(db: Path) -> None:
    document = json.loads(run_cli("review-change", "CHG-T3", "--json", db=db).stdout)

    assert document["risk"] == "high"
    assert [item["change"]["id"] for item in document["collisions"]] == ["CHG-T4"]
    assert document["collisions"][0]["impacted_ci_ids"] == ["crm-app"]
    assert [item["incident"]["id"] for item in document["past_incidents"]] == ["INC-T1"]
    assert document["impact_summary"] == {"total": 15, "by_impact": {"DOWN": 7, "DEGRADED": 7, "AT_RISK": 1}}
    reviewers = {item["owner"]: item["ci_ids"] for item in document["reviewers"]}
    assert reviewers["database-team"] == ["crm-db-primary"]
    assert reviewers["crm-team"] == ["crm-app", "screen-pop"]


def test_cli_review_change_unknown_id(db: Path) -> None:
    result = run_cli("review-change", "CHG-404", db=db, check=False)

    assert result.returncode != 0
    assert "change 'CHG-404' not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_examples_import_changes_after_cmdb() -> None:
    paths = [path for _, path in EXAMPLES]

    assert ROOT / "examples" / "call-center" / "changes-incidents.yaml" in paths
    assert paths.index(ROOT / "examples" / "call-center" / "changes-incidents.yaml") > paths.index(CALL_CENTER)
