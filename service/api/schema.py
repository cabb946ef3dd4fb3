"""The GraphQL schema: queries, mutations and the mapping of errors to codes."""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON
from strawberry.types import Info

import importers
from importers.native import parse_bundle
from service.analysis.blast_radius import BlastRadiusOptions, blast_radius
from service.api import events, plan
from service.api.context import RequestContext, run_blocking
from service.api.plan import EmergencyPlan, PlanGaps, Procedure, ProcedureFilter, ProcedureInput
from service.api.events import (
    Change,
    ChangeConnection,
    ChangeFilter,
    ChangeReview,
    Culprit,
    CulpritAnalysis,
    Incident,
    IncidentConnection,
    IncidentFilter,
    SymptomInput,
)
from service.api.types import (
    CI,
    BlastRadius,
    CIConnection,
    CIEdge,
    CIFilter,
    DeleteResult,
    ImportReport,
    PageInfo,
    RejectedRecord,
    WriteResult,
    load_ci,
)
from service.errors import FaultgraphError, InvalidInputError, NotFoundError
from service.loader import ImportReport as ImportReportModel
from service.loader import load
from service.model import utc_now
from service.records import batch_from_records, change_to_record, incident_to_record
from service.store.base import CIFilter as CIFilterModel
from service.store.base import encode_cursor

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
DEFAULT_BLAST_RADIUS_LIMIT = 1000


@strawberry.input
class CIInput:
    id: strawberry.ID
    type: str
    name: str | None = None
    environment: str | None = None
    criticality: str | None = None
    owner: str | None = None
    status: str | None = None
    tags: list[str] | None = None
    attributes: JSON | None = None
    source: str | None = None
    source_id: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@strawberry.input
class RedundancyInput:
    group: str
    min_available: int | None = None
    min_available_percent: float | None = None


@strawberry.input(description="A relationship 'source -[type]-> target'; see Relationship for the direction.")
class RelationshipInput:
    source: strawberry.ID
    target: strawberry.ID
    type: str
    strength: str | None = None
    redundancy: RedundancyInput | None = None
    attributes: JSON | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@strawberry.input(description="A change in the bundle record form; times need a time zone.")
class ChangeInput:
    id: strawberry.ID
    title: str
    kind: str = strawberry.field(
        description="deploy, config, patch, scale, feature_flag, network, database, infrastructure or other."
    )
    status: str = strawberry.field(
        description="planned, approved, in_progress, completed, failed, rolled_back or cancelled."
    )
    affected: list[strawberry.ID] = strawberry.field(description="Ids of the CIs the change touches.")
    risk: str | None = strawberry.field(default=None, description="low, medium (the default), high or critical.")
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    actual_start: datetime | None = None
    actual_end: datetime | None = None
    implementer: str | None = None
    description: str | None = None
    rollback_procedure: str | None = None
    attributes: JSON | None = None


@strawberry.input(description="An incident in the bundle record form; times need a time zone.")
class IncidentInput:
    id: strawberry.ID
    title: str
    severity: str = strawberry.field(description="critical, high, medium or low.")
    status: str = strawberry.field(description="open, investigating, mitigated, resolved or closed.")
    started_at: datetime
    detected_at: datetime | None = None
    resolved_at: datetime | None = None
    impacted: list[strawberry.ID] | None = None
    root_causes: list[strawberry.ID] | None = None
    symptom_text: str | None = None
    symptom_tags: list[str] | None = None
    caused_by_change: strawberry.ID | None = None
    resolved_with: str | None = strawberry.field(default=None, description="Id of the procedure that resolved it.")
    attributes: JSON | None = None


def _record(value: Any) -> Any:
    """Turn a strawberry input into the bundle record form that the shared validation reads."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_record(item) for item in value]
    if hasattr(value, "__strawberry_definition__"):
        return {key: _record(item) for key, item in vars(value).items() if item is not None}
    return value


def _import_report(report: ImportReportModel) -> ImportReport:
    result = report.result
    return ImportReport(
        result=WriteResult(**vars(result), warnings=report.warnings),
        cis_read=report.cis_read,
        relationships_read=report.relationships_read,
        changes_read=report.changes_read,
        incidents_read=report.incidents_read,
        procedures_read=report.procedures_read,
        rejected=[RejectedRecord(**vars(problem)) for problem in report.rejected],
        warnings=report.warnings,
    )


async def _run_import(info: Info[RequestContext, None], batch: Any, keep_going: bool) -> ImportReport:
    report = await run_blocking(lambda: load(info.context.store, batch, keep_going=keep_going))
    return _import_report(report)


@strawberry.type
class Query:
    @strawberry.field(description="One CI by id, or null when it does not exist.")
    async def ci(self, info: Info[RequestContext, None], id: strawberry.ID) -> CI | None:
        return await load_ci(info, str(id))

    @strawberry.field(description="CIs ordered by id, a page at a time.")
    async def cis(
        self,
        info: Info[RequestContext, None],
        filter: CIFilter | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> CIConnection:
        conditions = CIFilterModel(**vars(filter)) if filter else CIFilterModel()
        page = await run_blocking(info.context.store.list_cis, conditions, first, after)
        nodes = [CI.from_model(ci) for ci in page.items]
        return CIConnection(
            edges=[CIEdge(cursor=encode_cursor(node.model.id), node=node) for node in nodes],
            nodes=nodes,
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )

    @strawberry.field(
        description=(
            "Every CI hurt when the given CIs fail, worst impact first. "
            f"limit defaults to {DEFAULT_BLAST_RADIUS_LIMIT}; asOf defaults to now and "
            "selects the CIs and relationships valid at that moment."
        )
    )
    async def blast_radius(
        self,
        info: Info[RequestContext, None],
        ci_ids: list[strawberry.ID],
        max_depth: int | None = None,
        relationship_types: list[str] | None = None,
        limit: int | None = DEFAULT_BLAST_RADIUS_LIMIT,
        as_of: datetime | None = None,
    ) -> BlastRadius:
        if not ci_ids:
            raise InvalidInputError("ciIds is empty; pass the id of at least one failed CI", field="ciIds")
        if as_of is not None and as_of.tzinfo is None:
            raise InvalidInputError(
                f"asOf {as_of.isoformat()!r} has no time zone; add an offset such as Z", field="asOf"
            )
        topology = await run_blocking(info.context.services.snapshots.current)
        unknown = [str(ci_id) for ci_id in ci_ids if str(ci_id) not in topology.index]
        if unknown:
            raise NotFoundError(f"CI(s) not found: {', '.join(unknown)}; check the ids with the cis query")
        options = BlastRadiusOptions(
            max_depth=max_depth,
            relationship_types=relationship_types,
            limit=limit,
            as_of=as_of or utc_now(),
        )
        try:
            radius = await run_blocking(blast_radius, topology, [str(ci_id) for ci_id in ci_ids], options)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
        return BlastRadius.from_analysis(topology, radius)

    @strawberry.field(description="One change by id, or null when it does not exist.")
    async def change(self, info: Info[RequestContext, None], id: strawberry.ID) -> Change | None:
        return await events.resolve_change(info, id)

    @strawberry.field(description="One incident by id, or null when it does not exist.")
    async def incident(self, info: Info[RequestContext, None], id: strawberry.ID) -> Incident | None:
        return await events.resolve_incident(info, id)

    @strawberry.field(description="Changes ordered by id, a page at a time.")
    async def changes(
        self,
        info: Info[RequestContext, None],
        filter: ChangeFilter | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> ChangeConnection:
        return await events.resolve_changes(info, filter, first, after)

    @strawberry.field(description="Incidents ordered by id, a page at a time.")
    async def incidents(
        self,
        info: Info[RequestContext, None],
        filter: IncidentFilter | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> IncidentConnection:
        return await events.resolve_incidents(info, filter, first, after)

    @strawberry.field(
        description=(
            "The CIs that most likely caused a symptom, best first, each with its score and evidence. "
            f"limit defaults to {events.DEFAULT_CULPRIT_LIMIT}; culpritAnalysis also gives the reason "
            "for an empty list."
        )
    )
    async def likely_culprits(
        self,
        info: Info[RequestContext, None],
        symptom: SymptomInput,
        limit: int | None = events.DEFAULT_CULPRIT_LIMIT,
    ) -> list[Culprit]:
        return await events.resolve_likely_culprits(info, symptom, limit)

    @strawberry.field(
        description=(
            "likelyCulprits with the changes to roll back first, the count of candidates and the reason "
            "when there is no culprit."
        )
    )
    async def culprit_analysis(
        self,
        info: Info[RequestContext, None],
        symptom: SymptomInput,
        limit: int | None = events.DEFAULT_CULPRIT_LIMIT,
    ) -> CulpritAnalysis:
        return await events.resolve_culprit_analysis(info, symptom, limit)

    @strawberry.field(
        description=(
            "Review a stored change (changeId) or a proposed one (proposed): its blast radius, collisions "
            "with other changes, past incidents caused by changes to its CIs, a risk rating and reviewers."
        )
    )
    async def change_review(
        self,
        info: Info[RequestContext, None],
        change_id: strawberry.ID | None = None,
        proposed: ChangeInput | None = None,
    ) -> ChangeReview:
        return await events.review(info, change_id, None if proposed is None else _record(proposed))

    @strawberry.field(description="One emergency-plan procedure by id, or null when it does not exist.")
    async def procedure(self, info: Info[RequestContext, None], id: strawberry.ID) -> Procedure | None:
        return await plan.resolve_procedure(info, id)

    @strawberry.field(description="Emergency-plan procedures in id order; filter.ciId keeps those that apply to a CI.")
    async def procedures(
        self, info: Info[RequestContext, None], filter: ProcedureFilter | None = None
    ) -> list[Procedure]:
        return await plan.resolve_procedures(info, filter)

    @strawberry.field(
        description=(
            "The emergency plan for a symptom, an incident (incidentId) or a failing CI (ciId), or for several "
            "of them together: whom to notify, what to check first, what to do by level, and the tooling notes."
        )
    )
    async def emergency_plan(
        self,
        info: Info[RequestContext, None],
        symptom: SymptomInput | None = None,
        incident_id: strawberry.ID | None = None,
        ci_id: strawberry.ID | None = None,
    ) -> EmergencyPlan:
        return await plan.resolve_emergency_plan(info, symptom, incident_id, ci_id)

    @strawberry.field(
        description=(
            "Plan upkeep: important CIs without a procedure, procedures not reviewed or drilled within the "
            "given days, links to CIs that are gone, and procedures that changes or incidents name but the "
            "plan lacks. asOf defaults to now."
        )
    )
    async def plan_gaps(
        self,
        info: Info[RequestContext, None],
        review_within_days: int = 365,
        drill_within_days: int = 365,
        min_criticality: str = "high",
        as_of: datetime | None = None,
    ) -> PlanGaps:
        return await plan.resolve_plan_gaps(info, review_within_days, drill_within_days, min_criticality, as_of)


@strawberry.type
class Mutation:
    @strawberry.mutation(name="upsertCIs", description="Create or update CIs; each input replaces the whole stored record.")
    async def upsert_cis(self, info: Info[RequestContext, None], cis: list[CIInput]) -> WriteResult:
        batch = batch_from_records([_record(ci) for ci in cis], [], "upsertCIs", section_prefix="")
        report = await _run_import(info, batch, keep_going=False)
        return report.result

    @strawberry.mutation(description="Create or update relationships between stored CIs.")
    async def upsert_relationships(
        self, info: Info[RequestContext, None], relationships: list[RelationshipInput]
    ) -> WriteResult:
        batch = batch_from_records([], [_record(r) for r in relationships], "upsertRelationships")
        report = await _run_import(info, batch, keep_going=False)
        return report.result

    @strawberry.mutation(description="Create or update changes; each input replaces the whole stored record.")
    async def upsert_changes(self, info: Info[RequestContext, None], changes: list[ChangeInput]) -> WriteResult:
        batch = batch_from_records([], [], "upsertChanges", changes=[_record(change) for change in changes])
        report = await _run_import(info, batch, keep_going=False)
        return report.result

    @strawberry.mutation(description="Create or update incidents; each input replaces the whole stored record.")
    async def upsert_incidents(self, info: Info[RequestContext, None], incidents: list[IncidentInput]) -> WriteResult:
        batch = batch_from_records([], [], "upsertIncidents", incidents=[_record(incident) for incident in incidents])
        report = await _run_import(info, batch, keep_going=False)
        return report.result

    @strawberry.mutation(
        description=(
            "Change some fields of a stored change; arguments left out or null keep their stored value. "
            "The merged record is validated as upsertChanges validates one."
        )
    )
    async def update_change(
        self,
        info: Info[RequestContext, None],
        id: strawberry.ID,
        title: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        risk: str | None = None,
        affected: list[strawberry.ID] | None = None,
        planned_start: datetime | None = None,
        planned_end: datetime | None = None,
        actual_start: datetime | None = None,
        actual_end: datetime | None = None,
        implementer: str | None = None,
        description: str | None = None,
        rollback_procedure: str | None = None,
        attributes: JSON | None = None,
    ) -> Change:
        stored = (await run_blocking(info.context.store.get_changes, [str(id)])).get(str(id))
        if stored is None:
            raise NotFoundError(f"change {str(id)!r} not found; create it with upsertChanges", field="id")
        updates = {
            "title": title,
            "kind": kind,
            "status": status,
            "risk": risk,
            "affected": affected,
            "planned_start": planned_start,
            "planned_end": planned_end,
            "actual_start": actual_start,
            "actual_end": actual_end,
            "implementer": implementer,
            "description": description,
            "rollback_procedure": rollback_procedure,
            "attributes": attributes,
        }
        record = {**change_to_record(stored), **{k: _record(v) for k, v in updates.items() if v is not None}}
        await _run_import(info, batch_from_records([], [], "updateChange", changes=[record]), keep_going=False)
        updated = (await run_blocking(info.context.store.get_changes, [str(id)]))[str(id)]
        return Change.from_model(updated)

    @strawberry.mutation(
        description=(
            "Change some fields of a stored incident; arguments left out or null keep their stored value. "
            "The merged record is validated as upsertIncidents validates one."
        )
    )
    async def update_incident(
        self,
        info: Info[RequestContext, None],
        id: strawberry.ID,
        title: str | None = None,
        severity: str | None = None,
        status: str | None = None,
        started_at: datetime | None = None,
        detected_at: datetime | None = None,
        resolved_at: datetime | None = None,
        impacted: list[strawberry.ID] | None = None,
        root_causes: list[strawberry.ID] | None = None,
        symptom_text: str | None = None,
        symptom_tags: list[str] | None = None,
        caused_by_change: strawberry.ID | None = None,
        resolved_with: str | None = None,
        attributes: JSON | None = None,
    ) -> Incident:
        stored = (await run_blocking(info.context.store.get_incidents, [str(id)])).get(str(id))
        if stored is None:
            raise NotFoundError(f"incident {str(id)!r} not found; create it with upsertIncidents", field="id")
        updates = {
            "title": title,
            "severity": severity,
            "status": status,
            "started_at": started_at,
            "detected_at": detected_at,
            "resolved_at": resolved_at,
            "impacted": impacted,
            "root_causes": root_causes,
            "symptom_text": symptom_text,
            "symptom_tags": symptom_tags,
            "caused_by_change": caused_by_change,
            "resolved_with": resolved_with,
            "attributes": attributes,
        }
        record = {**incident_to_record(stored), **{k: _record(v) for k, v in updates.items() if v is not None}}
        await _run_import(info, batch_from_records([], [], "updateIncident", incidents=[record]), keep_going=False)
        updated = (await run_blocking(info.context.store.get_incidents, [str(id)]))[str(id)]
        return Incident.from_model(updated)

    @strawberry.mutation(description="Create or update procedures; each input replaces the whole stored record.")
    async def upsert_procedures(
        self, info: Info[RequestContext, None], procedures: list[ProcedureInput]
    ) -> WriteResult:
        records = [_record(procedure) for procedure in procedures]
        batch = batch_from_records([], [], "upsertProcedures", procedures=records)
        report = await _run_import(info, batch, keep_going=False)
        return report.result

    @strawberry.mutation(description="Delete one procedure; returns whether it existed.")
    async def delete_procedure(self, info: Info[RequestContext, None], id: strawberry.ID) -> bool:
        return await run_blocking(info.context.store.delete_procedure, str(id))

    @strawberry.mutation(name="deleteCI", description="Delete a CI; with cascade, its relationships too.")
    async def delete_ci(
        self, info: Info[RequestContext, None], id: strawberry.ID, cascade: bool = False
    ) -> DeleteResult:
        result = await run_blocking(lambda: info.context.store.delete_ci(str(id), cascade=cascade))
        return DeleteResult(
            cis_deleted=result.cis_deleted,
            relationships_deleted=result.relationships_deleted,
            change_links_deleted=result.change_links_deleted,
            incident_links_deleted=result.incident_links_deleted,
        )

    @strawberry.mutation(description="Delete one relationship; returns whether it existed.")
    async def delete_relationship(
        self, info: Info[RequestContext, None], source: strawberry.ID, target: strawberry.ID, type: str
    ) -> bool:
        return await run_blocking(info.context.store.delete_relationship, str(source), str(target), type)

    @strawberry.mutation(
        description=(
            "Import a native bundle given as JSON ({cis: [...], relationships: [...], changes: [...], "
            "incidents: [...], procedures: [...]}). "
            "All or nothing unless keepGoing is true."
        )
    )
    async def import_bundle(
        self, info: Info[RequestContext, None], bundle: JSON, keep_going: bool = False
    ) -> ImportReport:
        return await _run_import(info, parse_bundle(bundle, "importBundle"), keep_going)

    @strawberry.mutation(
        description=(
            "Import the text of a source file in a supported format (bundle, kubernetes, runbook); "
            "filename only names the source in messages. mapping is the text of a runbook mapping file."
        )
    )
    async def import_file(
        self,
        info: Info[RequestContext, None],
        format: str,
        content: str,
        filename: str = "upload",
        keep_going: bool = False,
        mapping: str | None = None,
    ) -> ImportReport:
        if format not in importers.FORMATS:
            raise InvalidInputError(
                f"format {format!r} is unknown; use one of {', '.join(importers.FORMATS)}", field="format"
            )
        if mapping is not None and format != "runbook":
            raise InvalidInputError(
                f"mapping applies to the runbook format only, not to {format}; leave it out", field="mapping"
            )
        with tempfile.TemporaryDirectory(prefix="faultgraph-import-") as directory:
            # The file keeps the caller's name: a runbook's default id is its file name.
            path = Path(directory) / (Path(filename).name or "upload")
            if not path.suffix:
                path = path.with_suffix(".md" if format == "runbook" else ".yaml")
            path.write_text(content, encoding="utf-8")
            options = {}
            if mapping is not None:
                mapping_path = Path(directory) / "mapping.yaml"
                mapping_path.write_text(mapping, encoding="utf-8")
                options["mapping"] = mapping_path
            batch = importers.read_files(format, [path], **options)
        # Messages must name the caller's files, not the temporary copies.
        batch.rename_source(str(path), filename)
        if mapping is not None:
            batch.rename_source(str(mapping_path), "mapping")
        return await _run_import(info, batch, keep_going)


class ErrorCodes(SchemaExtension):
    """Give every error a code in ``extensions`` and hide internals of unexpected ones."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [_with_code(error) for error in errors]


def _with_code(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, FaultgraphError):
        extensions = {**(error.extensions or {}), **original.extensions()}
        message = original.message
    elif original is None:
        extensions = {"code": "INVALID_QUERY", **(error.extensions or {})}
        message = error.message
    elif error.path is None:
        # An error outside any resolver comes from the request itself: a
        # variable or literal that its type rejected, whatever exception the
        # type raised.
        extensions = {"code": "INVALID_INPUT"}
        message = error.message
        if "DateTime" in message:
            message += "; write times in ISO 8601 with an offset, such as 2026-03-02T09:05:00Z"
    else:
        reference = uuid.uuid4().hex[:12]
        logger.error("unexpected error %s at %s", reference, error.path, exc_info=original)
        extensions = {"code": "INTERNAL", "reference": reference}
        message = f"internal error; the server log has the details under reference {reference}"
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class FaultgraphSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # ErrorCodes already logged unexpected errors with their traceback. The
        # rest are the caller's mistakes, returned in the response, not logged in full.
        for error in errors:
            logger.info("GraphQL error at %s: %s", error.path or "(request)", error.message)


schema = FaultgraphSchema(query=Query, mutation=Mutation, extensions=[ErrorCodes])
