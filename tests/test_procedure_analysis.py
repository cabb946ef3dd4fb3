"""Which procedures apply to a CI, the procedures of a culprit, the emergency plan and the plan gaps.

The snapshots come from a real embedded store. ``related_sources`` is checked
against networkx on generated graphs.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from service.analysis.plan import (
    PlanGapsOptions,
    Situation,
    culprit_procedures,
    emergency_plan,
    plan_gaps,
    plan_scope,
)
from service.analysis.procedures import ProcedureIndex, related_sources
from service.model import (
    CI,
    Change,
    ChangeKind,
    ChangeStatus,
    Criticality,
    Incident,
    IncidentStatus,
    Procedure,
    ProcedureAction,
    ProcedureLevel,
    RelatedTo,
    Relationship,
    RelationshipType,
    Selector,
    Severity,
    Status,
    Step,
)
from service.snapshot import Snapshot, SnapshotCache
from service.store.embedded import EmbeddedStore

DEPENDS_ON = RelationshipType.DEPENDS_ON
RUNS_ON = RelationshipType.RUNS_ON
HOSTED_ON = RelationshipType.HOSTED_ON
PART_OF = RelationshipType.PART_OF
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ONSET = NOW - timedelta(minutes=30)


def procedure(procedure_id: str, level: ProcedureLevel = ProcedureLevel.SYSTEM, **fields: Any) -> Procedure:
    fields.setdefault("title", f"Procedure {procedure_id}")
    fields.setdefault("action", ProcedureAction.RESTART)
    fields.setdefault("steps", (Step("Do it."),))
    fields.setdefault("last_reviewed", NOW - timedelta(days=30))
    fields.setdefault("last_drilled", NOW - timedelta(days=60))
    return Procedure(id=procedure_id, level=level, **fields)


# A small call center. Inbound calls (a business service) is made of the
# call-handling transaction. That needs the IVR, the IVR needs the CRM, and
# the CRM needs its database, which runs on a VM hosted on a hypervisor.
CIS = [
    CI(id="inbound", name="Inbound calls", type="business_service", criticality=Criticality.CRITICAL, owner="cc-ops"),
    CI(id="call-handling", name="Call handling", type="transaction", owner="cc-ops"),
    CI(id="ivr", name="IVR", type="application", owner="voice", tags=("telephony",)),
    CI(id="crm", name="CRM", type="application", owner="crm-team", environment="production"),
    CI(id="crm-db", name="CRM DB", type="database", owner="dba", environment="production", tags=("pci",)),
    CI(id="db-vm", name="DB VM", type="vm", owner="infra"),
    CI(id="hv-1", name="Hypervisor 1", type="hypervisor", owner="infra"),
    CI(id="wiki", name="Wiki", type="application", criticality=Criticality.LOW, owner="it"),
    CI(id="old-pbx", name="Old PBX", type="pbx", status=Status.RETIRED, criticality=Criticality.CRITICAL),
]
RELATIONSHIPS = [
    Relationship("call-handling", "inbound", PART_OF),
    Relationship("ivr", "call-handling", PART_OF),
    Relationship("ivr", "crm", DEPENDS_ON),
    Relationship("crm", "crm-db", DEPENDS_ON),
    Relationship("crm-db", "db-vm", RUNS_ON),
    Relationship("db-vm", "hv-1", HOSTED_ON),
]
TUNING = Change(
    "CHG-7",
    "Lower max_connections on the CRM DB",
    ChangeKind.DATABASE,
    ChangeStatus.COMPLETED,
    ("crm-db",),
    actual_start=ONSET - timedelta(minutes=20),
    actual_end=ONSET - timedelta(minutes=12),
    rollback_procedure="P-ROLLBACK-DB",
)
PROCEDURES = [
    procedure("P-ROLLBACK-DB", action=ProcedureAction.ROLLBACK, applies_to=("crm-db",)),
    procedure("P-DB-GENERIC", action=ProcedureAction.DIAGNOSE, selectors=(Selector(type="database"),)),
    procedure(
        "P-DB-PROD-PCI",
        action=ProcedureAction.SNAPSHOT_ANALYSIS,
        selectors=(Selector(type="database", environment="production", tags=("pci",)),),
    ),
    procedure("P-HV-GUESTS", action=ProcedureAction.FAILOVER, selectors=(Selector(related_to=RelatedTo("hv-1", HOSTED_ON)),)),
    procedure(
        "P-HV-ALL",
        action=ProcedureAction.DIAGNOSE,
        selectors=(Selector(related_to=RelatedTo("hv-1", HOSTED_ON)), Selector(type="vm")),
    ),
    procedure("P-CALLBACK", ProcedureLevel.TRANSACTION, action=ProcedureAction.DISABLE_FEATURE, applies_to=("call-handling",)),
    procedure("P-CRM", ProcedureLevel.SERVICE, applies_to=("crm",)),
    procedure("P-NOTIFY", ProcedureLevel.COMMUNICATION, action=ProcedureAction.NOTIFY, selectors=(Selector(type="business_service"),)),
    procedure("P-DASHBOARD", ProcedureLevel.TOOLING, action=ProcedureAction.OTHER, selectors=(Selector(tags=("telephony",)),)),
    procedure("P-OLD-PBX", last_reviewed=None, last_drilled=None, applies_to=("old-pbx",)),
    procedure("P-NO-MATCH", last_drilled=NOW - timedelta(days=400), selectors=(Selector(type="mainframe"),)),
]


@pytest.fixture
def snapshot(tmp_path: Path) -> Snapshot:
    store = EmbeddedStore(tmp_path / "plan.db")
    store.write(CIS, RELATIONSHIPS, changes=[TUNING], procedures=PROCEDURES)
    return SnapshotCache(store).snapshot()


def ci_of(ci_id: str) -> CI:
    return next(ci for ci in CIS if ci.id == ci_id)


# Which procedures apply


def test_applicable_orders_direct_then_by_specificity(snapshot: Snapshot) -> None:
    applied = snapshot.plan.applicable(ci_of("crm-db"))

    assert [item.procedure.id for item in applied] == ["P-ROLLBACK-DB", "P-DB-PROD-PCI", "P-DB-GENERIC"]
    assert [item.specificity for item in applied] == [100, 3, 1]
    assert applied[0].reasons == ("linked to crm-db directly",)
    assert applied[1].reasons == ("selector 1 matches: type database, environment production, tag pci",)


def test_applicable_lists_every_reason_most_specific_first(snapshot: Snapshot) -> None:
    applied = {item.procedure.id: item for item in snapshot.plan.applicable(ci_of("db-vm"))}

    assert applied["P-HV-ALL"].reasons == (
        "selector 1 matches: HOSTED_ON hv-1",
        "selector 2 matches: type vm",
    )
    assert applied["P-HV-ALL"].specificity == 2


def test_applicable_breaks_ties_by_level_then_id(snapshot: Snapshot) -> None:
    applied = snapshot.plan.applicable(ci_of("db-vm"))

    assert [item.procedure.id for item in applied] == ["P-HV-ALL", "P-HV-GUESTS"]


def test_applicable_is_empty_for_uncovered_ci(snapshot: Snapshot) -> None:
    assert snapshot.plan.applicable(ci_of("wiki")) == []


def _random_graph(seed: int) -> tuple[list[CI], list[Relationship]]:
    generator = random.Random(seed)
    cis = [CI(id=f"n{i:02d}", name=f"n{i}", type="service") for i in range(30)]
    relationships: dict[tuple[str, str, str], Relationship] = {}
    types = list(RelationshipType)
    for _ in range(70):
        source, target = generator.sample(cis, 2)
        kind = generator.choice(types)
        relationships[(source.id, target.id, kind.value)] = Relationship(source.id, target.id, kind)
    return cis, list(relationships.values())


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("transitive", [False, True], ids=["direct", "transitive"])
def test_related_sources_matches_networkx(tmp_path: Path, seed: int, transitive: bool) -> None:
    cis, relationships = _random_graph(seed)
    store = EmbeddedStore(tmp_path / f"graph-{seed}.db")
    store.write(cis, relationships)
    topology = SnapshotCache(store).current()
    anchor = cis[seed % len(cis)].id

    for kind in RelationshipType:
        graph = nx.DiGraph()
        graph.add_edges_from((r.source, r.target) for r in relationships if r.type == kind)
        if anchor not in graph:
            expected: set[str] = set()
        elif transitive:
            expected = nx.ancestors(graph, anchor)
        else:
            expected = set(graph.predecessors(anchor))

        found = related_sources(topology, RelatedTo(anchor, kind, transitive=transitive))

        assert found == sorted(expected), kind


def test_related_sources_of_unknown_anchor_is_empty(snapshot: Snapshot) -> None:
    assert related_sources(snapshot.topology, RelatedTo("gone", RUNS_ON)) == []


def test_related_sources_follows_part_of_from_its_source(snapshot: Snapshot) -> None:
    parts = related_sources(snapshot.topology, RelatedTo("inbound", PART_OF, transitive=True))

    assert parts == ["call-handling", "ivr"]


# Procedures of a culprit


def test_culprit_procedures_put_rollback_of_suspect_change_first(snapshot: Snapshot) -> None:
    applied = culprit_procedures(snapshot.plan, ci_of("crm-db"), [TUNING])

    assert [item.procedure.id for item in applied] == ["P-ROLLBACK-DB", "P-DB-PROD-PCI", "P-DB-GENERIC"]
    assert applied[0].reasons == (
        "rolls back database CHG-7 (Lower max_connections on the CRM DB), a suspect change on crm-db",
        "linked to crm-db directly",
    )


def test_culprit_procedures_skip_rollback_missing_from_plan(snapshot: Snapshot) -> None:
    unknown = Change("CHG-8", "Patch", ChangeKind.PATCH, ChangeStatus.COMPLETED, ("crm",), rollback_procedure="P-GONE")

    applied = culprit_procedures(snapshot.plan, ci_of("crm"), [unknown])

    assert [item.procedure.id for item in applied] == ["P-CRM"]


# The emergency plan


def _plan(snapshot: Snapshot, observed: tuple[str, ...]) -> Any:
    situation = Situation(observed, ONSET, ("slow_response",), "screen pop slow")
    report, impacted, business = plan_scope(snapshot.topology, situation, snapshot.events, snapshot.statuses)
    return emergency_plan(situation, report, impacted, business, {ci.id: ci for ci in CIS}, snapshot.plan, NOW)


def test_emergency_plan_checks_culprit_with_recent_change_first(snapshot: Snapshot) -> None:
    plan = _plan(snapshot, ("ivr",))

    assert plan.check_first[0].ci_id == "crm-db"
    assert [change.id for change in plan.rollback_first] == ["CHG-7"]


def test_emergency_plan_orders_actions_by_level_then_culprit(snapshot: Snapshot) -> None:
    plan = _plan(snapshot, ("ivr",))

    assert [action.procedure.id for action in plan.actions] == [
        "P-CALLBACK",
        "P-CRM",
        "P-ROLLBACK-DB",
        "P-DB-PROD-PCI",
        "P-DB-GENERIC",
        "P-HV-ALL",
        "P-HV-GUESTS",
    ]
    assert [action.culprit_rank for action in plan.actions] == [None, 3, 1, 1, 1, 4, 4]
    assert plan.actions[2].reasons[0].startswith("crm-db: rolls back database CHG-7")


def test_emergency_plan_separates_communication_and_tooling(snapshot: Snapshot) -> None:
    plan = _plan(snapshot, ("ivr",))

    assert [action.procedure.id for action in plan.communication] == ["P-NOTIFY"]
    assert [action.procedure.id for action in plan.tooling] == ["P-DASHBOARD"]


def test_emergency_plan_notifies_business_owners_first(snapshot: Snapshot) -> None:
    plan = _plan(snapshot, ("ivr",))

    assert plan.notify[0].owner == "cc-ops"
    assert plan.notify[0].business
    assert set(plan.notify[0].ci_ids) == {"inbound", "call-handling"}
    # The owners of the top three culprits are notified too, because they have to act.
    assert {n.owner for n in plan.notify[1:]} == {"voice", "crm-team", "dba"}


def test_emergency_plan_names_important_cis_without_procedure(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "bare.db")
    store.write(CIS, RELATIONSHIPS, procedures=[procedure("P-CRM", applies_to=("crm",))])
    snapshot = SnapshotCache(store).snapshot()

    plan = _plan(snapshot, ("crm",))

    assert plan.uncovered == ["call-handling", "inbound"]
    assert [action.procedure.id for action in plan.actions] == ["P-CRM"]


# Plan gaps


def _gaps(snapshot: Snapshot, **options: Any) -> Any:
    return plan_gaps(snapshot.topology, CIS, snapshot.plan, snapshot.events, NOW, PlanGapsOptions(**options))


def test_plan_gaps_lists_important_cis_without_procedure(snapshot: Snapshot) -> None:
    gaps = _gaps(snapshot)

    # The inbound service is covered by the notification procedure; the
    # hypervisor has only procedures for its guests.
    assert [(item.ci_id, item.reasons) for item in gaps.uncovered] == [
        ("hv-1", ("carries business service inbound",)),
    ]


def test_plan_gaps_counts_providers_of_critical_business_service(snapshot: Snapshot) -> None:
    gaps = _gaps(snapshot)
    providers = {"call-handling", "ivr", "crm", "crm-db", "db-vm", "hv-1"}

    # The inbound service itself, its providers, and not the wiki or the retired PBX.
    assert gaps.important_count == 1 + len(providers)


def test_plan_gaps_lower_threshold_adds_low_criticality_ci(snapshot: Snapshot) -> None:
    gaps = _gaps(snapshot, min_criticality=Criticality.LOW)

    assert [item.ci_id for item in gaps.uncovered] == ["hv-1", "wiki"]


def test_plan_gaps_lists_stale_procedures_with_reasons(snapshot: Snapshot) -> None:
    gaps = _gaps(snapshot)

    assert [(item.procedure.id, item.reasons) for item in gaps.stale] == [
        ("P-NO-MATCH", ("last drilled 2025-10-30, 400 days ago (limit 365 days)",)),
        ("P-OLD-PBX", ("never reviewed", "never drilled")),
    ]


def test_plan_gaps_review_period_is_configurable(snapshot: Snapshot) -> None:
    gaps = _gaps(snapshot, review_within=timedelta(days=20), drill_within=timedelta(days=500))

    stale = {item.procedure.id: item.reasons for item in gaps.stale}
    assert stale["P-CRM"] == ("last reviewed 2026-11-04, 30 days ago (limit 20 days)",)
    assert "P-NO-MATCH" in stale and all("drilled" not in reason for reason in stale["P-NO-MATCH"])


def test_plan_gaps_lists_broken_links(snapshot: Snapshot) -> None:
    gaps = _gaps(snapshot)

    assert [(link.procedure.id, link.field, link.ci_id) for link in gaps.broken_links] == [
        ("P-NO-MATCH", "selectors.0", None),
        ("P-OLD-PBX", "applies_to.0", "old-pbx"),
    ]
    assert gaps.broken_links[1].reason == "linked CI old-pbx is retired; relink or remove it"


def test_plan_gaps_lists_link_to_deleted_ci(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "deleted.db")
    store.write(CIS, RELATIONSHIPS, procedures=[procedure("P-CRM", applies_to=("crm",))])
    store.delete_ci("crm", cascade=True)
    snapshot = SnapshotCache(store).snapshot()
    remaining = [ci for ci in CIS if ci.id != "crm"]

    gaps = plan_gaps(snapshot.topology, remaining, snapshot.plan, snapshot.events, NOW)

    assert [(link.field, link.reason) for link in gaps.broken_links] == [
        ("applies_to.0", "linked CI crm is not in the CMDB; relink or remove it")
    ]


def test_plan_gaps_lists_procedures_named_but_missing(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "missing.db")
    resolved = Incident(
        "INC-1", "IVR down", Severity.HIGH, IncidentStatus.RESOLVED, ONSET, impacted=("ivr",), resolved_with="P-GONE"
    )
    store.write(CIS, RELATIONSHIPS, changes=[TUNING], incidents=[resolved])
    snapshot = SnapshotCache(store).snapshot()

    gaps = plan_gaps(snapshot.topology, CIS, snapshot.plan, snapshot.events, NOW)

    assert [(m.referenced_by, m.field, m.procedure_id) for m in gaps.missing_procedures] == [
        ("CHG-7", "rollback_procedure", "P-ROLLBACK-DB"),
        ("INC-1", "resolved_with", "P-GONE"),
    ]


def test_plan_gaps_lists_link_to_expired_ci(tmp_path: Path) -> None:
    expired = CI(id="old-sbc", name="Old SBC", type="sbc", valid_until=NOW - timedelta(days=1))
    store = EmbeddedStore(tmp_path / "expired.db")
    store.write([*CIS, expired], RELATIONSHIPS, procedures=[procedure("P-SBC", applies_to=("old-sbc",))])
    snapshot = SnapshotCache(store).snapshot()

    gaps = plan_gaps(snapshot.topology, [*CIS, expired], snapshot.plan, snapshot.events, NOW)

    assert [link.reason for link in gaps.broken_links] == [
        "linked CI old-sbc stopped being valid at 2026-12-03T12:00:00Z; relink or remove it"
    ]


def test_emergency_plan_merges_owner_entries(tmp_path: Path) -> None:
    shared_owner = [ci if ci.id != "crm" else CI(id="crm", name="CRM", type="application", owner="cc-ops") for ci in CIS]
    store = EmbeddedStore(tmp_path / "owners.db")
    store.write(shared_owner, RELATIONSHIPS)
    snapshot = SnapshotCache(store).snapshot()
    situation = Situation(("crm",), ONSET)
    report, impacted, business = plan_scope(snapshot.topology, situation, snapshot.events, snapshot.statuses)

    plan = emergency_plan(situation, report, impacted, business, {ci.id: ci for ci in shared_owner}, snapshot.plan, NOW)

    assert [(n.owner, n.business) for n in plan.notify][0] == ("cc-ops", True)
    assert set(plan.notify[0].ci_ids) == {"inbound", "call-handling", "crm"}
    assert [n.owner for n in plan.notify].count("cc-ops") == 1


def test_emergency_plan_for_incident_starts_from_recorded_cause(snapshot: Snapshot) -> None:
    recorded = Incident(
        "INC-9", "IVR slow", Severity.HIGH, IncidentStatus.RESOLVED, ONSET,
        impacted=("ivr",), root_causes=("db-vm",), resolved_with="P-HV-ALL",
    )
    situation = Situation(("ivr",), ONSET, ("slow_response",), None, recorded)
    report, impacted, business = plan_scope(snapshot.topology, situation, snapshot.events, snapshot.statuses)

    plan = emergency_plan(situation, report, impacted, business, {ci.id: ci for ci in CIS}, snapshot.plan, NOW)

    system = plan.actions_at(ProcedureLevel.SYSTEM)
    assert [action.procedure.id for action in system[:2]] == ["P-HV-ALL", "P-HV-GUESTS"]
    assert system[0].culprit_rank == 0
    assert system[0].reasons[0] == "db-vm: resolved incident INC-9 (recorded on the incident)"


def test_emergency_plan_cautions_on_retired_link(snapshot: Snapshot) -> None:
    linked = procedure("P-PBX-FALLBACK", ProcedureLevel.TRANSACTION, applies_to=("call-handling", "old-pbx"))
    store_plan = ProcedureIndex([*PROCEDURES, linked], snapshot.topology)
    situation = Situation(("ivr",), ONSET, ("slow_response",), None)
    report, impacted, business = plan_scope(snapshot.topology, situation, snapshot.events, snapshot.statuses)

    plan = emergency_plan(
        situation, report, impacted, business, {ci.id: ci for ci in CIS}, store_plan, NOW, gone={"old-pbx": "is retired"}
    )

    transaction = plan.actions_at(ProcedureLevel.TRANSACTION)
    assert [action.procedure.id for action in transaction] == ["P-CALLBACK", "P-PBX-FALLBACK"]
    assert transaction[1].cautions == ("it links to old-pbx, which is retired; check that its steps still fit",)
    assert transaction[0].cautions == ()


def test_emergency_plan_puts_runbook_of_symptom_alert_first(snapshot: Snapshot) -> None:
    runbook = procedure("runbook/DatabaseConnectionsExhausted", attributes={"alert": "DatabaseConnectionsExhausted"}, selectors=(Selector(type="database"),))
    with_runbook = ProcedureIndex([*PROCEDURES, runbook], snapshot.topology)
    situation = Situation(("ivr",), ONSET, ("databaseconnectionsexhausted",), None)
    report, impacted, business = plan_scope(snapshot.topology, situation, snapshot.events, snapshot.statuses)

    plan = emergency_plan(situation, report, impacted, business, {ci.id: ci for ci in CIS}, with_runbook, NOW)

    assert plan.actions_at(ProcedureLevel.SYSTEM)[0].procedure.id == "runbook/DatabaseConnectionsExhausted"
