"""GraphQL types and resolvers of the emergency plan: procedures, emergencyPlan and planGaps."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from service.analysis import plan as analysis
from service.analysis.culprits import Symptom
from service.analysis.procedures import AppliedProcedure as AppliedProcedureModel
from service.api.context import RequestContext, run_blocking
from service.api.events import Change, Culprit, Incident, SymptomInput, require_zone
from service.api.types import CI, load_existing_cis
from service.errors import InvalidInputError
from service.model import CI as CIModel
from service.model import Contact as ContactModel
from service.model import Criticality, ProcedureAction, ProcedureLevel, utc_now
from service.model import Procedure as ProcedureModel
from service.plan_report import gaps_markdown, plan_markdown
from service.planning import build_emergency_plan, build_plan_gaps, situation_for


@strawberry.type(description="One step of a procedure, in the order it is carried out.")
class ProcedureStep:
    position: int = strawberry.field(description="1 for the first step.")
    title: str | None
    text: str = strawberry.field(description="What to do, as Markdown.")


@strawberry.type(description="A person or team to reach.")
class Contact:
    name: str
    role: str | None
    reach: str | None = strawberry.field(description="Phone number, e-mail address or chat channel.")

    @classmethod
    def from_model(cls, contact: ContactModel) -> Contact:
        return cls(name=contact.name, role=contact.role, reach=contact.reach)


@strawberry.type(description="Whom to call when the procedure has not worked after some minutes.")
class EscalationStep:
    after_minutes: int
    contact: Contact


@strawberry.type(description="The CIs that are the source of such a relationship to the CI ciId.")
class RelatedTo:
    ci_id: strawberry.ID
    relationship: str
    transitive: bool = strawberry.field(description="Also CIs that reach ciId through a chain of such relationships.")


@strawberry.type(description="CIs that a procedure applies to without naming them; a CI must meet every condition.")
class Selector:
    type: str | None
    environment: str | None
    tags: list[str]
    related_to: RelatedTo | None
    description: str = strawberry.field(description="The conditions in words.")


@strawberry.type(description="An entry of the emergency plan: what to do, at which level, and whom it concerns.")
class Procedure:
    id: strawberry.ID
    title: str
    level: str = strawberry.field(description="communication, transaction, service, system or tooling.")
    action: str = strawberry.field(
        description=(
            "restart, rollback, scale, adjust_parameter, snapshot_analysis, disable_feature, failover, notify, "
            "diagnose, restore, escalate or other."
        )
    )
    description: str | None
    steps: list[ProcedureStep]
    expected_minutes: int | None = strawberry.field(description="How long it usually takes.")
    risk: str | None
    owner: str | None
    contacts: list[Contact]
    escalation: list[EscalationStep]
    applies_to_ids: list[strawberry.ID] = strawberry.field(
        description="Ids of the CIs it names directly, also those that no longer exist."
    )
    selectors: list[Selector]
    last_reviewed: datetime | None
    last_drilled: datetime | None
    tags: list[str]
    source: str | None
    source_id: str | None
    attributes: JSON
    model: strawberry.Private[ProcedureModel]

    @classmethod
    def from_model(cls, procedure: ProcedureModel) -> Procedure:
        return cls(
            id=strawberry.ID(procedure.id),
            title=procedure.title,
            level=procedure.level.value,
            action=procedure.action.value,
            description=procedure.description,
            steps=[
                ProcedureStep(position=position, title=step.title, text=step.text)
                for position, step in enumerate(procedure.steps, start=1)
            ],
            expected_minutes=procedure.expected_minutes,
            risk=procedure.risk.value if procedure.risk else None,
            owner=procedure.owner,
            contacts=[Contact.from_model(contact) for contact in procedure.contacts],
            escalation=[
                EscalationStep(after_minutes=step.after_minutes, contact=Contact.from_model(step.contact))
                for step in procedure.escalation
            ],
            applies_to_ids=[strawberry.ID(ci_id) for ci_id in procedure.applies_to],
            selectors=[
                Selector(
                    type=selector.type,
                    environment=selector.environment,
                    tags=list(selector.tags),
                    related_to=None
                    if selector.related_to is None
                    else RelatedTo(
                        ci_id=strawberry.ID(selector.related_to.ci),
                        relationship=selector.related_to.relationship.value,
                        transitive=selector.related_to.transitive,
                    ),
                    description=selector.describe(),
                )
                for selector in procedure.selectors
            ],
            last_reviewed=procedure.last_reviewed,
            last_drilled=procedure.last_drilled,
            tags=list(procedure.tags),
            source=procedure.source,
            source_id=procedure.source_id,
            attributes=procedure.attributes,
            model=procedure,
        )

    @strawberry.field(description="The stored CIs it names directly.")
    async def applies_to(self, info: Info[RequestContext, None]) -> list[CI]:
        return await load_existing_cis(info, list(self.model.applies_to))


@strawberry.type(description="A procedure that applies to a CI, with the reasons it applies, the most specific first.")
class AppliedProcedure:
    procedure: Procedure
    ci_id: strawberry.ID = strawberry.field(description="The CI it applies to.")
    reason: str = strawberry.field(description="The most specific reason.")
    reasons: list[str]
    direct: bool = strawberry.field(description="True when the procedure names the CI, or rolls back its change.")
    specificity: int = strawberry.field(
        description="1000 for the rollback of a suspect change, 100 for a direct link, else the selector's conditions."
    )

    @classmethod
    def from_model(cls, applied: AppliedProcedureModel) -> AppliedProcedure:
        return cls(
            procedure=Procedure.from_model(applied.procedure),
            ci_id=strawberry.ID(applied.ci_id),
            reason=applied.reasons[0],
            reasons=list(applied.reasons),
            direct=applied.direct,
            specificity=applied.specificity,
        )


async def procedures_of(info: Info[RequestContext, None], ci: CIModel) -> list[AppliedProcedure]:
    snapshot = await info.context.snapshot()
    return [AppliedProcedure.from_model(applied) for applied in snapshot.plan.applicable(ci)]


async def culprit_procedures(info: Info[RequestContext, None], culprit: Culprit) -> list[AppliedProcedure]:
    ci = await info.context.ci_loader.load(culprit.model.ci_id)
    if ci is None:
        return []
    snapshot = await info.context.snapshot()
    found = analysis.culprit_procedures(snapshot.plan, ci, culprit.model.changes)
    return [AppliedProcedure.from_model(applied) for applied in found]


@strawberry.input(description="All given conditions must hold.")
class ProcedureFilter:
    level: str | None = None
    action: str | None = None
    text: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the id, title, description, owner or a tag."
    )
    ci_id: strawberry.ID | None = strawberry.field(default=None, description="Only procedures that apply to this CI.")


def _search_text(procedure: ProcedureModel) -> str:
    return "\n".join([procedure.id, procedure.title, procedure.description or "", procedure.owner or "", *procedure.tags]).lower()


async def resolve_procedure(info: Info[RequestContext, None], id: strawberry.ID) -> Procedure | None:
    snapshot = await info.context.snapshot()
    procedure = snapshot.plan.procedures.get(str(id))
    return None if procedure is None else Procedure.from_model(procedure)


async def resolve_procedures(info: Info[RequestContext, None], filter: ProcedureFilter | None) -> list[Procedure]:
    snapshot = await info.context.snapshot()
    procedures = sorted(snapshot.plan.procedures.values(), key=lambda procedure: procedure.id)
    if filter is None:
        return [Procedure.from_model(procedure) for procedure in procedures]
    if filter.ci_id is not None:
        ci = await info.context.ci_loader.load(str(filter.ci_id))
        applying = {applied.procedure.id for applied in snapshot.plan.applicable(ci)} if ci else set()
        procedures = [procedure for procedure in procedures if procedure.id in applying]
    for name, value, allowed in (
        ("level", filter.level, [level.value for level in ProcedureLevel]),
        ("action", filter.action, [action.value for action in ProcedureAction]),
    ):
        if value is not None and value not in allowed:
            raise InvalidInputError(
                f"filter.{name} {value!r} is not allowed; use one of {', '.join(allowed)}", field=f"filter.{name}"
            )
    if filter.level is not None:
        procedures = [procedure for procedure in procedures if procedure.level.value == filter.level]
    if filter.action is not None:
        procedures = [procedure for procedure in procedures if procedure.action.value == filter.action]
    if filter.text is not None:
        needle = filter.text.lower()
        procedures = [procedure for procedure in procedures if needle in _search_text(procedure)]
    return [Procedure.from_model(procedure) for procedure in procedures]


@strawberry.type(description="A CI hurt in this situation.")
class PlanImpact:
    impact: str = strawberry.field(
        description=(
            "DOWN, DEGRADED or AT_RISK. The observed CIs count as DOWN when a symptom tag says down (or for a "
            "ciId alone), else as DEGRADED, and nothing they reach is hurt worse."
        )
    )
    distance: int
    ci_id: strawberry.ID

    @strawberry.field
    async def ci(self, info: Info[RequestContext, None]) -> CI | None:
        found = await load_existing_cis(info, [str(self.ci_id)])
        return found[0] if found else None


@strawberry.type(description="An owner to notify, with the impacted CIs they own.")
class Notification:
    owner: str
    business: bool = strawberry.field(description="True when the owner owns an impacted business service or transaction.")
    ci_ids: list[strawberry.ID]

    @strawberry.field
    async def cis(self, info: Info[RequestContext, None]) -> list[CI]:
        return await load_existing_cis(info, [str(ci_id) for ci_id in self.ci_ids])


@strawberry.type(description="A procedure of the plan, with the CIs of this situation it applies to and why.")
class PlanAction:
    procedure: Procedure
    level: str
    ci_ids: list[strawberry.ID]
    reasons: list[str] = strawberry.field(description="Per CI, the most specific reason, as 'ci: reason'.")
    culprit_rank: int | None = strawberry.field(
        description="The best rank of a likely culprit it applies to; 0 for a root cause the incident records."
    )
    cautions: list[str] = strawberry.field(
        description="Why its steps may not fit: overdue review or drill, links to retired or deleted CIs."
    )

    @classmethod
    def from_model(cls, action: analysis.PlanAction) -> PlanAction:
        return cls(
            procedure=Procedure.from_model(action.procedure),
            level=action.procedure.level.value,
            ci_ids=[strawberry.ID(ci_id) for ci_id in action.ci_ids],
            reasons=list(action.reasons),
            culprit_rank=action.culprit_rank,
            cautions=list(action.cautions),
        )

    @strawberry.field
    async def cis(self, info: Info[RequestContext, None]) -> list[CI]:
        return await load_existing_cis(info, [str(ci_id) for ci_id in self.ci_ids])


@strawberry.type(
    description=(
        "One document for responders, in the order a plan is used: notify, check first, act (transaction, "
        "service, system level), tooling notes."
    )
)
class EmergencyPlan:
    situation: str
    started_at: datetime
    generated_at: datetime
    observed_ids: list[strawberry.ID]
    incident: Incident | None
    impacted_count: int = strawberry.field(description="All impacted CIs, the observed CIs included.")
    impacted_entries: strawberry.Private[list[analysis.ImpactedEntry]]
    business_service_ids: list[strawberry.ID]
    notify: list[Notification]
    communication: list[PlanAction] = strawberry.field(description="Communication procedures, to run with the notifications.")
    check_first: list[Culprit] = strawberry.field(description="The top likely culprits with their evidence.")
    no_culprit_reason: str | None
    rollback_first: list[Change]
    actions: list[PlanAction] = strawberry.field(description="What to do: transaction, then service, then system level.")
    tooling: list[PlanAction]
    uncovered_ids: list[strawberry.ID] = strawberry.field(
        description="Important CIs of this situation that no procedure covers."
    )
    markdown: str = strawberry.field(description="The whole plan as Markdown, as 'faultgraph plan' prints it.")

    @strawberry.field
    async def business_services(self, info: Info[RequestContext, None]) -> list[CI]:
        return await load_existing_cis(info, [str(ci_id) for ci_id in self.business_service_ids])

    @strawberry.field(description="The most affected impacted CIs first; the observed CIs lead.")
    def impacted(self, first: int = 100) -> list[PlanImpact]:
        if first < 0:
            raise InvalidInputError(f"first={first} is negative; pass 0 or more", field="first")
        return [
            PlanImpact(impact=entry.impact, distance=entry.distance, ci_id=strawberry.ID(entry.ci_id))
            for entry in self.impacted_entries[:first]
        ]


async def resolve_emergency_plan(
    info: Info[RequestContext, None],
    symptom: SymptomInput | None,
    incident_id: strawberry.ID | None,
    ci_id: strawberry.ID | None,
) -> EmergencyPlan:
    observed = None
    if symptom is not None:
        if not symptom.ci_ids:
            raise InvalidInputError(
                "symptom.ciIds is empty; pass the id of at least one CI where the symptom shows",
                field="symptom.ciIds",
            )
        require_zone(symptom.started_at, "symptom.startedAt")
        observed = Symptom(
            tuple(str(item) for item in symptom.ci_ids), symptom.started_at, tuple(symptom.tags or ()), symptom.text
        )
    store = info.context.store
    snapshot = await info.context.snapshot()
    now = utc_now()
    situation = await run_blocking(
        lambda: situation_for(
            store,
            snapshot,
            symptom=observed,
            incident_id=None if incident_id is None else str(incident_id),
            ci_id=None if ci_id is None else str(ci_id),
            now=now,
        )
    )
    plan, cis = await run_blocking(build_emergency_plan, store, snapshot, situation, now)
    return EmergencyPlan(
        situation=situation.describe(),
        started_at=situation.started_at,
        generated_at=plan.generated_at,
        observed_ids=[strawberry.ID(item) for item in situation.observed],
        incident=None if situation.incident is None else Incident.from_model(situation.incident),
        impacted_count=len(plan.impacted),
        impacted_entries=plan.impacted,
        business_service_ids=[strawberry.ID(item) for item in plan.business_services],
        notify=[
            Notification(owner=n.owner, business=n.business, ci_ids=[strawberry.ID(item) for item in n.ci_ids])
            for n in plan.notify
        ],
        communication=[PlanAction.from_model(action) for action in plan.communication],
        check_first=[Culprit.from_model(culprit) for culprit in plan.check_first],
        no_culprit_reason=plan.culprit_reason,
        rollback_first=[Change.from_model(change) for change in plan.rollback_first],
        actions=[PlanAction.from_model(action) for action in plan.actions],
        tooling=[PlanAction.from_model(action) for action in plan.tooling],
        uncovered_ids=[strawberry.ID(item) for item in plan.uncovered],
        markdown=plan_markdown(plan, cis),
    )


@strawberry.type(description="An important CI that no procedure applies to.")
class UncoveredCI:
    ci_id: strawberry.ID
    reasons: list[str] = strawberry.field(description="Why it counts as important.")

    @strawberry.field
    async def ci(self, info: Info[RequestContext, None]) -> CI | None:
        found = await load_existing_cis(info, [str(self.ci_id)])
        return found[0] if found else None


@strawberry.type(description="A procedure overdue for review or drill.")
class StaleProcedure:
    procedure: Procedure
    reasons: list[str]


@strawberry.type(description="A link of a procedure to a CI that no longer exists, is retired, or a selector that matches nothing.")
class BrokenLink:
    procedure: Procedure
    field: str = strawberry.field(description="Where in the procedure, such as applies_to.0 or selectors.1.")
    ci_id: strawberry.ID | None
    reason: str


@strawberry.type(description="A change or incident that names a procedure the plan does not hold.")
class MissingProcedure:
    referenced_by: strawberry.ID
    field: str
    procedure_id: strawberry.ID


@strawberry.type(description="What the emergency plan lacks.")
class PlanGaps:
    as_of: datetime
    review_within_days: int
    drill_within_days: int
    min_criticality: str
    procedure_count: int
    important_count: int = strawberry.field(description="CIs that need a procedure.")
    gap_count: int
    uncovered: list[UncoveredCI]
    stale: list[StaleProcedure]
    broken_links: list[BrokenLink]
    missing_procedures: list[MissingProcedure]
    markdown: str


async def resolve_plan_gaps(
    info: Info[RequestContext, None],
    review_within_days: int,
    drill_within_days: int,
    min_criticality: str,
    as_of: datetime | None,
) -> PlanGaps:
    for name, value in (("reviewWithinDays", review_within_days), ("drillWithinDays", drill_within_days)):
        if value < 1:
            raise InvalidInputError(f"{name} {value} is not positive; pass a number of days, such as 365", field=name)
    try:
        criticality = Criticality(min_criticality)
    except ValueError:
        allowed = ", ".join(level.value for level in Criticality)
        raise InvalidInputError(
            f"minCriticality {min_criticality!r} is not allowed; use one of {allowed}", field="minCriticality"
        ) from None
    if as_of is not None:
        require_zone(as_of, "asOf")
    options = analysis.PlanGapsOptions(
        review_within=timedelta(days=review_within_days),
        drill_within=timedelta(days=drill_within_days),
        min_criticality=criticality,
    )
    store = info.context.store
    snapshot = await info.context.snapshot()
    gaps, cis = await run_blocking(build_plan_gaps, store, snapshot, as_of or utc_now(), options)
    return PlanGaps(
        as_of=gaps.as_of,
        review_within_days=review_within_days,
        drill_within_days=drill_within_days,
        min_criticality=criticality.value,
        procedure_count=gaps.procedure_count,
        important_count=gaps.important_count,
        gap_count=gaps.gap_count,
        uncovered=[UncoveredCI(ci_id=strawberry.ID(item.ci_id), reasons=list(item.reasons)) for item in gaps.uncovered],
        stale=[StaleProcedure(procedure=Procedure.from_model(item.procedure), reasons=list(item.reasons)) for item in gaps.stale],
        broken_links=[
            BrokenLink(
                procedure=Procedure.from_model(link.procedure),
                field=link.field,
                ci_id=None if link.ci_id is None else strawberry.ID(link.ci_id),
                reason=link.reason,
            )
            for link in gaps.broken_links
        ],
        missing_procedures=[
            MissingProcedure(
                referenced_by=strawberry.ID(item.referenced_by),
                field=item.field,
                procedure_id=strawberry.ID(item.procedure_id),
            )
            for item in gaps.missing_procedures
        ],
        markdown=gaps_markdown(gaps, cis),
    )


@strawberry.input(description="A step of a procedure.")
class StepInput:
    text: str
    title: str | None = None


@strawberry.input
class ContactInput:
    name: str
    role: str | None = None
    reach: str | None = strawberry.field(default=None, description="Phone number, e-mail address or chat channel.")


@strawberry.input
class EscalationInput:
    after_minutes: int
    contact: ContactInput


@strawberry.input(description="CIs that are the source of such a relationship to the CI ci.")
class RelatedToInput:
    ci: strawberry.ID
    relationship: str
    transitive: bool | None = None


@strawberry.input(description="A selector: a CI must meet every condition given; give at least one.")
class SelectorInput:
    type: str | None = None
    environment: str | None = None
    tags: list[str] | None = None
    related_to: RelatedToInput | None = None


@strawberry.input(description="A procedure in the bundle record form.")
class ProcedureInput:
    id: strawberry.ID
    title: str
    level: str = strawberry.field(description="communication, transaction, service, system or tooling.")
    action: str = strawberry.field(
        description=(
            "restart, rollback, scale, adjust_parameter, snapshot_analysis, disable_feature, failover, notify, "
            "diagnose, restore, escalate or other."
        )
    )
    description: str | None = None
    steps: list[StepInput] | None = None
    expected_minutes: int | None = None
    risk: str | None = None
    owner: str | None = None
    contacts: list[ContactInput] | None = None
    escalation: list[EscalationInput] | None = None
    applies_to: list[strawberry.ID] | None = strawberry.field(default=None, description="Ids of CIs it applies to directly.")
    selectors: list[SelectorInput] | None = None
    last_reviewed: str | None = strawberry.field(
        default=None, description="A day such as 2026-09-01, or an ISO 8601 time with an offset."
    )
    last_drilled: str | None = strawberry.field(
        default=None, description="A day such as 2026-06-15, or an ISO 8601 time with an offset."
    )
    tags: list[str] | None = None
    source: str | None = None
    source_id: str | None = None
    attributes: JSON | None = None
