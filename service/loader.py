"""The shared loader: validate every record of an import, then write in batches.

All importers and the GraphQL mutations go through ``load``. Validation covers
what a single record cannot show: conflicting duplicate ids, relationships to
CIs that are neither in the import nor stored, self-relationships, and
redundancy groups whose members disagree. It also rejects changes and
incidents that name CIs, or a causing change, that are neither in the import
nor stored, and procedures that link to CIs that are neither in the import
nor stored. A procedure selector that matches no CI gives a warning.
By default
an import with any problem writes nothing; with ``keep_going`` the valid
records are written and every rejected one is listed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, fields
from typing import TypeVar

from service.errors import ImportRejectedError, RecordProblem
from service.model import CI, Change, Incident, Procedure, Relationship, Selector, selector_matches_attributes
from service.records import ImportBatch, Origin, paused_garbage_collection
from service.store.base import CIFilter, GraphStore, ProgressCallback, WriteResult

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """Outcome of an import: what was written, what was rejected and what the user must know."""

    result: WriteResult
    cis_read: int
    relationships_read: int
    rejected: list[RecordProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    changes_read: int = 0
    incidents_read: int = 0
    procedures_read: int = 0


@paused_garbage_collection()
def load(
    store: GraphStore,
    batch: ImportBatch,
    *,
    keep_going: bool = False,
    batch_size: int = 5000,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Validate the batch against itself and the store, then write it.

    Raises:
        ImportRejectedError: some record is invalid and ``keep_going`` is false;
            nothing was written.
    """
    cis, ci_problems = _deduplicate_cis(batch.cis)
    relationships, relationship_problems = _deduplicate_relationships(batch.relationships)
    problems = [*batch.problems, *ci_problems, *relationship_problems]

    known_ids = {ci.id for ci, _ in cis}
    referenced = {end for r, _ in relationships for end in (r.source, r.target)} - known_ids
    known_ids |= store.existing_ids(sorted(referenced))
    conflicting_ids = {ci.id for ci, _ in batch.cis} - {ci.id for ci, _ in cis}
    relationships, reference_problems = _check_references(relationships, known_ids, conflicting_ids)
    problems.extend(reference_problems)
    relationships, group_problems = _check_redundancy_groups(store, relationships)
    problems.extend(group_problems)
    changes, incidents, event_problems = _check_events(store, batch, known_ids, conflicting_ids)
    problems.extend(event_problems)
    procedures, procedure_problems = _check_procedures(store, batch, known_ids, conflicting_ids)
    problems.extend(procedure_problems)
    warnings = [*batch.warnings, *_reference_warnings(store, batch, procedures)]
    if procedures:
        warnings.extend(_selector_warnings(store, batch, procedures))

    if problems and not keep_going:
        raise ImportRejectedError(problems)
    # The report lists every problem; the log keeps them for a server's operator.
    for problem in problems:
        logger.debug("skipped record: %s", problem)

    result = store.write(
        [ci for ci, _ in cis],
        [relationship for relationship, _ in relationships],
        changes=[change for change, _ in changes],
        incidents=[incident for incident, _ in incidents],
        procedures=[procedure for procedure, _ in procedures],
        batch_size=batch_size,
        progress=progress,
    )
    if changes or incidents:
        logger.info(
            "imported %d changes (%d new, %d updated) and %d incidents (%d new, %d updated)",
            len(changes),
            result.changes_created,
            result.changes_updated,
            len(incidents),
            result.incidents_created,
            result.incidents_updated,
        )
    if procedures:
        logger.info(
            "imported %d procedures (%d new, %d updated)",
            len(procedures),
            result.procedures_created,
            result.procedures_updated,
        )
    logger.info(
        "imported %d CIs (%d new, %d updated) and %d relationships (%d new, %d updated); %d rejected",
        len(cis),
        result.cis_created,
        result.cis_updated,
        len(relationships),
        result.relationships_created,
        result.relationships_updated,
        len(problems),
    )
    return ImportReport(
        result=result,
        cis_read=len(batch.cis),
        relationships_read=len(batch.relationships),
        rejected=problems,
        warnings=warnings,
        skipped=dict(batch.skipped),
        changes_read=len(batch.changes),
        incidents_read=len(batch.incidents),
        procedures_read=len(batch.procedures),
    )


def _deduplicate_cis(
    cis: list[tuple[CI, Origin]],
) -> tuple[list[tuple[CI, Origin]], list[RecordProblem]]:
    """Keep one of identical duplicates; reject every copy of an id given with different fields."""
    copies: dict[str, list[tuple[CI, Origin]]] = defaultdict(list)
    for ci, origin in cis:
        if all(seen != ci for seen, _ in copies[ci.id]):
            copies[ci.id].append((ci, origin))

    kept = []
    problems = []
    for ci_id, distinct in copies.items():
        if len(distinct) == 1:
            kept.append(distinct[0])
            continue
        # Every distinct copy is rejected, so each one is listed with another copy it conflicts with.
        for position, (ci, origin) in enumerate(distinct):
            other, other_origin = distinct[1 if position == 0 else 0]
            differing = ", ".join(_differing_fields(ci, other))
            problems.append(
                RecordProblem(
                    origin.source,
                    origin.record,
                    "id",
                    f"CI id {ci_id!r} is also defined by {other_origin.source} record {other_origin.record} "
                    f"with a different {differing}; keep one definition or give each CI its own id",
                )
            )
    return kept, problems


def _deduplicate_relationships(
    relationships: list[tuple[Relationship, Origin]],
) -> tuple[list[tuple[Relationship, Origin]], list[RecordProblem]]:
    copies: dict[tuple[str, str, str], list[tuple[Relationship, Origin]]] = defaultdict(list)
    problems = []
    for relationship, origin in relationships:
        if relationship.source == relationship.target:
            problems.append(
                RecordProblem(
                    origin.source,
                    origin.record,
                    "target",
                    f"relationship from {relationship.source!r} to itself; "
                    "a CI cannot depend on itself, so remove the record or correct the target",
                )
            )
            continue
        distinct = copies[relationship.key]
        if all(seen != relationship for seen, _ in distinct):
            distinct.append((relationship, origin))

    kept = []
    for distinct in copies.values():
        if len(distinct) == 1:
            kept.append(distinct[0])
            continue
        for position, (relationship, origin) in enumerate(distinct):
            other, other_origin = distinct[1 if position == 0 else 0]
            differing = _differing_fields(relationship, other)
            problems.append(
                RecordProblem(
                    origin.source,
                    origin.record,
                    differing[0],
                    f"relationship {relationship.id} is also defined by {other_origin.source} record "
                    f"{other_origin.record} with a different {', '.join(differing)}; keep one definition",
                )
            )
    return kept, problems


def _differing_fields(
    record: CI | Relationship | Change | Incident | Procedure,
    other: CI | Relationship | Change | Incident | Procedure,
) -> list[str]:
    """Return the names of the fields in which two records with the same key differ."""
    return [
        item.name for item in fields(record) if getattr(record, item.name) != getattr(other, item.name)
    ]


def _check_references(
    relationships: list[tuple[Relationship, Origin]], known_ids: set[str], conflicting_ids: set[str]
) -> tuple[list[tuple[Relationship, Origin]], list[RecordProblem]]:
    kept = []
    problems = []
    for relationship, origin in relationships:
        missing = [
            (end, ci_id)
            for end, ci_id in (("source", relationship.source), ("target", relationship.target))
            if ci_id not in known_ids
        ]
        for end, ci_id in missing:
            if ci_id in conflicting_ids:
                message = (
                    f"CI {ci_id!r} is defined more than once with different fields in this import, "
                    "so it was rejected; keep one definition of it"
                )
            else:
                # The CI may also be in the import but rejected as invalid; its own problem is listed.
                message = (
                    f"CI {ci_id!r} not found among the valid CIs of this import or in the store; "
                    "add the CI, correct the id, or fix the CI's own record if it was rejected"
                )
            problems.append(RecordProblem(origin.source, origin.record, end, message))
        if not missing:
            kept.append((relationship, origin))
    return kept, problems


def _check_redundancy_groups(
    store: GraphStore, relationships: list[tuple[Relationship, Origin]]
) -> tuple[list[tuple[Relationship, Origin]], list[RecordProblem]]:
    """Reject group members whose minimum or strength disagrees with the rest of the group.

    A group is identified by its consumer and name. Its members in the import
    must agree with each other and with the members already stored. When they
    do not, every member of the group in the import is rejected, because
    writing only some of them would change the group's size and so its meaning.
    """
    members: dict[tuple[str, str], list[tuple[Relationship, Origin]]] = defaultdict(list)
    for relationship, origin in relationships:
        if relationship.redundancy is not None:
            members[(relationship.consumer, relationship.redundancy.group)].append((relationship, origin))
    if not members:
        return relationships, []

    stored_members = store.redundancy_members(sorted({consumer for consumer, _ in members}))
    imported_keys = {relationship.key for relationship, _ in relationships} if stored_members else set()
    stored: dict[tuple[str, str], list[Relationship]] = defaultdict(list)
    for relationship in stored_members:
        if relationship.key not in imported_keys:
            assert relationship.redundancy is not None
            stored[(relationship.consumer, relationship.redundancy.group)].append(relationship)

    rejected: set[tuple[str, str, str]] = set()
    problems = []
    for (consumer, group), group_members in members.items():
        reference, reference_origin = group_members[0]
        disagreeing = next(
            (
                (relationship, origin)
                for relationship, origin in group_members[1:]
                if not _same_group_terms(relationship, reference)
            ),
            None,
        )
        if disagreeing is not None:
            for relationship, origin in group_members:
                agrees = _same_group_terms(relationship, reference)
                other, other_origin = disagreeing if agrees else (reference, reference_origin)
                rejected.add(relationship.key)
                problems.append(
                    RecordProblem(
                        origin.source,
                        origin.record,
                        "redundancy",
                        f"redundancy group {group!r} of {consumer!r} is given {_group_terms(relationship)} "
                        f"here but {_group_terms(other)} in record {other_origin.record}; "
                        "give every member of a group the same minimum and strength",
                    )
                )
            continue
        for other in stored.get((consumer, group), []):
            if not _same_group_terms(other, reference):
                for relationship, origin in group_members:
                    rejected.add(relationship.key)
                    problems.append(
                        RecordProblem(
                            origin.source,
                            origin.record,
                            "redundancy",
                            f"redundancy group {group!r} of {consumer!r} is given {_group_terms(relationship)} "
                            f"here but is stored with {_group_terms(other)} on {other.id}; include every "
                            "member of the group in the same import when you change it",
                        )
                    )
                break
    if not rejected:
        return relationships, problems
    kept = [(r, origin) for r, origin in relationships if r.key not in rejected]
    return kept, problems


def _same_group_terms(relationship: Relationship, other: Relationship) -> bool:
    return relationship.redundancy == other.redundancy and relationship.strength == other.strength


def _group_terms(relationship: Relationship) -> str:
    """Describe the minimum and strength of a group member, e.g. ``min_available 2, hard``."""
    redundancy = relationship.redundancy
    assert redundancy is not None
    if redundancy.min_available is not None:
        minimum = f"min_available {redundancy.min_available}"
    else:
        minimum = f"min_available_percent {redundancy.min_available_percent:g}"
    return f"{minimum}, {relationship.strength.value}"


def _check_events(
    store: GraphStore, batch: ImportBatch, known_ids: set[str], conflicting_ids: set[str]
) -> tuple[list[tuple[Change, Origin]], list[tuple[Incident, Origin]], list[RecordProblem]]:
    """Reject changes and incidents with conflicting duplicates or references that will not exist.

    A change's ``affected`` CIs and an incident's ``impacted`` and
    ``root_causes`` CIs must be valid CIs of the import or stored. An
    incident's ``caused_by_change`` must be a valid change of the import or
    stored. ``known_ids`` are CI ids already known to exist; the rest are
    looked up in the store.
    """
    if not (batch.changes or batch.incidents):
        return [], [], []
    changes, problems = _deduplicate_events(batch.changes, "change")
    incidents, incident_problems = _deduplicate_events(batch.incidents, "incident")
    problems.extend(incident_problems)

    referenced = {ci_id for change, _ in changes for ci_id in change.affected}
    referenced |= {ci_id for incident, _ in incidents for ci_id in (*incident.impacted, *incident.root_causes)}
    unknown = referenced - known_ids
    known = known_ids | store.existing_ids(sorted(unknown)) if unknown else known_ids

    kept_changes = []
    for change, origin in changes:
        missing = [ci_id for ci_id in change.affected if ci_id not in known]
        if missing:
            problems.append(_unknown_cis_problem(origin, "affected", missing, conflicting_ids))
        else:
            kept_changes.append((change, origin))

    valid_change_ids = {change.id for change, _ in kept_changes}
    rejected_change_ids = {change.id for change, _ in batch.changes} - valid_change_ids
    causes = {incident.caused_by_change for incident, _ in incidents if incident.caused_by_change}
    causes -= valid_change_ids
    stored_change_ids = set(store.get_changes(sorted(causes))) if causes else set()

    kept_incidents = []
    for incident, origin in incidents:
        incident_problems = []
        for field_name, ci_ids in (("impacted", incident.impacted), ("root_causes", incident.root_causes)):
            missing = [ci_id for ci_id in ci_ids if ci_id not in known]
            if missing:
                incident_problems.append(_unknown_cis_problem(origin, field_name, missing, conflicting_ids))
        cause = incident.caused_by_change
        if cause and cause not in valid_change_ids and cause not in stored_change_ids:
            if cause in rejected_change_ids:
                message = (
                    f"change {cause!r} of this import was rejected, so the incident cannot name it; "
                    "fix the change's own record"
                )
            else:
                message = (
                    f"change {cause!r} not found among the changes of this import or in the store; "
                    "add the change, correct the id, or leave caused_by_change out"
                )
            incident_problems.append(RecordProblem(origin.source, origin.record, "caused_by_change", message))
        if incident_problems:
            problems.extend(incident_problems)
        else:
            kept_incidents.append((incident, origin))
    return kept_changes, kept_incidents, problems


_E = TypeVar("_E", Change, Incident, Procedure)


def _deduplicate_events(
    records: list[tuple[_E, Origin]], noun: str
) -> tuple[list[tuple[_E, Origin]], list[RecordProblem]]:
    """Keep one of identical duplicates; reject every copy of an id given with different fields."""
    copies: dict[str, list[tuple[_E, Origin]]] = defaultdict(list)
    for record, origin in records:
        if all(seen != record for seen, _ in copies[record.id]):
            copies[record.id].append((record, origin))

    kept = []
    problems = []
    for record_id, distinct in copies.items():
        if len(distinct) == 1:
            kept.append(distinct[0])
            continue
        for position, (record, origin) in enumerate(distinct):
            other, other_origin = distinct[1 if position == 0 else 0]
            differing = ", ".join(_differing_fields(record, other))
            problems.append(
                RecordProblem(
                    origin.source,
                    origin.record,
                    "id",
                    f"{noun} id {record_id!r} is also defined by {other_origin.source} record "
                    f"{other_origin.record} with a different {differing}; keep one definition "
                    f"or give each {noun} its own id",
                )
            )
    return kept, problems


def _unknown_cis_problem(
    origin: Origin, field_name: str, missing: list[str], conflicting_ids: set[str]
) -> RecordProblem:
    conflicting = [ci_id for ci_id in missing if ci_id in conflicting_ids]
    if conflicting:
        message = (
            f"CI(s) {', '.join(repr(ci_id) for ci_id in conflicting)} are defined more than once with "
            "different fields in this import, so they were rejected; keep one definition of each"
        )
    else:
        message = (
            f"CI(s) {', '.join(repr(ci_id) for ci_id in missing)} not found among the valid CIs of this "
            "import or in the store; add the CI, correct the id, or fix the CI's own record if it was rejected"
        )
    return RecordProblem(origin.source, origin.record, field_name, message)


def _check_procedures(
    store: GraphStore, batch: ImportBatch, known_ids: set[str], conflicting_ids: set[str]
) -> tuple[list[tuple[Procedure, Origin]], list[RecordProblem]]:
    """Reject procedures with conflicting duplicates or links to CIs that will not exist.

    The CIs in ``applies_to`` and the CI that a ``related_to`` selector names
    must be valid CIs of the import or stored.
    """
    if not batch.procedures:
        return [], []
    procedures, problems = _deduplicate_events(batch.procedures, "procedure")
    referenced = {ci_id for procedure, _ in procedures for ci_id in _linked_cis(procedure)}
    unknown = referenced - known_ids
    known = known_ids | store.existing_ids(sorted(unknown)) if unknown else known_ids

    kept = []
    for procedure, origin in procedures:
        procedure_problems = []
        missing = [ci_id for ci_id in procedure.applies_to if ci_id not in known]
        if missing:
            procedure_problems.append(_unknown_cis_problem(origin, "applies_to", missing, conflicting_ids))
        for index, selector in enumerate(procedure.selectors):
            if selector.related_to is not None and selector.related_to.ci not in known:
                field_name = f"selectors.{index}.related_to.ci"
                procedure_problems.append(
                    _unknown_cis_problem(origin, field_name, [selector.related_to.ci], conflicting_ids)
                )
        if procedure_problems:
            problems.extend(procedure_problems)
        else:
            kept.append((procedure, origin))
    return kept, problems


def _linked_cis(procedure: Procedure) -> list[str]:
    anchors = [s.related_to.ci for s in procedure.selectors if s.related_to is not None]
    return [*procedure.applies_to, *anchors]


def _reference_warnings(
    store: GraphStore, batch: ImportBatch, procedures: list[tuple[Procedure, Origin]]
) -> list[str]:
    """Warn about changes and incidents that name a procedure neither in the import nor stored.

    Such a reference is kept, because the plan may be imported later, but a
    responder would find no rollback procedure behind it.
    """
    named = [
        (origin, "rollback_procedure", change.rollback_procedure)
        for change, origin in batch.changes
        if change.rollback_procedure
    ]
    named += [
        (origin, "resolved_with", incident.resolved_with) for incident, origin in batch.incidents if incident.resolved_with
    ]
    if not named:
        return []
    imported = {procedure.id for procedure, _ in procedures}
    wanted = sorted({procedure_id for _, _, procedure_id in named} - imported)
    stored = set(store.get_procedures(wanted)) if wanted else set()
    return [
        f"{origin.source} record {origin.record}: {field_name} {procedure_id!r} is not a procedure of this "
        "import or of the store; import the procedure or correct the id"
        for origin, field_name, procedure_id in named
        if procedure_id not in imported and procedure_id not in stored
    ]


def _selector_warnings(
    store: GraphStore, batch: ImportBatch, procedures: list[tuple[Procedure, Origin]]
) -> list[str]:
    """Warn about each selector that matches no CI of the import or the store, and about unlinked procedures."""
    warnings = []
    # An importer may have warned about it already (the runbook importer does).
    reported = [warning for warning in batch.warnings if "applies to no CI" in warning]
    for procedure, origin in procedures:
        unlinked = not procedure.applies_to and not procedure.selectors
        if unlinked and not any(warning.startswith(origin.source) for warning in reported):
            warnings.append(
                f"{origin.source} record {origin.record}: procedure {procedure.id!r} applies to no CI, so no "
                "plan will show it; add applies_to or selectors"
            )
        for index, selector in enumerate(procedure.selectors):
            if not _selector_matches_any(store, batch, selector):
                warnings.append(
                    f"{origin.source} record {origin.record}: selectors.{index} ({selector.describe()}) of "
                    f"procedure {procedure.id!r} matches no CI; correct the selector or import the CIs it "
                    "should match"
                )
    return warnings


def _selector_matches_any(store: GraphStore, batch: ImportBatch, selector: Selector) -> bool:
    related = selector.related_to
    if related is not None:
        # A chain ends in a direct relationship to the CI, so checking direct ones is enough.
        sources = {
            r.source for r, _ in batch.relationships if r.target == related.ci and r.type == related.relationship
        }
        sources |= {
            r.source for r in store.relationships_of(related.ci, "incoming") if r.type == related.relationship
        }
        if not sources:
            return False
        if selector.specificity == 2:
            return True
        candidates = [ci for ci, _ in batch.cis if ci.id in sources]
        candidates += store.get_cis(sorted(sources - {ci.id for ci in candidates})).values()
        return any(selector_matches_attributes(selector, ci) for ci in candidates)

    if any(selector_matches_attributes(selector, ci) for ci, _ in batch.cis):
        return True
    ci_filter = CIFilter(
        type=selector.type, environment=selector.environment, tag=selector.tags[0] if selector.tags else None
    )
    after = None
    while True:
        page = store.list_cis(ci_filter, first=500, after=after)
        if any(selector_matches_attributes(selector, ci) for ci in page.items):
            return True
        if not page.has_next_page:
            return False
        after = page.end_cursor
