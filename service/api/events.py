"""GraphQL types and query resolvers for changes, incidents, likely culprits and change review."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from service.analysis.change_review import ChangeReview as ChangeReviewModel
from service.analysis.change_review import review_change
from service.analysis.culprits import Culprit as CulpritModel
from service.analysis.culprits import CulpritOptions, CulpritReport, Symptom, likely_culprits
from service.api.context import RequestContext, run_blocking
from service.api.types import (
    CI,
    IMPACT_OF_LEVEL,
    BlastRadius,
    Impact,
    PageInfo,
    _deleted_ci,
    load_ci,
    load_existing_cis,
)
from service.errors import InvalidInputError, NotFoundError
from service.model import Change as ChangeModel
from service.model import Incident as IncidentModel
from service.records import Origin, change_from_record
from service.snapshot import Snapshot
from service.store.base import ChangeFilter as ChangeFilterModel
from service.store.base import IncidentFilter as IncidentFilterModel
from service.store.base import encode_cursor

DEFAULT_PAGE_SIZE = 100
DEFAULT_CULPRIT_LIMIT = 10

if TYPE_CHECKING:
    from service.api.plan import AppliedProcedure


def require_zone(value: datetime | None, field_name: str) -> None:
    """Raise ``InvalidInputError`` naming the field when a time has no time zone."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidInputError(
            f"{field_name} {value.isoformat()!r} has no time zone; add an offset such as Z or +01:00",
            field=field_name,
        )


def _check_range(since: datetime | None, until: datetime | None, prefix: str) -> None:
    require_zone(since, f"{prefix}since")
    require_zone(until, f"{prefix}until")
    if since is not None and until is not None and until < since:
        raise InvalidInputError(
            f"{prefix}until {until.isoformat()} is before {prefix}since {since.isoformat()}; swap them",
            field=f"{prefix}until",
        )


# Object types


@strawberry.type(description="A change to one or more CIs, planned or made. Times are in UTC.")
class Change:
    id: strawberry.ID
    title: str
    kind: str
    status: str
    risk: str
    planned_start: datetime | None
    planned_end: datetime | None
    actual_start: datetime | None
    actual_end: datetime | None
    implementer: str | None
    description: str | None
    rollback_procedure: str | None = strawberry.field(description="Id of the procedure that undoes the change.")
    attributes: JSON
    affected_ci_ids: list[strawberry.ID] = strawberry.field(description="Ids of the CIs the change touches.")
    model: strawberry.Private[ChangeModel]

    @classmethod
    def from_model(cls, change: ChangeModel) -> Change:
        return cls(
            id=strawberry.ID(change.id),
            title=change.title,
            kind=change.kind.value,
            status=change.status.value,
            risk=change.risk.value,
            planned_start=change.planned_start,
            planned_end=change.planned_end,
            actual_start=change.actual_start,
            actual_end=change.actual_end,
            implementer=change.implementer,
            description=change.description,
            rollback_procedure=change.rollback_procedure,
            attributes=change.attributes,
            affected_ci_ids=[strawberry.ID(ci_id) for ci_id in change.affected],
            model=change,
        )

    @strawberry.field(description="The CIs the change touches.")
    async def affected(self, info: Info[RequestContext, None]) -> list[CI]:
        return await load_existing_cis(info, list(self.model.affected))

    @strawberry.field(description="Incidents recorded as caused by this change, in id order.")
    async def incidents(self, info: Info[RequestContext, None]) -> list[Incident]:
        found = await info.context.incidents_of_change_loader.load(self.model.id)
        return [Incident.from_model(incident) for incident in found]


@strawberry.type(description="A past or ongoing incident, with the CIs it hurt and what caused it. Times are in UTC.")
class Incident:
    id: strawberry.ID
    title: str
    severity: str
    status: str
    started_at: datetime
    detected_at: datetime | None
    resolved_at: datetime | None
    symptom_text: str | None
    symptom_tags: list[str]
    impacted_ci_ids: list[strawberry.ID]
    root_cause_ci_ids: list[strawberry.ID]
    caused_by_change_id: strawberry.ID | None
    resolved_with: str | None = strawberry.field(description="Id of the procedure that resolved the incident.")
    attributes: JSON
    model: strawberry.Private[IncidentModel]

    @classmethod
    def from_model(cls, incident: IncidentModel) -> Incident:
        cause = incident.caused_by_change
        return cls(
            id=strawberry.ID(incident.id),
            title=incident.title,
            severity=incident.severity.value,
            status=incident.status.value,
            started_at=incident.started_at,
            detected_at=incident.detected_at,
            resolved_at=incident.resolved_at,
            symptom_text=incident.symptom_text,
            symptom_tags=list(incident.symptom_tags),
            impacted_ci_ids=[strawberry.ID(ci_id) for ci_id in incident.impacted],
            root_cause_ci_ids=[strawberry.ID(ci_id) for ci_id in incident.root_causes],
            caused_by_change_id=strawberry.ID(cause) if cause else None,
            resolved_with=incident.resolved_with,
            attributes=incident.attributes,
            model=incident,
        )

    @strawberry.field(description="The CIs the incident hurt.")
    async def impacted(self, info: Info[RequestContext, None]) -> list[CI]:
        return await load_existing_cis(info, list(self.model.impacted))

    @strawberry.field(description="The CIs found to cause the incident.")
    async def root_causes(self, info: Info[RequestContext, None]) -> list[CI]:
        return await load_existing_cis(info, list(self.model.root_causes))

    @strawberry.field(description="The change that caused the incident, if one did.")
    async def caused_by_change(self, info: Info[RequestContext, None]) -> Change | None:
        if not self.model.caused_by_change:
            return None
        change = await info.context.change_loader.load(self.model.caused_by_change)
        return None if change is None else Change.from_model(change)


@strawberry.type
class ChangeEdge:
    cursor: str
    node: Change


@strawberry.type
class ChangeConnection:
    edges: list[ChangeEdge]
    nodes: list[Change]
    page_info: PageInfo
    total_count: int


@strawberry.type
class IncidentEdge:
    cursor: str
    node: Incident


@strawberry.type
class IncidentConnection:
    edges: list[IncidentEdge]
    nodes: list[Incident]
    page_info: PageInfo
    total_count: int


@strawberry.input(description="All given conditions must hold.")
class ChangeFilter:
    ci_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Changes that affect any of these CIs."
    )
    since: datetime | None = strawberry.field(
        default=None, description="Changes whose window had not ended before this time; a change without an end counts."
    )
    until: datetime | None = strawberry.field(default=None, description="Changes that started at or before this time.")
    status: str | None = None
    kind: str | None = None
    text: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the id, title, description or implementer."
    )


@strawberry.input(description="All given conditions must hold.")
class IncidentFilter:
    ci_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Incidents that list any of these CIs as impacted or as a root cause."
    )
    since: datetime | None = strawberry.field(default=None, description="Incidents that started at or after this time.")
    until: datetime | None = strawberry.field(
        default=None, description="Incidents that started at or before this time."
    )
    status: str | None = None
    severity: str | None = None
    caused_by_change: strawberry.ID | None = strawberry.field(default=None, description="Id of the causing change.")
    text: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the id, title, symptom text or a symptom tag."
    )


@strawberry.input(description="Where and since when a symptom shows, and how.")
class SymptomInput:
    ci_ids: list[strawberry.ID] = strawberry.field(description="CIs where the symptom was observed.")
    started_at: datetime = strawberry.field(description="Onset, with a time zone.")
    tags: list[str] | None = strawberry.field(
        default=None, description="Symptom tags in snake_case, such as timeout, slow_response, error_rate or down."
    )
    text: str | None = strawberry.field(default=None, description="The symptom in words, compared with past incidents.")


@strawberry.type(description="A CI that may have caused a symptom, with the evidence behind its score.")
class Culprit:
    rank: int
    score: float
    evidence: list[str] = strawberry.field(description="One checkable fact per line.")
    distance: int = strawberry.field(description="Hops upstream of the nearest observed CI; 0 for an observed CI.")
    model: strawberry.Private[CulpritModel]

    @classmethod
    def from_model(cls, culprit: CulpritModel) -> Culprit:
        return cls(
            rank=culprit.rank,
            score=culprit.score,
            evidence=list(culprit.evidence),
            distance=culprit.distance,
            model=culprit,
        )

    @strawberry.field
    async def ci(self, info: Info[RequestContext, None]) -> CI:
        ci = await load_ci(info, self.model.ci_id)
        return ci if ci is not None else _deleted_ci(self.model.ci_id)

    @strawberry.field(description="Its changes made shortly before onset, most suspicious first.")
    def changes(self) -> list[Change]:
        return [Change.from_model(change) for change in self.model.changes]

    @strawberry.field(
        description=(
            "Past incidents with similar symptoms whose root cause it was, most similar first, "
            "then incidents open at onset that list it as impacted."
        )
    )
    def incidents(self) -> list[Incident]:
        return [Incident.from_model(incident) for incident in self.model.incidents]

    @strawberry.field(description="The observed CIs that it is upstream of or equal to.")
    async def explains(self, info: Info[RequestContext, None]) -> list[CI]:
        return await load_existing_cis(info, list(self.model.explained))

    @strawberry.field(
        description=(
            "Emergency-plan procedures for this CI: the rollback procedure of each suspect change first, "
            "then the others, most specific first."
        )
    )
    async def procedures(
        self, info: Info[RequestContext, None]
    ) -> list[Annotated[AppliedProcedure, strawberry.lazy("service.api.plan")]]:
        from service.api.plan import culprit_procedures

        return await culprit_procedures(info, self)


@strawberry.type(description="Ranked likely culprits of a symptom, or the reason why there are none.")
class CulpritAnalysis:
    culprits: list[Culprit]
    rollback_first: list[Change] = strawberry.field(
        description="Recent changes on the top culprits, in the order to consider rolling them back."
    )
    reason: str | None = strawberry.field(description="Why there is no culprit; null when there are culprits.")
    candidate_count: int = strawberry.field(description="All candidates, also those that the limit cut.")
    unknown_ci_ids: list[strawberry.ID] = strawberry.field(
        description="Symptom CIs that did not exist at onset; they were ignored."
    )

    @classmethod
    def from_report(cls, report: CulpritReport) -> CulpritAnalysis:
        return cls(
            culprits=[Culprit.from_model(culprit) for culprit in report.culprits],
            rollback_first=[Change.from_model(change) for change in report.rollback_first],
            reason=report.reason,
            candidate_count=report.candidate_count,
            unknown_ci_ids=[strawberry.ID(ci_id) for ci_id in report.unknown_ci_ids],
        )


@strawberry.type(description="A change's window in UTC.")
class ChangeWindow:
    start: datetime
    end: datetime
    assumed_end: bool = strawberry.field(
        description="True when the change has no usable end, so end is its start plus 4 hours."
    )


@strawberry.type(description="Another change whose window overlaps the reviewed one on the same or an impacted CI.")
class Collision:
    change: Change
    window: ChangeWindow
    overlap_minutes: float
    reason: str
    shared_ci_ids: list[strawberry.ID] = strawberry.field(description="CIs that both changes affect.")
    impacted_ci_ids: list[strawberry.ID] = strawberry.field(
        description="CIs the other change affects that are in the reviewed change's blast radius."
    )


@strawberry.type(description="A past incident caused by a change to one of the reviewed change's CIs.")
class CausedIncident:
    incident: Incident
    reason: str
    change_id: strawberry.ID = strawberry.field(description="The change that caused the incident.")
    ci_ids: list[strawberry.ID] = strawberry.field(
        description="The reviewed change's CIs that the causing change also changed."
    )


@strawberry.type(description="An owner who should review the change, with the CIs that make it so.")
class Reviewer:
    owner: str
    ci_ids: list[strawberry.ID]


@strawberry.type
class BusinessImpact:
    ci: CI
    impact: Impact


@strawberry.type(description="What a change could hurt, what it collides with and what similar changes broke before.")
class ChangeReview:
    change: Change
    window: ChangeWindow | None = strawberry.field(description="Null when the change has no start time.")
    radius: BlastRadius | None = strawberry.field(
        description="Blast radius of the affected CIs, as if they all failed; null when none of them is stored."
    )
    business_impact: list[BusinessImpact] = strawberry.field(
        description="Business services and transactions in the radius, with their impact."
    )
    collisions: list[Collision]
    past_incidents: list[CausedIncident]
    risk: str
    risk_reason: str = strawberry.field(description="The risk rating and its factors as one sentence.")
    reasons: list[str] = strawberry.field(description="The factors of the risk rating, one per line.")
    reviewers: list[Reviewer] = strawberry.field(
        description="Owners of the affected CIs, of the CIs the radius takes down and of the business CIs it reaches."
    )
    unowned_ci_ids: list[strawberry.ID] = strawberry.field(description="CIs that call for a review but have no owner.")
    unknown_ci_ids: list[strawberry.ID] = strawberry.field(description="Affected CIs that are not stored.")
    model: strawberry.Private[ChangeReviewModel]

    @strawberry.field(description="The affected CIs that are stored.")
    async def affected(self, info: Info[RequestContext, None]) -> list[CI]:
        return await load_existing_cis(info, list(self.model.affected_ci_ids))


# Resolvers


async def changes_of_ci(
    info: Info[RequestContext, None], ci_id: str, since: datetime | None, until: datetime | None
) -> list[Change]:
    _check_range(since, until, "")
    found = await info.context.changes_of_ci_loader.load((ci_id, since, until))
    return [Change.from_model(change) for change in found]


async def incidents_of_ci(info: Info[RequestContext, None], ci_id: str) -> list[Incident]:
    found = await info.context.incidents_of_ci_loader.load(ci_id)
    return [Incident.from_model(incident) for incident in found]


async def resolve_change(info: Info[RequestContext, None], id: strawberry.ID) -> Change | None:
    change = await info.context.change_loader.load(str(id))
    return None if change is None else Change.from_model(change)


async def resolve_incident(info: Info[RequestContext, None], id: strawberry.ID) -> Incident | None:
    incident = await info.context.incident_loader.load(str(id))
    return None if incident is None else Incident.from_model(incident)


def _ci_id_tuple(ids: list[strawberry.ID] | None) -> tuple[str, ...] | None:
    return None if ids is None else tuple(str(ci_id) for ci_id in ids)


async def resolve_changes(
    info: Info[RequestContext, None],
    filter: ChangeFilter | None = None,
    first: int = DEFAULT_PAGE_SIZE,
    after: str | None = None,
) -> ChangeConnection:
    conditions = ChangeFilterModel()
    if filter is not None:
        _check_range(filter.since, filter.until, "filter.")
        conditions = ChangeFilterModel(
            ci_ids=_ci_id_tuple(filter.ci_ids),
            since=filter.since,
            until=filter.until,
            status=filter.status,
            kind=filter.kind,
            text=filter.text,
        )
    page = await run_blocking(info.context.store.list_changes, conditions, first, after)
    nodes = [Change.from_model(change) for change in page.items]
    return ChangeConnection(
        edges=[ChangeEdge(cursor=encode_cursor(node.model.id), node=node) for node in nodes],
        nodes=nodes,
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        total_count=page.total_count,
    )


async def resolve_incidents(
    info: Info[RequestContext, None],
    filter: IncidentFilter | None = None,
    first: int = DEFAULT_PAGE_SIZE,
    after: str | None = None,
) -> IncidentConnection:
    conditions = IncidentFilterModel()
    if filter is not None:
        _check_range(filter.since, filter.until, "filter.")
        conditions = IncidentFilterModel(
            ci_ids=_ci_id_tuple(filter.ci_ids),
            since=filter.since,
            until=filter.until,
            status=filter.status,
            severity=filter.severity,
            caused_by_change=str(filter.caused_by_change) if filter.caused_by_change else None,
            text=filter.text,
        )
    page = await run_blocking(info.context.store.list_incidents, conditions, first, after)
    nodes = [Incident.from_model(incident) for incident in page.items]
    return IncidentConnection(
        edges=[IncidentEdge(cursor=encode_cursor(node.model.id), node=node) for node in nodes],
        nodes=nodes,
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        total_count=page.total_count,
    )


def _require_known(ci_ids: Sequence[str], snapshot: Snapshot, field_name: str) -> None:
    unknown = [ci_id for ci_id in dict.fromkeys(ci_ids) if ci_id not in snapshot.topology.index]
    if unknown:
        raise NotFoundError(
            f"{field_name}: CI(s) not found: {', '.join(unknown)}; check the ids with the cis query",
            field=field_name,
        )


async def _analyse_symptom(info: Info[RequestContext, None], symptom: SymptomInput, limit: int | None) -> CulpritReport:
    if not symptom.ci_ids:
        raise InvalidInputError(
            "symptom.ciIds is empty; pass the id of at least one CI where the symptom shows", field="symptom.ciIds"
        )
    require_zone(symptom.started_at, "symptom.startedAt")
    if limit is not None and limit < 0:
        raise InvalidInputError(f"limit {limit} is negative; pass 0 or more, or leave it out", field="limit")
    snapshot = await run_blocking(info.context.services.snapshots.snapshot)
    ci_ids = [str(ci_id) for ci_id in symptom.ci_ids]
    _require_known(ci_ids, snapshot, "symptom.ciIds")

    observed = Symptom(tuple(ci_ids), symptom.started_at, tuple(symptom.tags or ()), symptom.text)
    options = CulpritOptions(limit=limit)
    return await run_blocking(likely_culprits, snapshot.topology, observed, snapshot.events, snapshot.statuses, options)


async def resolve_likely_culprits(
    info: Info[RequestContext, None], symptom: SymptomInput, limit: int | None = DEFAULT_CULPRIT_LIMIT
) -> list[Culprit]:
    report = await _analyse_symptom(info, symptom, limit)
    return [Culprit.from_model(culprit) for culprit in report.culprits]


async def resolve_culprit_analysis(
    info: Info[RequestContext, None], symptom: SymptomInput, limit: int | None = DEFAULT_CULPRIT_LIMIT
) -> CulpritAnalysis:
    return CulpritAnalysis.from_report(await _analyse_symptom(info, symptom, limit))


def proposed_change(record: dict[str, Any]) -> ChangeModel:
    """Validate a proposed change given as a bundle record, as the loader validates an imported one.

    Raises:
        InvalidInputError: the record is invalid; the message and ``field`` name the first field.
    """
    change, problems = change_from_record(record, Origin("changeReview", "proposed"))
    if change is None:
        details = "; ".join(f"{problem.field}: {problem.message}" for problem in problems)
        raise InvalidInputError(f"proposed change is invalid: {details}", field=f"proposed.{problems[0].field}")
    return change


async def review(
    info: Info[RequestContext, None], change_id: strawberry.ID | None, proposed: dict[str, Any] | None
) -> ChangeReview:
    """Review a stored change by id, or a proposed one given as a bundle record; exactly one of the two."""
    if (change_id is None) == (proposed is None):
        raise InvalidInputError("pass exactly one of changeId and proposed", field="changeId")
    snapshot = await run_blocking(info.context.services.snapshots.snapshot)
    if change_id is not None:
        change = snapshot.events.changes_by_id.get(str(change_id))
        if change is None:
            raise NotFoundError(
                f"change {str(change_id)!r} not found; check the id with the changes query", field="changeId"
            )
    else:
        assert proposed is not None
        change = proposed_change(proposed)
        _require_known(change.affected, snapshot, "proposed.affected")

    result = await run_blocking(review_change, snapshot.topology, change, snapshot.events)
    return await _review_type(info, snapshot, result)


async def _review_type(info: Info[RequestContext, None], snapshot: Snapshot, result: ChangeReviewModel) -> ChangeReview:
    topology = snapshot.topology
    reviewers: dict[str, list[strawberry.ID]] = {}
    unowned: list[strawberry.ID] = []
    cis = await info.context.ci_loader.load_many(result.reviewer_ci_ids)
    for ci_id, ci in zip(result.reviewer_ci_ids, cis, strict=True):
        if ci is not None and ci.owner:
            reviewers.setdefault(ci.owner, []).append(strawberry.ID(ci_id))
        else:
            unowned.append(strawberry.ID(ci_id))

    business = []
    for ci_id, level in result.business_impact.items():
        ci = await load_ci(info, ci_id)
        business.append(BusinessImpact(ci=ci if ci is not None else _deleted_ci(ci_id), impact=IMPACT_OF_LEVEL[level]))

    window = result.window
    return ChangeReview(
        change=Change.from_model(result.change),
        window=None
        if window is None
        else ChangeWindow(start=window.start, end=window.end, assumed_end=window.assumed_end),
        radius=None if result.radius is None else BlastRadius.from_analysis(topology, result.radius),
        business_impact=business,
        collisions=[
            Collision(
                change=Change.from_model(item.change),
                window=ChangeWindow(start=item.window.start, end=item.window.end, assumed_end=item.window.assumed_end),
                overlap_minutes=item.overlap_minutes,
                reason=item.reason,
                shared_ci_ids=[strawberry.ID(ci_id) for ci_id in item.shared_ci_ids],
                impacted_ci_ids=[strawberry.ID(ci_id) for ci_id in item.impacted_ci_ids],
            )
            for item in result.collisions
        ],
        past_incidents=[
            CausedIncident(
                incident=Incident.from_model(item.incident),
                reason=item.reason,
                change_id=strawberry.ID(item.change_id),
                ci_ids=[strawberry.ID(ci_id) for ci_id in item.ci_ids],
            )
            for item in result.past_incidents
        ],
        risk=result.risk.value,
        risk_reason=result.risk_reason,
        reasons=list(result.reasons),
        reviewers=[Reviewer(owner=owner, ci_ids=ids) for owner, ids in reviewers.items()],
        unowned_ci_ids=unowned,
        unknown_ci_ids=[strawberry.ID(ci_id) for ci_id in result.unknown_ci_ids],
        model=result,
    )
