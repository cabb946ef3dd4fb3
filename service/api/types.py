"""GraphQL object types. Names follow the GraphQL contract that other tools build on."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import numpy as np
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from service.analysis import blast_radius as analysis
from service.analysis.topology import Topology
from service.api.context import RequestContext, run_blocking
from service.model import CI as CIModel
from service.model import Relationship as RelationshipModel
from service.model import Status

if TYPE_CHECKING:
    from service.api.events import Change, Incident
    from service.api.plan import AppliedProcedure


@strawberry.enum(description="How badly a failure hurts a CI.")
class Impact(enum.Enum):
    DOWN = "DOWN"
    DEGRADED = "DEGRADED"
    AT_RISK = "AT_RISK"


IMPACT_OF_LEVEL = {
    analysis.Impact.DOWN: Impact.DOWN,
    analysis.Impact.DEGRADED: Impact.DEGRADED,
    analysis.Impact.AT_RISK: Impact.AT_RISK,
}


async def load_ci(info: Info[RequestContext, None], ci_id: str) -> CI | None:
    ci = await info.context.ci_loader.load(ci_id)
    return None if ci is None else CI.from_model(ci)


async def load_existing_cis(info: Info[RequestContext, None], ids: list[str]) -> list[CI]:
    """Load CIs in order, leaving out any deleted since the snapshot was taken."""
    found = await info.context.ci_loader.load_many(ids)
    return [CI.from_model(ci) for ci in found if ci is not None]


@strawberry.type(description="A configuration item of the CMDB.")
class CI:
    id: strawberry.ID
    name: str
    type: str
    environment: str | None
    criticality: str | None
    owner: str | None = strawberry.field(description="Owning team or person.")
    status: str
    tags: list[str]
    attributes: JSON
    source: str | None = strawberry.field(description="System the record came from.")
    source_id: str | None = strawberry.field(description="Key of the record in that system.")
    valid_from: datetime | None
    valid_until: datetime | None
    model: strawberry.Private[CIModel]

    @classmethod
    def from_model(cls, ci: CIModel) -> CI:
        return cls(
            id=strawberry.ID(ci.id),
            name=ci.name,
            type=ci.type,
            environment=ci.environment,
            criticality=ci.criticality.value if ci.criticality else None,
            owner=ci.owner,
            status=ci.status.value,
            tags=list(ci.tags),
            attributes=ci.attributes,
            source=ci.source,
            source_id=ci.source_id,
            valid_from=ci.valid_from,
            valid_until=ci.valid_until,
            model=ci,
        )

    @strawberry.field(description="Relationships in which this CI is the consumer: what it needs.")
    async def dependencies(self, info: Info[RequestContext, None]) -> list[Relationship]:
        return await _relationships(info, self.model.id, consumer=True)

    @strawberry.field(description="Relationships in which this CI is the provider: what needs it.")
    async def dependents(self, info: Info[RequestContext, None]) -> list[Relationship]:
        return await _relationships(info, self.model.id, consumer=False)

    @strawberry.field(
        description=(
            "Changes that affect this CI, newest start first. since and until select by the change "
            "window as the changes query does."
        )
    )
    async def changes(
        self, info: Info[RequestContext, None], since: datetime | None = None, until: datetime | None = None
    ) -> list[Annotated[Change, strawberry.lazy("service.api.events")]]:
        from service.api.events import changes_of_ci

        return await changes_of_ci(info, self.model.id, since, until)

    @strawberry.field(description="Incidents that list this CI as impacted or as a root cause, newest first.")
    async def incidents(
        self, info: Info[RequestContext, None]
    ) -> list[Annotated[Incident, strawberry.lazy("service.api.events")]]:
        from service.api.events import incidents_of_ci

        return await incidents_of_ci(info, self.model.id)

    @strawberry.field(
        description=(
            "Emergency-plan procedures that apply to this CI, most specific first (direct links, then "
            "selectors by the number of conditions), each with the reasons it applies."
        )
    )
    async def procedures(
        self, info: Info[RequestContext, None]
    ) -> list[Annotated[AppliedProcedure, strawberry.lazy("service.api.plan")]]:
        from service.api.plan import procedures_of

        return await procedures_of(info, self.model)


async def _relationships(info: Info[RequestContext, None], ci_id: str, *, consumer: bool) -> list[Relationship]:
    store = info.context.store
    outgoing = await run_blocking(store.relationships_of, ci_id, "outgoing")
    incoming = await run_blocking(store.relationships_of, ci_id, "incoming")
    selected = [r for r in outgoing + incoming if (r.consumer == ci_id) == consumer]
    return [Relationship.from_model(r) for r in selected]


@strawberry.type(description="The redundancy group of a relationship's consumer.")
class Redundancy:
    group: str
    min_available: int | None
    min_available_percent: float | None


@strawberry.type(
    description=(
        "A typed edge 'source -[type]-> target'. Impact flows from provider to consumer; "
        "the provider is the target, except for PART_OF where it is the source."
    )
)
class Relationship:
    id: strawberry.ID
    type: str
    strength: str = strawberry.field(description="hard, or soft: a soft dependency never makes its consumer DOWN.")
    redundancy: Redundancy | None
    attributes: JSON
    valid_from: datetime | None
    valid_until: datetime | None
    model: strawberry.Private[RelationshipModel]

    @classmethod
    def from_model(cls, relationship: RelationshipModel) -> Relationship:
        redundancy = relationship.redundancy
        return cls(
            id=strawberry.ID(relationship.id),
            type=relationship.type.value,
            strength=relationship.strength.value,
            redundancy=Redundancy(
                group=redundancy.group,
                min_available=redundancy.min_available,
                min_available_percent=redundancy.min_available_percent,
            )
            if redundancy
            else None,
            attributes=relationship.attributes,
            valid_from=relationship.valid_from,
            valid_until=relationship.valid_until,
            model=relationship,
        )

    @strawberry.field
    async def source(self, info: Info[RequestContext, None]) -> CI | None:
        return await load_ci(info, self.model.source)

    @strawberry.field
    async def target(self, info: Info[RequestContext, None]) -> CI | None:
        return await load_ci(info, self.model.target)

    @strawberry.field(description="The CI whose failure this relationship passes on.")
    async def provider(self, info: Info[RequestContext, None]) -> CI | None:
        return await load_ci(info, self.model.provider)

    @strawberry.field(description="The CI that this relationship's provider hurts when it fails.")
    async def consumer(self, info: Info[RequestContext, None]) -> CI | None:
        return await load_ci(info, self.model.consumer)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class CIEdge:
    cursor: str
    node: CI


@strawberry.type
class CIConnection:
    edges: list[CIEdge]
    nodes: list[CI]
    page_info: PageInfo
    total_count: int


@strawberry.input(description="All given conditions must hold.")
class CIFilter:
    name: str | None = strawberry.field(default=None, description="Case-insensitive substring of the name.")
    type: str | None = None
    tag: str | None = None
    environment: str | None = None
    text: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the id, name, owner or a tag."
    )


@strawberry.type
class ImpactCount:
    impact: Impact
    count: int


@strawberry.type
class TypeCount:
    type: str
    count: int


@strawberry.type
class BusinessServiceImpact:
    ci: CI
    impact: Impact
    impacted_count: int = strawberry.field(description="Impacted CIs whose failure reaches this business CI.")


class _BlastRadiusState:
    """The analysis result shared by the items of one blastRadius response."""

    def __init__(self, topology: Topology, radius: analysis.BlastRadius) -> None:
        self.topology = topology
        self.radius = radius
        self._business: dict[int, np.ndarray] | None = None
        self._business_of_item: dict[int, list[int]] | None = None

    def business_reached(self) -> dict[int, np.ndarray]:
        if self._business is None:
            self._business = analysis.business_services_reached(self.topology, self.radius)
        return self._business

    def business_of_items(self) -> dict[int, list[int]]:
        """Map each listed impacted CI to the business CIs it reaches."""
        if self._business_of_item is None:
            listed = np.zeros(self.topology.node_count, dtype=bool)
            listed[self.radius.impacted] = True
            result: dict[int, list[int]] = {int(node): [] for node in self.radius.impacted}
            ordered = sorted(self.business_reached().items(), key=lambda item: self.topology.id_rank[item[0]])
            for business, members in ordered:
                for node in members[listed[members]]:
                    result[int(node)].append(business)
            self._business_of_item = result
        return self._business_of_item


@strawberry.type
class ImpactSummary:
    total: int
    by_impact: list[ImpactCount]
    by_type: list[TypeCount]
    state: strawberry.Private[_BlastRadiusState]

    @strawberry.field(description="Impacted business services and transactions, each with the CIs that reach it.")
    async def by_business_service(self, info: Info[RequestContext, None]) -> list[BusinessServiceImpact]:
        state = self.state
        reached = await run_blocking(state.business_reached)
        ordered = sorted(reached, key=lambda node: state.topology.id_rank[node])
        cis = await info.context.ci_loader.load_many([state.topology.ids[node] for node in ordered])
        return [
            BusinessServiceImpact(
                ci=CI.from_model(ci),
                impact=IMPACT_OF_LEVEL[analysis.Impact(state.radius.level[node])],
                impacted_count=int(len(reached[node]) - np.count_nonzero(np.isin(reached[node], state.radius.failed))),
            )
            for node, ci in zip(ordered, cis, strict=True)
            if ci is not None
        ]


@strawberry.type(description="One CI hurt by the failure.")
class ImpactedCI:
    impact: Impact
    distance: int = strawberry.field(description="Edges on a shortest path from a failed CI.")
    node: strawberry.Private[int]
    state: strawberry.Private[_BlastRadiusState]

    @strawberry.field
    async def ci(self, info: Info[RequestContext, None]) -> CI:
        ci = await load_ci(info, self.state.topology.ids[self.node])
        if ci is None:
            return _deleted_ci(self.state.topology.ids[self.node])
        return ci

    @strawberry.field(description="One shortest explaining path, from a failed CI to this one.")
    async def path(self, info: Info[RequestContext, None]) -> list[CI]:
        ids = [self.state.topology.ids[node] for node in analysis.path_to(self.state.radius, self.node)]
        return await load_existing_cis(info, ids)

    @strawberry.field(description="Business services and transactions that this CI's failure reaches.")
    async def business_services(self, info: Info[RequestContext, None]) -> list[CI]:
        business = (await run_blocking(self.state.business_of_items))[self.node]
        return await load_existing_cis(info, [self.state.topology.ids[node] for node in business])

    @strawberry.field(description="Owners of this CI and of the business CIs it reaches: the people to notify.")
    async def owners(self, info: Info[RequestContext, None]) -> list[str]:
        business = (await run_blocking(self.state.business_of_items))[self.node]
        ids = [self.state.topology.ids[node] for node in [self.node, *business]]
        cis = await info.context.ci_loader.load_many(ids)
        return list(dict.fromkeys(ci.owner for ci in cis if ci is not None and ci.owner))

    @strawberry.field(description="Emergency-plan procedures that apply to this CI, most specific first.")
    async def procedures(
        self, info: Info[RequestContext, None]
    ) -> list[Annotated[AppliedProcedure, strawberry.lazy("service.api.plan")]]:
        from service.api.plan import procedures_of

        ci = await info.context.ci_loader.load(self.state.topology.ids[self.node])
        return [] if ci is None else await procedures_of(info, ci)


def _deleted_ci(ci_id: str) -> CI:
    # The CI was deleted after the snapshot was taken; keep the entry readable.
    return CI.from_model(CIModel(id=ci_id, name=ci_id, type="unknown", status=Status.UNKNOWN))


@strawberry.type
class BlastRadius:
    impacted: list[ImpactedCI]
    truncated: bool = strawberry.field(description="True when the limit cut the impacted list; the summary is exact.")
    summary: ImpactSummary
    state: strawberry.Private[_BlastRadiusState]

    @strawberry.field(description="The failed CIs the radius starts from.")
    async def failed(self, info: Info[RequestContext, None]) -> list[CI]:
        return await load_existing_cis(info, [self.state.topology.ids[node] for node in self.state.radius.failed])

    @classmethod
    def from_analysis(cls, topology: Topology, radius: analysis.BlastRadius) -> BlastRadius:
        state = _BlastRadiusState(topology, radius)
        summary = radius.summary
        return cls(
            impacted=[
                ImpactedCI(
                    impact=IMPACT_OF_LEVEL[analysis.Impact(level)],
                    distance=int(distance),
                    node=int(node),
                    state=state,
                )
                for node, level, distance in zip(radius.impacted, radius.impact, radius.distance, strict=True)
            ],
            truncated=radius.truncated,
            summary=ImpactSummary(
                total=summary.total,
                by_impact=[
                    ImpactCount(impact=IMPACT_OF_LEVEL[level], count=count)
                    for level, count in sorted(summary.by_impact.items(), reverse=True)
                ],
                by_type=[TypeCount(type=name, count=count) for name, count in sorted(summary.by_type.items())],
                state=state,
            ),
            state=state,
        )


@strawberry.type(description="What a write changed.")
class WriteResult:
    cis_created: int
    cis_updated: int
    cis_unchanged: int
    relationships_created: int
    relationships_updated: int
    relationships_unchanged: int
    changes_created: int
    changes_updated: int
    changes_unchanged: int
    incidents_created: int
    incidents_updated: int
    incidents_unchanged: int
    procedures_created: int
    procedures_updated: int
    procedures_unchanged: int
    warnings: list[str] = strawberry.field(
        default_factory=list,
        description="Facts to check that did not stop the write, such as a selector that matches no CI.",
    )


@strawberry.type(description="A record that an import rejected, and why.")
class RejectedRecord:
    source: str
    record: str
    field: str
    message: str


@strawberry.type
class ImportReport:
    result: WriteResult
    cis_read: int
    relationships_read: int
    changes_read: int
    incidents_read: int
    procedures_read: int
    rejected: list[RejectedRecord]
    warnings: list[str]


@strawberry.type(description="What deleting a CI removed; changes and incidents stay, without their link to it.")
class DeleteResult:
    cis_deleted: int
    relationships_deleted: int
    change_links_deleted: int
    incident_links_deleted: int
