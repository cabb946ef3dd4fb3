"""The emergency plan for one situation, and the upkeep report of the plan as a whole.

``emergency_plan`` puts together, for a symptom, an incident or a failing CI,
one document in the order responders use it: whom to notify, what to check
first, what to do (by level: transaction, service, system) and the tooling
notes. ``plan_gaps`` lists what the plan lacks: important CIs that no
procedure covers, procedures overdue for review or drill, and links to CIs
that are gone or retired.

Both are pure: the caller passes the snapshot and the CI records they need.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from scipy.sparse.csgraph import breadth_first_order

from service.analysis.blast_radius import BlastRadiusOptions, Impact, blast_radius, business_services_reached
from service.analysis.culprits import Culprit, CulpritOptions, CulpritReport, Symptom, likely_culprits
from service.analysis.events import EventIndex, build_event_index
from service.analysis.procedures import (
    LEVEL_ORDER,
    ROLLBACK_SPECIFICITY,
    AppliedProcedure,
    ProcedureIndex,
    related_sources,
)
from service.analysis.topology import Topology
from service.model import (
    CI,
    Change,
    Criticality,
    Incident,
    Procedure,
    ProcedureLevel,
    Risk,
    Selector,
    Status,
    format_time,
    selector_matches_attributes,
)

ACTION_LEVELS = (ProcedureLevel.TRANSACTION, ProcedureLevel.SERVICE, ProcedureLevel.SYSTEM)
"""The levels of the "what to do" part, in the order a plan uses them."""

FOCUS_LIMIT = 50
"""How many of the most affected impacted CIs the actions of a plan cover, besides culprits and business CIs."""

OWNER_LIMIT = 1000
"""How many of the most affected impacted CIs a plan reads the owners of, to notify them."""

CRITICALITY_RANK = {Criticality.CRITICAL: 0, Criticality.HIGH: 1, Criticality.MEDIUM: 2, Criticality.LOW: 3}

# A procedure without a stated risk ranks as a medium-risk one.
RISK_RANK = {Risk.LOW: 0, None: 1, Risk.MEDIUM: 1, Risk.HIGH: 2, Risk.CRITICAL: 3}


def culprit_procedures(plan: ProcedureIndex, ci: CI, changes: Sequence[Change]) -> list[AppliedProcedure]:
    """Return the procedures for a likely culprit: the rollback of each suspect change first, then the rest.

    ``changes`` are the culprit's suspect changes, most suspicious first. A
    rollback procedure that the plan does not hold is left out (the upkeep
    report lists it).
    """
    applied = {item.procedure.id: item for item in plan.applicable(ci)}
    ordered: list[AppliedProcedure] = []
    for change in changes:
        procedure = plan.procedures.get(change.rollback_procedure or "")
        if procedure is None or any(item.procedure.id == procedure.id for item in ordered):
            continue
        reason = f"rolls back {change.kind.value} {change.id} ({change.title}), a suspect change on {ci.id}"
        earlier = applied.pop(procedure.id, None)
        ordered.append(
            AppliedProcedure(
                procedure=procedure,
                ci_id=ci.id,
                reasons=(reason, *(earlier.reasons if earlier else ())),
                specificity=ROLLBACK_SPECIFICITY,
            )
        )
    return ordered + sorted(applied.values(), key=AppliedProcedure.sort_key)


@dataclass(frozen=True)
class Situation:
    """The situation a plan is for: the observed CIs, the onset, and how the symptom shows.

    ``incident`` is the incident named in the request, if any.
    """

    observed: tuple[str, ...]
    started_at: datetime
    tags: tuple[str, ...] = ()
    text: str | None = None
    incident: Incident | None = None

    @property
    def down(self) -> bool:
        """Return whether a symptom tag is ``down``; otherwise the observed CIs count as degraded."""
        return "down" in self.tags

    @property
    def known_causes(self) -> tuple[str, ...]:
        """The root causes that the incident records, if any."""
        return self.incident.root_causes if self.incident is not None else ()

    def describe(self) -> str:
        shown = ", ".join(self.observed[:5]) + (f" and {len(self.observed) - 5} more" if len(self.observed) > 5 else "")
        parts = [f"symptoms at {shown} since {format_time(self.started_at)}"]
        if self.tags:
            parts.append(f"tags {', '.join(self.tags)}")
        if self.text:
            parts.append(f'"{self.text}"')
        if self.incident is not None:
            incident = self.incident
            parts.insert(0, f"incident {incident.id} ({incident.title}, {incident.severity.value}, {incident.status.value})")
        return "; ".join(parts)


@dataclass(frozen=True)
class ImpactedEntry:
    ci_id: str
    impact: str
    distance: int


@dataclass(frozen=True)
class Notification:
    """One owner to notify, with the impacted CIs they own; business owners come first."""

    owner: str
    ci_ids: tuple[str, ...]
    business: bool


@dataclass(frozen=True)
class PlanAction:
    """A procedure in the plan, with the CIs of this situation it applies to and why."""

    procedure: Procedure
    ci_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    culprit_rank: int | None
    cautions: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmergencyPlan:
    """One document for responders, in the order a plan is used."""

    situation: Situation
    generated_at: datetime
    impacted: list[ImpactedEntry]
    business_services: list[str]
    notify: list[Notification]
    communication: list[PlanAction]
    check_first: list[Culprit]
    culprit_reason: str | None
    rollback_first: list[Change]
    actions: list[PlanAction]
    tooling: list[PlanAction]
    uncovered: list[str]
    first_actions: list[PlanAction] = field(default_factory=list)

    def actions_at(self, level: ProcedureLevel) -> list[PlanAction]:
        return [action for action in self.actions if action.procedure.level == level]


def plan_scope(
    topology: Topology,
    situation: Situation,
    events: EventIndex,
    statuses: Mapping[str, Status],
    culprit_limit: int = 5,
) -> tuple[CulpritReport, list[ImpactedEntry], list[str]]:
    """Rank the culprits and walk the blast radius of the observed CIs.

    Returns the culprit report, the impacted CIs and the business services and
    transactions reached, in id order. The observed CIs come first, at
    distance 0. They count as DOWN when a symptom tag is ``down`` and as
    DEGRADED otherwise, and no CI they reach is hurt worse than they are.
    """
    symptom = Symptom(situation.observed, situation.started_at, situation.tags, situation.text)
    if situation.incident is not None:
        # The incident being planned for is no evidence about itself.
        planned = situation.incident.id
        events = build_event_index(events.changes, [i for i in events.incidents if i.id != planned])
    report = likely_culprits(topology, symptom, events, statuses, CulpritOptions(limit=culprit_limit))
    failed = list(dict.fromkeys(ci_id for ci_id in situation.observed if ci_id in topology.index))
    # Unless a symptom tag is "down", the observed CIs are degraded, and so
    # is at worst every CI their failure reaches.
    worst = Impact.DOWN if situation.down else Impact.DEGRADED
    impacted = [ImpactedEntry(ci_id, worst.name, 0) for ci_id in failed]
    business: set[int] = set()
    if failed:
        radius = blast_radius(topology, failed, BlastRadiusOptions(limit=None, as_of=situation.started_at))
        names = {impact.value: Impact(min(impact, worst)).name for impact in Impact}
        impacted += [
            ImpactedEntry(topology.ids[node], names[level], distance)
            for node, level, distance in zip(
                radius.impacted.tolist(), radius.impact.tolist(), radius.distance.tolist(), strict=True
            )
        ]
        business = set(business_services_reached(topology, radius))
    business |= {topology.index[entry.ci_id] for entry in impacted if topology.is_business[topology.index[entry.ci_id]]}
    business_ids = sorted(topology.ids[node] for node in business)
    return report, impacted, business_ids


def emergency_plan(
    situation: Situation,
    report: CulpritReport,
    impacted: list[ImpactedEntry],
    business_services: list[str],
    cis: Mapping[str, CI],
    plan: ProcedureIndex,
    now: datetime,
    focus: int = FOCUS_LIMIT,
    gone: Mapping[str, str] | None = None,
) -> EmergencyPlan:
    """Build the emergency plan from ``plan_scope``'s results.

    The actions cover the culprits, the business services and transactions
    hit, and the ``focus`` most affected impacted CIs (the observed ones
    first). A plan with the procedures of every CI of a radius of fifty
    thousand would bury the few that matter. ``cis`` contains the records of
    the CIs to cover and of the impacted CIs whose owners to notify. A CI
    missing from it is left out. ``gone`` maps the ids of CIs that are
    retired or not in the CMDB to why, so that a procedure linked to one
    carries a caution.

    The root causes an incident records rank before every culprit, and the
    procedure it was resolved with comes first at its level.
    """
    culprits = report.culprits
    known = situation.known_causes
    rank_of = {culprit.ci_id: culprit.rank for culprit in culprits}
    rank_of.update((ci_id, 0) for ci_id in known)
    focused = [entry.ci_id for entry in impacted[:focus]]
    concerned = list(dict.fromkeys([*known, *(c.ci_id for c in culprits), *focused, *business_services]))
    gone = gone or {}

    collected: dict[str, dict[str, list[str]]] = defaultdict(dict)
    procedures: dict[str, Procedure] = {}
    specificity: dict[str, int] = defaultdict(int)
    covered: set[str] = set()
    changes_of = {culprit.ci_id: culprit.changes for culprit in culprits}
    for ci_id in concerned:
        ci = cis.get(ci_id)
        if ci is None:
            continue
        found = culprit_procedures(plan, ci, changes_of.get(ci_id, ()))
        if found:
            covered.add(ci_id)
        for applied in found:
            procedures[applied.procedure.id] = applied.procedure
            collected[applied.procedure.id][ci_id] = list(applied.reasons)
            specificity[applied.procedure.id] = max(specificity[applied.procedure.id], applied.specificity)
    resolved_with = situation.incident.resolved_with if situation.incident is not None else None
    if resolved_with in plan.procedures:
        assert situation.incident is not None and resolved_with is not None
        procedures[resolved_with] = plan.procedures[resolved_with]
        first = known[0] if known else situation.observed[0]
        reasons = collected[resolved_with].setdefault(first, [])
        reasons.insert(0, f"resolved incident {situation.incident.id} (recorded on the incident)")
        rank_of.setdefault(first, 0)
        specificity[resolved_with] = ROLLBACK_SPECIFICITY

    def action(procedure_id: str) -> PlanAction:
        by_ci = collected[procedure_id]
        ranks = [rank_of[ci_id] for ci_id in by_ci if ci_id in rank_of]
        reasons = [f"{ci_id}: {reason}" for ci_id, found in by_ci.items() for reason in found[:1]]
        procedure = procedures[procedure_id]
        cautions = [
            f"it links to {ci_id}, which {gone[ci_id]}; check that its steps still fit"
            for ci_id in procedure.applies_to
            if ci_id in gone
        ]
        cautions += staleness(procedure, now, PlanGapsOptions())
        return PlanAction(
            procedure=procedure,
            ci_ids=tuple(by_ci),
            reasons=tuple(reasons),
            culprit_rank=min(ranks) if ranks else None,
            cautions=tuple(cautions),
        )

    symptom_tags = {tag.lower() for tag in situation.tags}

    def names_symptom(procedure: Procedure) -> bool:
        # A runbook for the alert that fired, or a procedure tagged like the symptom.
        alert = procedure.attributes.get("alert")
        return (isinstance(alert, str) and alert.lower() in symptom_tags) or any(
            tag.lower() in symptom_tags for tag in procedure.tags
        )

    def order(item: PlanAction) -> tuple[int, bool, bool, bool, int, bool, int, float, int, int, str]:
        # Within a level, a procedure for the alert or symptom tag that was
        # seen comes first, and last resorts (critical risk) and procedures
        # linked to a retired or deleted CI come last. Within a culprit, the
        # rollback of a suspect change leads, then the least risky and
        # quickest procedures, because responders try the least invasive
        # remedy before a failover or a restore.
        procedure = item.procedure
        return (
            LEVEL_ORDER[procedure.level],
            not names_symptom(procedure),
            any(ci_id in gone for ci_id in procedure.applies_to),
            procedure.risk == Risk.CRITICAL,
            item.culprit_rank if item.culprit_rank is not None else len(culprits) + 1,
            specificity[procedure.id] < ROLLBACK_SPECIFICITY,
            RISK_RANK[procedure.risk],
            procedure.expected_minutes if procedure.expected_minutes is not None else float("inf"),
            -specificity[procedure.id],
            -len(item.ci_ids),
            procedure.id,
        )

    all_actions = sorted((action(procedure_id) for procedure_id in procedures), key=order)
    observed = set(situation.observed)
    # The first things to do are a procedure for the alert named in the
    # symptom, then those for the recorded cause, the top culprit or an
    # observed CI. There is at most one per level, and none of high or
    # critical risk.
    candidates = [
        item
        for item in all_actions
        if item.procedure.level in ACTION_LEVELS
        and item.procedure.risk not in (Risk.HIGH, Risk.CRITICAL)
        and not any(ci_id in gone for ci_id in item.procedure.applies_to)
        and (
            names_symptom(item.procedure)
            or (item.culprit_rank is not None and item.culprit_rank <= 1)
            or observed.intersection(item.ci_ids)
        )
    ]
    candidates.sort(
        key=lambda item: (
            not names_symptom(item.procedure),
            item.culprit_rank if item.culprit_rank is not None else len(culprits) + 1,
            LEVEL_ORDER[item.procedure.level],
        )
    )
    first_actions: list[PlanAction] = []
    for item in candidates:
        if all(chosen.procedure.level != item.procedure.level for chosen in first_actions):
            first_actions.append(item)
    return EmergencyPlan(
        situation=situation,
        generated_at=now,
        impacted=impacted,
        business_services=business_services,
        notify=_notifications(impacted, business_services, [*known, *(c.ci_id for c in culprits[:3])], cis),
        communication=[a for a in all_actions if a.procedure.level == ProcedureLevel.COMMUNICATION],
        check_first=sorted(culprits, key=lambda culprit: culprit.ci_id not in known),
        culprit_reason=report.reason,
        rollback_first=report.rollback_first,
        actions=[a for a in all_actions if a.procedure.level in ACTION_LEVELS],
        tooling=[a for a in all_actions if a.procedure.level == ProcedureLevel.TOOLING],
        first_actions=first_actions,
        uncovered=[
            ci_id for ci_id in concerned if ci_id in cis and ci_id not in covered and _important(cis[ci_id])
        ],
    )


def _important(ci: CI) -> bool:
    return ci.is_business or ci.criticality in (Criticality.CRITICAL, Criticality.HIGH)


def _notifications(
    impacted: list[ImpactedEntry], business_services: list[str], suspects: list[str], cis: Mapping[str, CI]
) -> list[Notification]:
    """Return the owners to notify: of business CIs first, then of suspects and impacted CIs.

    ``suspects`` are the recorded root causes and the top culprits. Their
    owners are the teams that have to act, so they are notified even when
    the suspect itself is not hurt.
    """
    business_owners: dict[str, list[str]] = defaultdict(list)
    for ci_id in business_services:
        ci = cis.get(ci_id)
        if ci is not None and ci.owner:
            business_owners[ci.owner].append(ci_id)
    owners: dict[str, list[str]] = defaultdict(list)
    for ci_id in dict.fromkeys([*suspects, *(entry.ci_id for entry in impacted)]):
        ci = cis.get(ci_id)
        if ci is not None and ci.owner and ci_id not in business_services:
            owners[ci.owner].append(ci_id)
    # Owners of suspects in the order of the suspects, then by how many impacted CIs they own.
    suspect_rank: dict[str, int] = {}
    for position, ci_id in enumerate(suspects):
        ci = cis.get(ci_id)
        if ci is not None and ci.owner:
            suspect_rank.setdefault(ci.owner, position)
    notifications = [Notification(owner, tuple(ids), True) for owner, ids in business_owners.items()]
    notifications += [
        Notification(owner, tuple(ids), False)
        for owner, ids in sorted(
            owners.items(), key=lambda item: (suspect_rank.get(item[0], len(suspects)), -len(item[1]), item[0])
        )
        if owner not in business_owners
    ]
    for owner, ids in owners.items():
        if owner in business_owners:
            position = next(i for i, n in enumerate(notifications) if n.owner == owner)
            merged = tuple(dict.fromkeys([*notifications[position].ci_ids, *ids]))
            notifications[position] = Notification(owner, merged, True)
    return notifications


# Plan upkeep


@dataclass(frozen=True)
class UncoveredCI:
    """An important CI that no procedure applies to, with why it counts as important."""

    ci_id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class StaleProcedure:
    procedure: Procedure
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class BrokenLink:
    """A link of a procedure that leads nowhere: ``field`` names where in the procedure it is."""

    procedure: Procedure
    field: str
    ci_id: str | None
    reason: str


@dataclass(frozen=True)
class MissingProcedure:
    """A change or incident that names a procedure the plan does not hold."""

    referenced_by: str
    field: str
    procedure_id: str


@dataclass(frozen=True)
class PlanGapsOptions:
    """``review_within`` and ``drill_within`` are how old a review or a drill may be."""

    review_within: timedelta = timedelta(days=365)
    drill_within: timedelta = timedelta(days=365)
    min_criticality: Criticality = Criticality.HIGH


@dataclass(frozen=True)
class PlanGaps:
    as_of: datetime
    options: PlanGapsOptions
    uncovered: list[UncoveredCI]
    stale: list[StaleProcedure]
    broken_links: list[BrokenLink]
    missing_procedures: list[MissingProcedure]
    procedure_count: int
    important_count: int = field(default=0)

    @property
    def gap_count(self) -> int:
        return len(self.uncovered) + len(self.stale) + len(self.broken_links) + len(self.missing_procedures)


def plan_gaps(
    topology: Topology,
    cis: Sequence[CI],
    plan: ProcedureIndex,
    events: EventIndex,
    now: datetime,
    options: PlanGapsOptions | None = None,
) -> PlanGaps:
    """Report what the plan lacks. ``cis`` is every stored CI."""
    options = options or PlanGapsOptions()
    by_id = {ci.id: ci for ci in cis}
    important = _ImportantCIs(topology, cis, options.min_criticality, now)
    uncovered = [
        UncoveredCI(ci_id, tuple(important.reasons(by_id[ci_id])))
        for ci_id in important.ids
        if not plan.covers(by_id[ci_id])
    ]
    procedures = sorted(plan.procedures.values(), key=lambda p: p.id)
    stale = []
    for procedure in procedures:
        reasons = staleness(procedure, now, options)
        if reasons:
            stale.append(StaleProcedure(procedure, tuple(reasons)))
    live = _LiveCIs([ci for ci in cis if _gone(ci, now) is None])
    broken = [link for procedure in procedures for link in _broken_links(procedure, by_id, live, topology, now)]
    missing = _missing_procedures(events, plan)
    return PlanGaps(
        as_of=now,
        options=options,
        uncovered=uncovered,
        stale=stale,
        broken_links=broken,
        missing_procedures=missing,
        procedure_count=len(procedures),
        important_count=len(important.ids),
    )


def _gone(ci: CI | None, now: datetime) -> str | None:
    """Return why a linked CI no longer counts as existing, or None when it does."""
    if ci is None:
        return "is not in the CMDB"
    if ci.status == Status.RETIRED:
        return "is retired"
    if ci.valid_until is not None and ci.valid_until <= now:
        return f"stopped being valid at {format_time(ci.valid_until)}"
    return None


class _ImportantCIs:
    """The CIs that need a procedure, in id order, and why each one does.

    A CI needs one when its own criticality is at least ``min_criticality``,
    when it is a business service or transaction of that criticality, or when
    it is a provider (directly or through others) of such a business CI. CIs
    that are retired or no longer valid are left out. The reasons are worked
    out only for the CIs that a report lists.
    """

    def __init__(self, topology: Topology, cis: Sequence[CI], min_criticality: Criticality, now: datetime) -> None:
        threshold = CRITICALITY_RANK[min_criticality]
        self._topology = topology
        self._serious = {
            ci.id for ci in cis if ci.criticality is not None and CRITICALITY_RANK[ci.criticality] <= threshold
        }
        live = [ci for ci in cis if _gone(ci, now) is None]
        # Providers of a serious business CI: walk the impact edges backwards from it.
        reverse = topology.impact_graph.matrix.T.tocsr()
        self._carried: list[tuple[CI, np.ndarray]] = []
        carried_any = np.zeros(topology.node_count, dtype=bool)
        for ci in sorted(live, key=lambda item: item.id):
            if not (ci.is_business and ci.id in self._serious) or ci.id not in topology.index:
                continue
            node = topology.index[ci.id]
            mask = np.zeros(topology.node_count, dtype=bool)
            mask[breadth_first_order(reverse, node, directed=True, return_predecessors=False)] = True
            mask[node] = False
            self._carried.append((ci, mask))
            carried_any |= mask
        self.ids = sorted(
            ci.id
            for ci in live
            if ci.id in self._serious or (ci.id in topology.index and carried_any[topology.index[ci.id]])
        )

    def reasons(self, ci: CI) -> list[str]:
        found = [f"criticality {ci.criticality.value}"] if ci.id in self._serious and ci.criticality else []
        node = self._topology.index.get(ci.id)
        if node is not None:
            found += [f"carries {business.type.replace('_', ' ')} {business.id}" for business, mask in self._carried if mask[node]]
        return found


def staleness(procedure: Procedure, now: datetime, options: PlanGapsOptions) -> list[str]:
    """Return why a procedure is overdue for review or drill at ``now``, empty when it is not."""
    reasons = []
    for stamp, verb, limit in (
        (procedure.last_reviewed, "reviewed", options.review_within),
        (procedure.last_drilled, "drilled", options.drill_within),
    ):
        if stamp is None:
            reasons.append(f"never {verb}")
        elif now - stamp > limit:
            days = (now - stamp).days
            reasons.append(
                f"last {verb} {stamp.date().isoformat()}, {days} days ago (limit {limit.days} days)"
            )
    return reasons


class _LiveCIs:
    """The CIs that still exist, grouped so that a selector is compared only with those it could match."""

    def __init__(self, cis: Sequence[CI]) -> None:
        self.ids = {ci.id for ci in cis}
        self.by_type: dict[str, list[CI]] = defaultdict(list)
        self.by_environment: dict[str, list[CI]] = defaultdict(list)
        self.by_tag: dict[str, list[CI]] = defaultdict(list)
        self.type_environments: set[tuple[str, str]] = set()
        self.type_tags: set[tuple[str, str]] = set()
        for ci in cis:
            self.by_type[ci.type].append(ci)
            if ci.environment is not None:
                self.type_environments.add((ci.type, ci.environment))
            self.type_tags.update((ci.type, tag) for tag in ci.tags)
            if ci.environment is not None:
                self.by_environment[ci.environment].append(ci)
            for tag in dict.fromkeys(ci.tags):
                self.by_tag[tag].append(ci)

    def candidates(self, selector: Selector) -> list[CI]:
        # No CI has this type together with this environment or tag: nothing to compare.
        if selector.type is not None and (
            (selector.environment is not None and (selector.type, selector.environment) not in self.type_environments)
            or any((selector.type, tag) not in self.type_tags for tag in selector.tags)
        ):
            return []
        if selector.type is not None:
            return self.by_type.get(selector.type, [])
        if selector.environment is not None:
            return self.by_environment.get(selector.environment, [])
        return self.by_tag.get(selector.tags[0], []) if selector.tags else []


def _broken_links(
    procedure: Procedure, by_id: Mapping[str, CI], live: _LiveCIs, topology: Topology, now: datetime
) -> list[BrokenLink]:
    if not procedure.applies_to and not procedure.selectors:
        return [
            BrokenLink(
                procedure, "applies_to", None, "links to no CI, so no plan shows it; add applies_to or selectors"
            )
        ]
    broken = []
    for position, ci_id in enumerate(procedure.applies_to):
        why = _gone(by_id.get(ci_id), now)
        if why is not None:
            broken.append(
                BrokenLink(procedure, f"applies_to.{position}", ci_id, f"linked CI {ci_id} {why}; relink or remove it")
            )
    for position, selector in enumerate(procedure.selectors):
        related = selector.related_to
        if related is not None:
            why = _gone(by_id.get(related.ci), now)
            if why is not None:
                broken.append(
                    BrokenLink(
                        procedure,
                        f"selectors.{position}.related_to.ci",
                        related.ci,
                        f"selector anchor {related.ci} {why}; point the selector at the CI that replaced it",
                    )
                )
                continue
            matched = [by_id[ci_id] for ci_id in related_sources(topology, related) if ci_id in live.ids]
        else:
            matched = live.candidates(selector)
        if not any(selector_matches_attributes(selector, ci) for ci in matched):
            broken.append(
                BrokenLink(
                    procedure,
                    f"selectors.{position}",
                    None,
                    f"selector ({selector.describe()}) matches no live CI; correct it or remove it",
                )
            )
    return broken


def _missing_procedures(events: EventIndex, plan: ProcedureIndex) -> list[MissingProcedure]:
    missing = [
        MissingProcedure(change.id, "rollback_procedure", change.rollback_procedure)
        for change in events.changes
        if change.rollback_procedure and change.rollback_procedure not in plan.procedures
    ]
    missing += [
        MissingProcedure(incident.id, "resolved_with", incident.resolved_with)
        for incident in events.incidents
        if incident.resolved_with and incident.resolved_with not in plan.procedures
    ]
    return sorted(missing, key=lambda item: (item.referenced_by, item.field))

