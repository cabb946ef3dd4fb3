"""Tests of the call-center emergency handbook in examples/call-center/emergency-plan.yaml.

The handbook must import cleanly with the CMDB and the changes and incidents,
cover every level and remediation method, and keep exactly the gaps that its
header lists, so that the upkeep report has real gaps to find.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from importers import native
from service.analysis.blast_radius import blast_radius
from service.loader import load
from service.model import (
    BUSINESS_TYPES,
    CI,
    Criticality,
    Procedure,
    ProcedureAction,
    ProcedureLevel,
    Relationship,
    Selector,
    Status,
    selector_matches_attributes,
)
from service.records import ImportBatch
from service.snapshot import SnapshotCache
from service.store.base import GraphStore

CALL_CENTER = Path(__file__).resolve().parents[1] / "examples" / "call-center"
CMDB = CALL_CENTER / "cmdb.yaml"
PLAN = CALL_CENTER / "emergency-plan.yaml"
EVENTS = CALL_CENTER / "changes-incidents.yaml"

# The date the handbook's header states its gaps for, and the review period
# of the upkeep report.
GAPS_AS_OF = datetime(2026, 12, 4, tzinfo=UTC)
REVIEW_PERIOD = timedelta(days=365)

# The gaps that the handbook's header lists.
REVIEW_OVERDUE = {"PROC-WFM-RELEASE-ROLLBACK", "PROC-NET-HA-FAILOVER", "PROC-LEGACY-PBX-FALLBACK"}
NEVER_DRILLED = {"PROC-TXN-RECORDING-LOSS", "PROC-CRM-DB-RESTORE", "PROC-DC-DISASTER-RECOVERY"}
RETIRED_LINKS = {("PROC-LEGACY-PBX-FALLBACK", "legacy-pbx")}
WITHOUT_PROCEDURE = {"corp-directory", "hq-access-switches", "agent-workstations", "payment-gateway"}

REMEDIATIONS = {
    ProcedureAction.RESTART,
    ProcedureAction.ROLLBACK,
    ProcedureAction.SCALE,
    ProcedureAction.ADJUST_PARAMETER,
    ProcedureAction.SNAPSHOT_ANALYSIS,
    ProcedureAction.DISABLE_FEATURE,
    ProcedureAction.FAILOVER,
}

# Phone numbers in the fictional range and addresses under example.com only.
PHONE = re.compile(r"\+\d[\d-]{6,}")
RESERVED_PHONE = re.compile(r"\+1-555-01\d\d")
EMAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")


@pytest.fixture(scope="module")
def cmdb_batch() -> ImportBatch:
    return native.read(CMDB)


@pytest.fixture(scope="module")
def plan_batch() -> ImportBatch:
    return native.read(PLAN)


@pytest.fixture(scope="module")
def events_batch() -> ImportBatch:
    return native.read(EVENTS)


@pytest.fixture(scope="module")
def procedures(plan_batch: ImportBatch) -> list[Procedure]:
    return [procedure for procedure, _ in plan_batch.procedures]


@pytest.fixture(scope="module")
def cis(cmdb_batch: ImportBatch) -> dict[str, CI]:
    return {ci.id: ci for ci, _ in cmdb_batch.cis}


@pytest.fixture(scope="module")
def relationships(cmdb_batch: ImportBatch) -> list[Relationship]:
    return [relationship for relationship, _ in cmdb_batch.relationships]


def select(selector: Selector, cis: dict[str, CI], relationships: list[Relationship]) -> set[str]:
    """Return the ids of the CIs a selector picks, from the meaning Selector and RelatedTo document, without a store."""
    candidates = set(cis)
    related = selector.related_to
    if related is not None:
        sources: dict[str, set[str]] = {}
        for relationship in relationships:
            if relationship.type is related.relationship:
                sources.setdefault(relationship.target, set()).add(relationship.source)
        reached: set[str] = set()
        queue = deque([related.ci])
        while queue:
            for source in sources.get(queue.popleft(), set()) - reached:
                reached.add(source)
                if related.transitive:
                    queue.append(source)
        candidates = reached
    return {ci_id for ci_id in candidates if selector_matches_attributes(selector, cis[ci_id])}


def procedures_by_ci(
    procedures: Iterable[Procedure], cis: dict[str, CI], relationships: list[Relationship]
) -> dict[str, set[str]]:
    """Map each CI id to the ids of the procedures that apply to it, directly or through a selector."""
    applied: dict[str, set[str]] = {ci_id: set() for ci_id in cis}
    for procedure in procedures:
        for ci_id in procedure.applies_to:
            applied[ci_id].add(procedure.id)
        for selector in procedure.selectors:
            for ci_id in select(selector, cis, relationships):
                applied[ci_id].add(procedure.id)
    return applied


# Import


def test_plan_reads_without_problems(plan_batch: ImportBatch) -> None:
    assert plan_batch.problems == []
    assert plan_batch.warnings == []
    assert plan_batch.cis == []
    assert plan_batch.relationships == []


def test_plan_imports_with_cmdb_and_events(
    store: GraphStore, cmdb_batch: ImportBatch, plan_batch: ImportBatch, events_batch: ImportBatch
) -> None:
    batch = ImportBatch()
    for part in (cmdb_batch, plan_batch, events_batch):
        batch.extend(part)

    report = load(store, batch)

    assert report.rejected == []
    assert report.warnings == []
    assert report.procedures_read == len(plan_batch.procedures)
    assert report.result.procedures_created == len(plan_batch.procedures)


def test_plan_imports_before_events(store: GraphStore) -> None:
    for path in (CMDB, PLAN, EVENTS):
        report = load(store, native.read(path))

        assert report.rejected == [], path.name
        assert report.warnings == [], path.name


def test_events_before_plan_warn(store: GraphStore) -> None:
    load(store, native.read(CMDB))

    report = load(store, native.read(EVENTS))

    assert report.rejected == []
    assert len(report.warnings) == 3
    for procedure_id in ("PROC-CRM-DB-PARAMETERS", "PROC-CRM-DB-RESTORE", "PROC-MEDIA-SERVER-RESTART"):
        assert any(procedure_id in warning for warning in report.warnings), procedure_id


def test_plan_round_trips_through_store(
    store: GraphStore, cmdb_batch: ImportBatch, procedures: list[Procedure]
) -> None:
    load(store, cmdb_batch)
    load(store, native.read(PLAN))

    _, stored = store.load_procedures()

    assert stored == sorted(procedures, key=lambda procedure: procedure.id)


def test_plan_reimport_changes_nothing(store: GraphStore, cmdb_batch: ImportBatch) -> None:
    load(store, cmdb_batch)
    load(store, native.read(PLAN))
    version = store.version()

    report = load(store, native.read(PLAN))

    assert report.result.procedures_unchanged == report.procedures_read
    assert not report.result.changed
    assert store.version() == version


# What the handbook covers


def test_plan_size_fits_a_handbook(procedures: list[Procedure]) -> None:
    assert 20 <= len(procedures) <= 35


def test_plan_covers_every_level(procedures: list[Procedure]) -> None:
    assert {procedure.level for procedure in procedures} == set(ProcedureLevel)


def test_plan_covers_every_remediation(procedures: list[Procedure]) -> None:
    actions = {procedure.action for procedure in procedures}

    assert REMEDIATIONS <= actions
    assert ProcedureAction.NOTIFY in actions


@pytest.mark.parametrize(
    "level",
    [
        pytest.param(ProcedureLevel.TRANSACTION, id="transaction"),
        pytest.param(ProcedureLevel.SERVICE, id="service"),
        pytest.param(ProcedureLevel.SYSTEM, id="system"),
    ],
)
def test_plan_remediates_at_level(procedures: list[Procedure], level: ProcedureLevel) -> None:
    actions = {procedure.action for procedure in procedures if procedure.level is level}

    assert len(actions & REMEDIATIONS) >= 2


@pytest.mark.parametrize(
    ("ci_id", "action"),
    [
        pytest.param("sip-trunk-carrier-a", ProcedureAction.FAILOVER, id="trunk-failover"),
        pytest.param("sbc-2", ProcedureAction.FAILOVER, id="sbc-failover"),
        pytest.param("media-server-3", ProcedureAction.FAILOVER, id="media-server-failover"),
        pytest.param("media-server-3", ProcedureAction.RESTART, id="media-server-restart"),
        pytest.param("cti-middleware", ProcedureAction.FAILOVER, id="cti-failover"),
        pytest.param("screen-pop", ProcedureAction.DISABLE_FEATURE, id="screen-pop-off"),
        pytest.param("inbound-call-handling", ProcedureAction.FAILOVER, id="inbound-overflow"),
        pytest.param("crm-db-primary", ProcedureAction.ROLLBACK, id="crm-db-parameters"),
        pytest.param("crm-db-primary", ProcedureAction.SNAPSHOT_ANALYSIS, id="crm-db-snapshot"),
        pytest.param("crm-app", ProcedureAction.SCALE, id="crm-scale-out"),
        pytest.param("outbound-dialer", ProcedureAction.ADJUST_PARAMETER, id="outbound-throttle"),
        pytest.param("sip-trunk-carrier-b", ProcedureAction.NOTIFY, id="carrier-ticket"),
        pytest.param("inbound-customer-service", ProcedureAction.NOTIFY, id="customer-message"),
        pytest.param("mq-node-2", ProcedureAction.RESTART, id="mq-node-restart"),
    ],
)
def test_plan_applies_to_ci(
    procedures: list[Procedure],
    cis: dict[str, CI],
    relationships: list[Relationship],
    ci_id: str,
    action: ProcedureAction,
) -> None:
    by_id = {procedure.id: procedure for procedure in procedures}
    applied = procedures_by_ci(procedures, cis, relationships)[ci_id]

    assert action in {by_id[procedure_id].action for procedure_id in applied}


def test_plan_resolves_event_references(procedures: list[Procedure], events_batch: ImportBatch) -> None:
    plan_ids = {procedure.id for procedure in procedures}
    named = {change.rollback_procedure for change, _ in events_batch.changes if change.rollback_procedure}
    named |= {incident.resolved_with for incident, _ in events_batch.incidents if incident.resolved_with}

    assert named == {"PROC-CRM-DB-PARAMETERS", "PROC-CRM-DB-RESTORE", "PROC-MEDIA-SERVER-RESTART"}
    assert named <= plan_ids


def test_plan_ids_are_unique(procedures: list[Procedure]) -> None:
    ids = [procedure.id for procedure in procedures]

    assert len(ids) == len(set(ids))


# Selectors


def test_plan_selectors_each_match_a_ci(
    procedures: list[Procedure], cis: dict[str, CI], relationships: list[Relationship]
) -> None:
    empty = [
        (procedure.id, selector.describe())
        for procedure in procedures
        for selector in procedure.selectors
        if not select(selector, cis, relationships)
    ]

    assert empty == []


def test_plan_uses_every_selector_kind(procedures: list[Procedure]) -> None:
    selectors = [selector for procedure in procedures for selector in procedure.selectors]
    related = [selector.related_to for selector in selectors if selector.related_to is not None]

    assert any(selector.type is not None for selector in selectors)
    assert any(selector.tags for selector in selectors)
    assert any(len(selector.tags) > 1 for selector in selectors)
    assert any(selector.environment is not None for selector in selectors)
    assert any(related_to.transitive for related_to in related)
    assert any(not related_to.transitive for related_to in related)
    assert any(selector.related_to is not None and selector.type is not None for selector in selectors)
    relationship_types = {related_to.relationship.value for related_to in related}

    assert relationship_types >= {"DEPENDS_ON", "RUNS_ON", "HOSTED_ON", "PART_OF"}


def test_plan_uses_direct_links(procedures: list[Procedure]) -> None:
    assert any(procedure.applies_to for procedure in procedures)
    assert any(procedure.applies_to and procedure.selectors for procedure in procedures)
    assert any(procedure.selectors and not procedure.applies_to for procedure in procedures)


def test_plan_hypervisor_selector_picks_its_vms(
    procedures: list[Procedure], cis: dict[str, CI], relationships: list[Relationship]
) -> None:
    by_id = {procedure.id: procedure for procedure in procedures}
    selector = next(
        selector
        for selector in by_id["PROC-HYPERVISOR-RESTART-ORDER"].selectors
        if selector.related_to is not None and selector.related_to.ci == "hv-north-02"
    )

    assert select(selector, cis, relationships) == {
        "acd-server-1",
        "cti-node-2",
        "webrtc-gw-vm-1",
        "mq-node-2",
        "dialer-vm",
    }


# Content of each procedure


def test_plan_procedures_have_steps_and_owner(procedures: list[Procedure]) -> None:
    assert [procedure.id for procedure in procedures if len(procedure.steps) < 3] == []
    assert [procedure.id for procedure in procedures if not procedure.owner] == []


def test_plan_procedures_have_contacts(procedures: list[Procedure]) -> None:
    assert [procedure.id for procedure in procedures if not procedure.contacts] == []
    assert [
        (procedure.id, contact.name)
        for procedure in procedures
        for contact in procedure.contacts
        if not contact.reach
    ] == []


def test_plan_procedures_state_time_and_risk(procedures: list[Procedure]) -> None:
    assert [procedure.id for procedure in procedures if procedure.expected_minutes is None] == []
    assert [procedure.id for procedure in procedures if procedure.risk is None] == []
    assert [procedure.id for procedure in procedures if procedure.last_reviewed is None] == []


def test_plan_uses_escalation(procedures: list[Procedure]) -> None:
    steps = [step for procedure in procedures for step in procedure.escalation]

    assert len({procedure.id for procedure in procedures if procedure.escalation}) >= 10
    assert [step.contact.name for step in steps if not step.contact.reach] == []


def test_plan_contacts_are_fictional(procedures: list[Procedure]) -> None:
    texts = [contact.reach or "" for procedure in procedures for contact in procedure.contacts]
    texts += [step.contact.reach or "" for procedure in procedures for step in procedure.escalation]
    texts += [step.text for procedure in procedures for step in procedure.steps]
    phones = [phone for text in texts for phone in PHONE.findall(text)]
    domains = {domain for text in texts for domain in EMAIL.findall(text)}

    assert phones
    assert [phone for phone in phones if not RESERVED_PHONE.fullmatch(phone)] == []
    assert domains == {"example.com"}


def test_plan_dates_are_past(procedures: list[Procedure]) -> None:
    dates = [procedure.last_reviewed for procedure in procedures if procedure.last_reviewed is not None]
    dates += [procedure.last_drilled for procedure in procedures if procedure.last_drilled is not None]

    assert [date for date in dates if date > GAPS_AS_OF] == []


def test_plan_step_references_exist(procedures: list[Procedure]) -> None:
    ids = {procedure.id for procedure in procedures}
    named = {
        (procedure.id, name)
        for procedure in procedures
        for step in procedure.steps
        for name in re.findall(r"PROC-[A-Z0-9-]*[A-Z0-9]", step.text)
    }

    assert named
    assert {(procedure_id, name) for procedure_id, name in named if name not in ids} == set()


# The gaps the upkeep report must find


def test_plan_gap_review_overdue(procedures: list[Procedure]) -> None:
    due_before = GAPS_AS_OF - REVIEW_PERIOD
    overdue = {
        procedure.id
        for procedure in procedures
        if procedure.last_reviewed is None or procedure.last_reviewed < due_before
    }

    assert overdue == REVIEW_OVERDUE


def test_plan_gap_never_drilled(procedures: list[Procedure]) -> None:
    assert {procedure.id for procedure in procedures if procedure.last_drilled is None} == NEVER_DRILLED


def test_plan_gap_retired_link(
    procedures: list[Procedure], cis: dict[str, CI], relationships: list[Relationship]
) -> None:
    retired = {ci_id for ci_id, ci in cis.items() if ci.status is Status.RETIRED}
    applied = procedures_by_ci(procedures, cis, relationships)

    assert {(procedure_id, ci_id) for ci_id in retired for procedure_id in applied[ci_id]} == RETIRED_LINKS


def test_plan_retired_ci_is_disconnected(relationships: list[Relationship]) -> None:
    retired_ids = {ci_id for _, ci_id in RETIRED_LINKS}

    assert [r for r in relationships if r.source in retired_ids or r.target in retired_ids] == []


def test_plan_gap_cis_without_procedure(
    procedures: list[Procedure], cis: dict[str, CI], relationships: list[Relationship]
) -> None:
    applied = procedures_by_ci(procedures, cis, relationships)
    uncovered = {ci_id for ci_id, found in applied.items() if not found and cis[ci_id].status is not Status.RETIRED}

    assert uncovered == WITHOUT_PROCEDURE


def test_plan_gap_cis_are_important(store: GraphStore, cmdb_batch: ImportBatch, cis: dict[str, CI]) -> None:
    load(store, cmdb_batch)
    topology = SnapshotCache(store).current()

    for ci_id in sorted(WITHOUT_PROCEDURE):
        radius = blast_radius(topology, [ci_id])
        reached = {topology.ids[node] for node in radius.impacted}
        business = {other for other in reached if cis[other].type in BUSINESS_TYPES}

        assert cis[ci_id].criticality in {Criticality.CRITICAL, Criticality.HIGH}, ci_id
        assert business, ci_id
