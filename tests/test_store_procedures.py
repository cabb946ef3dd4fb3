"""Procedures in the store contract, the bundle records and the shared loader, on every store kind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.errors import ImportRejectedError
from service.loader import load
from service.model import (
    CI,
    Change,
    ChangeKind,
    ChangeStatus,
    Contact,
    EscalationStep,
    Procedure,
    ProcedureAction,
    ProcedureLevel,
    RelatedTo,
    Relationship,
    RelationshipType,
    Risk,
    Selector,
    Status,
    Step,
)
from service.records import Origin, batch_from_records, change_to_record, procedure_from_record, procedure_to_record
from service.snapshot import SnapshotCache
from service.store.base import GraphStore

RUNS_ON = RelationshipType.RUNS_ON

FULL = Procedure(
    id="PROC-DB-FAILOVER",
    title="Fail the CRM database over to the replica",
    level=ProcedureLevel.SYSTEM,
    action=ProcedureAction.FAILOVER,
    steps=(Step("Stop writes at the pooler."), Step("Promote the replica: `pg_ctl promote`.", title="Promote")),
    description="Use when the primary is down for more than 5 minutes.",
    expected_minutes=20,
    risk=Risk.HIGH,
    owner="database-team",
    contacts=(Contact("DBA on call", role="primary", reach="+1-555-0142"), Contact("database-team")),
    escalation=(EscalationStep(15, Contact("Head of IT operations", reach="#it-ops-bridge")),),
    applies_to=("db",),
    selectors=(
        Selector(type="database", environment="production", tags=("crm", "pci")),
        Selector(related_to=RelatedTo("hv-1", RUNS_ON, transitive=True)),
    ),
    last_reviewed=datetime(2026, 1, 15, tzinfo=UTC),
    last_drilled=datetime(2025, 11, 3, 22, 0, tzinfo=UTC),
    tags=("crm", "ünïcode ✓"),
    source="handbook",
    source_id="chapter-4.2",
    attributes={"page": 17},
)


def procedure(procedure_id: str, **fields: Any) -> Procedure:
    fields.setdefault("title", f"Procedure {procedure_id}")
    fields.setdefault("level", ProcedureLevel.SERVICE)
    fields.setdefault("action", ProcedureAction.RESTART)
    return Procedure(id=procedure_id, **fields)


CIS = [
    CI(id="db", name="CRM database", type="database", environment="production", tags=("crm", "pci")),
    CI(id="app", name="CRM app", type="service"),
    CI(id="hv-1", name="Hypervisor 1", type="hypervisor"),
]


@pytest.fixture
def plan_store(store: GraphStore) -> GraphStore:
    store.write(CIS, [Relationship("db", "hv-1", RUNS_ON)])
    return store


# Records


def test_procedure_record_round_trip() -> None:
    record = procedure_to_record(FULL)

    built, problems = procedure_from_record(record, Origin("test", "#0"))

    assert problems == []
    assert built == FULL


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        pytest.param({"level": "urgent"}, "level", "'urgent' is not allowed; use one of 'communication'", id="level"),
        pytest.param({"action": "pray"}, "action", "'pray' is not allowed", id="action"),
        pytest.param({"title": ""}, "title", "", id="empty-title"),
        pytest.param({"steps": [{"title": "only a title"}]}, "steps.0", "a step is a non-empty text", id="step"),
        pytest.param({"selectors": [{}]}, "selectors.0", "a selector needs at least one of", id="empty-selector"),
        pytest.param(
            {"selectors": [{"type": "Database Server"}]}, "selectors.0.type", "not a valid CI type", id="selector-type"
        ),
        pytest.param(
            {"selectors": [{"related_to": {"ci": "x", "relationship": "OWNS"}}]},
            "selectors.0.related_to.relationship",
            "'OWNS' is not allowed",
            id="relationship",
        ),
        pytest.param({"expected_minutes": -5}, "expected_minutes", "", id="negative-minutes"),
        pytest.param({"last_drilled": "2026-03-01T10:00:00"}, "last_drilled", "has no time zone", id="no-zone"),
        pytest.param({"last_reviewed": "last spring"}, "last_reviewed", "is not an ISO 8601 time", id="not-a-time"),
        pytest.param({"escalation": [{"after_minutes": 10}]}, "escalation.0", "'contact' is a required property", id="escalation"),
        pytest.param({"colour": "red"}, "(record)", "remove it or check its spelling", id="unknown-field"),
    ],
)
def test_procedure_record_rejects_bad_field(changes: dict[str, Any], field: str, message: str) -> None:
    record = {"id": "P", "title": "Restart", "level": "system", "action": "restart", **changes}

    built, problems = procedure_from_record(record, Origin("plan.yaml", "procedures#0 (id 'P')"))

    assert built is None
    assert [(p.source, p.record, p.field) for p in problems] == [("plan.yaml", "procedures#0 (id 'P')", field)]
    assert message in problems[0].message


def test_procedure_record_reads_plain_day_as_utc_midnight() -> None:
    record = {"id": "P", "title": "Restart", "level": "system", "action": "restart", "last_reviewed": "2026-02-28"}

    built, _ = procedure_from_record(record, Origin("plan.yaml", "#0"))

    assert built is not None
    assert built.last_reviewed == datetime(2026, 2, 28, tzinfo=UTC)


# Store contract


def test_write_procedures_counts_created_updated_unchanged(plan_store: GraphStore) -> None:
    first = plan_store.write([], [], procedures=[FULL, procedure("P2")])
    renamed = procedure("P2", title="Restart the CRM app")

    second = plan_store.write([], [], procedures=[FULL, renamed])

    assert (first.procedures_created, first.procedures_updated, first.procedures_unchanged) == (2, 0, 0)
    assert (second.procedures_created, second.procedures_updated, second.procedures_unchanged) == (0, 1, 1)
    assert plan_store.get_procedures(["P2", FULL.id]) == {"P2": renamed, FULL.id: FULL}


def test_write_same_procedures_leaves_version(plan_store: GraphStore) -> None:
    plan_store.write([], [], procedures=[FULL])
    version = plan_store.version()

    result = plan_store.write([], [], procedures=[FULL])

    assert not result.changed
    assert plan_store.version() == version


def test_write_procedure_given_twice_counts_each_copy(plan_store: GraphStore) -> None:
    changed = procedure("P1", owner="crm-team")

    result = plan_store.write([], [], procedures=[procedure("P1"), changed, changed], batch_size=2)

    assert (result.procedures_created, result.procedures_updated, result.procedures_unchanged) == (1, 1, 1)
    assert plan_store.get_procedures(["P1"]) == {"P1": changed}


def test_load_procedures_in_id_order_with_version(plan_store: GraphStore) -> None:
    plan_store.write([], [], procedures=[procedure("b"), procedure("B"), procedure("a-2"), procedure("a")])

    version, procedures = plan_store.load_procedures()

    assert version == plan_store.version()
    assert [p.id for p in procedures] == ["B", "a", "a-2", "b"]


def test_delete_procedure_reports_whether_it_existed(plan_store: GraphStore) -> None:
    plan_store.write([], [], procedures=[procedure("P1")])
    version = plan_store.version()

    assert plan_store.delete_procedure("P1") is True
    assert plan_store.version() == version + 1
    assert plan_store.delete_procedure("P1") is False
    assert plan_store.version() == version + 1
    assert plan_store.get_procedures(["P1"]) == {}


def test_deleting_linked_ci_keeps_procedure_link(plan_store: GraphStore) -> None:
    plan_store.write([CI(id="old-pbx", name="Old PBX", type="pbx")], [], procedures=[procedure("P1", applies_to=("old-pbx",))])

    plan_store.delete_ci("old-pbx", cascade=True)

    assert plan_store.get_procedures(["P1"])["P1"].applies_to == ("old-pbx",)


def test_snapshot_holds_procedures_of_current_version(plan_store: GraphStore) -> None:
    cache = SnapshotCache(plan_store)
    before = cache.snapshot()

    plan_store.write([], [], procedures=[FULL])
    after = cache.snapshot()

    assert len(before.plan) == 0
    assert after.plan.procedures == {FULL.id: FULL}
    assert after.version == plan_store.version()


# Loader


def _bundle(store: GraphStore, procedures: list[dict[str, Any]], **kwargs: Any) -> Any:
    batch = batch_from_records([], [], "plan.yaml", procedures=procedures)
    return load(store, batch, **kwargs)


RESTART = {"id": "P1", "title": "Restart", "level": "system", "action": "restart"}


def test_loader_rejects_link_to_unknown_ci(plan_store: GraphStore) -> None:
    records = [{**RESTART, "applies_to": ["db", "pbx-9"]}]

    with pytest.raises(ImportRejectedError, match=r"field 'applies_to': CI\(s\) 'pbx-9' not found") as caught:
        _bundle(plan_store, records)

    assert caught.value.problems[0].record == "procedures#0 (id 'P1')"
    assert plan_store.get_procedures(["P1"]) == {}


def test_loader_rejects_selector_anchored_on_unknown_ci(plan_store: GraphStore) -> None:
    records = [{**RESTART, "selectors": [{"related_to": {"ci": "cluster-9", "relationship": "RUNS_ON"}}]}]

    with pytest.raises(ImportRejectedError, match=r"field 'selectors.0.related_to.ci': CI\(s\) 'cluster-9'"):
        _bundle(plan_store, records)


def test_loader_keep_going_writes_valid_procedures(plan_store: GraphStore) -> None:
    records = [{**RESTART, "applies_to": ["pbx-9"]}, {**RESTART, "id": "P2", "applies_to": ["db"]}]

    report = _bundle(plan_store, records, keep_going=True)

    assert [problem.field for problem in report.rejected] == ["applies_to"]
    assert report.result.procedures_created == 1
    assert set(plan_store.get_procedures(["P1", "P2"])) == {"P2"}


def test_loader_rejects_conflicting_duplicate_ids(plan_store: GraphStore) -> None:
    records = [RESTART, {**RESTART, "title": "Restart again"}]

    with pytest.raises(ImportRejectedError, match="procedure id 'P1' is also defined by plan.yaml record"):
        _bundle(plan_store, records)


@pytest.mark.parametrize(
    "selector",
    [
        pytest.param({"type": "mainframe"}, id="type"),
        pytest.param({"type": "database", "environment": "staging"}, id="environment"),
        pytest.param({"tags": ["crm", "gdpr"]}, id="second-tag"),
        pytest.param({"related_to": {"ci": "hv-1", "relationship": "HOSTED_ON"}}, id="relationship-type"),
        pytest.param({"type": "service", "related_to": {"ci": "hv-1", "relationship": "RUNS_ON"}}, id="related-type"),
    ],
)
def test_loader_warns_about_selector_matching_nothing(plan_store: GraphStore, selector: dict[str, Any]) -> None:
    report = _bundle(plan_store, [{**RESTART, "selectors": [{"type": "database"}, selector]}])

    assert report.result.procedures_created == 1
    assert len(report.warnings) == 1
    assert "plan.yaml record procedures#0 (id 'P1'): selectors.1 (" in report.warnings[0]
    assert "matches no CI" in report.warnings[0]


@pytest.mark.parametrize(
    "selector",
    [
        pytest.param({"type": "database", "environment": "production", "tags": ["pci", "crm"]}, id="attributes"),
        pytest.param({"related_to": {"ci": "hv-1", "relationship": "RUNS_ON"}}, id="relationship"),
        pytest.param({"type": "database", "related_to": {"ci": "hv-1", "relationship": "RUNS_ON"}}, id="both"),
    ],
)
def test_loader_accepts_selector_matching_stored_ci(plan_store: GraphStore, selector: dict[str, Any]) -> None:
    report = _bundle(plan_store, [{**RESTART, "selectors": [selector]}])

    assert report.warnings == []


def test_loader_selector_may_match_ci_of_same_import(store: GraphStore) -> None:
    batch = batch_from_records(
        [{"id": "sbc-1", "type": "session_border_controller"}],
        [],
        "plan.yaml",
        procedures=[{**RESTART, "selectors": [{"type": "session_border_controller"}]}],
    )

    report = load(store, batch)

    assert report.warnings == []


def test_loader_warns_about_rollback_procedure_not_in_plan(plan_store: GraphStore) -> None:
    change = {"id": "CHG-1", "title": "Tune", "kind": "config", "status": "completed", "affected": ["db"]}
    batch = batch_from_records(
        [],
        [],
        "changes.yaml",
        changes=[{**change, "rollback_procedure": "P1"}, {**change, "id": "CHG-2", "rollback_procedure": "P-none"}],
        procedures=[{**RESTART, "applies_to": ["db"]}],
    )

    report = load(plan_store, batch)

    assert report.warnings == [
        "changes.yaml record changes#1 (id 'CHG-2'): rollback_procedure 'P-none' is not a procedure of this "
        "import or of the store; import the procedure or correct the id"
    ]


def test_loader_finds_rollback_procedure_in_store(plan_store: GraphStore) -> None:
    plan_store.write([], [], procedures=[procedure("P1")])
    change = Change("CHG-1", "Tune", ChangeKind.CONFIG, ChangeStatus.COMPLETED, ("db",), rollback_procedure="P1")
    batch = batch_from_records([], [], "changes.yaml", changes=[change_to_record(change)])

    report = load(plan_store, batch)

    assert report.warnings == []


def test_loader_counts_procedures_read(plan_store: GraphStore) -> None:
    report = _bundle(plan_store, [RESTART, {**RESTART, "id": "P2"}])

    assert report.procedures_read == 2
    assert report.result.procedures_created == 2


def test_retired_ci_may_still_be_linked(plan_store: GraphStore) -> None:
    plan_store.write([CI(id="old-pbx", name="Old PBX", type="pbx", status=Status.RETIRED)], [])

    report = _bundle(plan_store, [{**RESTART, "applies_to": ["old-pbx"]}])

    assert report.result.procedures_created == 1


def test_loader_warns_about_procedure_linked_to_no_ci(plan_store: GraphStore) -> None:
    report = _bundle(plan_store, [RESTART])

    assert report.warnings == [
        "plan.yaml record procedures#0 (id 'P1'): procedure 'P1' applies to no CI, so no plan will show it; "
        "add applies_to or selectors"
    ]


def test_procedure_record_rejects_impossible_day() -> None:
    record = {"id": "P", "title": "Restart", "level": "system", "action": "restart", "last_drilled": "2026-13-01"}

    built, problems = procedure_from_record(record, Origin("plan.yaml", "#0"))

    assert built is None
    assert [(p.field, p.message) for p in problems] == [
        (
            "last_drilled",
            "last_drilled '2026-13-01' is not a real day (month must be in 1..12); write a day such as "
            "2026-03-01 or a time with an offset",
        )
    ]
