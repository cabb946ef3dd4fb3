"""The shared loader: validate every record of an import, then write in batches.

All importers and the GraphQL mutations go through ``load``. Validation covers
what a single record cannot show: conflicting duplicate ids, relationships to
CIs that are neither in the import nor stored, self-relationships, and
redundancy groups whose members disagree. By default an import with any
problem writes nothing; with ``keep_going`` the valid records are written and
every rejected one is listed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from service.errors import ImportRejectedError, RecordProblem
from service.model import CI, Relationship
from service.records import ImportBatch, Origin
from service.store.base import GraphStore, ProgressCallback, WriteResult

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
    relationships, reference_problems = _check_references(relationships, known_ids)
    problems.extend(reference_problems)
    relationships, group_problems = _check_redundancy_groups(store, relationships)
    problems.extend(group_problems)

    if problems and not keep_going:
        raise ImportRejectedError(problems)
    for problem in problems:
        logger.warning("skipped record: %s", problem)

    result = store.write(
        [ci for ci, _ in cis],
        [relationship for relationship, _ in relationships],
        batch_size=batch_size,
        progress=progress,
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
        warnings=list(batch.warnings),
        skipped=dict(batch.skipped),
    )


def _deduplicate_cis(
    cis: list[tuple[CI, Origin]],
) -> tuple[list[tuple[CI, Origin]], list[RecordProblem]]:
    """Keep one of identical duplicates; reject every copy of an id given with different fields."""
    first: dict[str, tuple[CI, Origin]] = {}
    conflicting: set[str] = set()
    problems = []
    for ci, origin in cis:
        seen = first.get(ci.id)
        if seen is None:
            first[ci.id] = (ci, origin)
        elif seen[0] != ci:
            conflicting.add(ci.id)
            problems.append(
                RecordProblem(
                    origin.source,
                    origin.record,
                    "id",
                    f"CI id {ci.id!r} is also defined by {seen[1].source} record {seen[1].record} "
                    "with different fields; keep one definition or give each CI its own id",
                )
            )
    kept = [(ci, origin) for ci, origin in first.values() if ci.id not in conflicting]
    return kept, problems


def _deduplicate_relationships(
    relationships: list[tuple[Relationship, Origin]],
) -> tuple[list[tuple[Relationship, Origin]], list[RecordProblem]]:
    first: dict[tuple[str, str, str], tuple[Relationship, Origin]] = {}
    conflicting: set[tuple[str, str, str]] = set()
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
        seen = first.get(relationship.key)
        if seen is None:
            first[relationship.key] = (relationship, origin)
        elif seen[0] != relationship:
            conflicting.add(relationship.key)
            problems.append(
                RecordProblem(
                    origin.source,
                    origin.record,
                    "(record)",
                    f"relationship {relationship.id} is also defined by {seen[1].source} record "
                    f"{seen[1].record} with different fields; keep one definition",
                )
            )
    kept = [(r, origin) for r, origin in first.values() if r.key not in conflicting]
    return kept, problems


def _check_references(
    relationships: list[tuple[Relationship, Origin]], known_ids: set[str]
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
            problems.append(
                RecordProblem(
                    origin.source,
                    origin.record,
                    end,
                    f"CI {ci_id!r} not found in this import or the store; "
                    "add the CI to the import or correct the id",
                )
            )
        if not missing:
            kept.append((relationship, origin))
    return kept, problems


def _check_redundancy_groups(
    store: GraphStore, relationships: list[tuple[Relationship, Origin]]
) -> tuple[list[tuple[Relationship, Origin]], list[RecordProblem]]:
    """Reject group members whose minimum or strength disagrees with the rest of the group.

    A group is identified by its consumer and name. Its members in the import
    must agree with each other and with the members already stored.
    """
    members: dict[tuple[str, str], list[tuple[Relationship, Origin]]] = defaultdict(list)
    for relationship, origin in relationships:
        if relationship.redundancy is not None:
            members[(relationship.consumer, relationship.redundancy.group)].append((relationship, origin))
    if not members:
        return relationships, []

    imported_keys = {relationship.key for relationship, _ in relationships}
    stored: dict[tuple[str, str], list[Relationship]] = defaultdict(list)
    for relationship in store.redundancy_members(sorted({consumer for consumer, _ in members})):
        if relationship.key not in imported_keys:
            assert relationship.redundancy is not None
            stored[(relationship.consumer, relationship.redundancy.group)].append(relationship)

    rejected: set[tuple[str, str, str]] = set()
    problems = []
    for (consumer, group), group_members in members.items():
        reference, reference_origin = group_members[0]
        for relationship, origin in group_members[1:]:
            if relationship.redundancy != reference.redundancy or relationship.strength != reference.strength:
                rejected.add(relationship.key)
                problems.append(
                    RecordProblem(
                        origin.source,
                        origin.record,
                        "redundancy",
                        f"redundancy group {group!r} of {consumer!r} is given a different minimum or "
                        f"strength here than in record {reference_origin.record}; "
                        "give every member of a group the same minimum and strength",
                    )
                )
        for other in stored.get((consumer, group), []):
            if other.redundancy != reference.redundancy or other.strength != reference.strength:
                for relationship, origin in group_members:
                    rejected.add(relationship.key)
                    problems.append(
                        RecordProblem(
                            origin.source,
                            origin.record,
                            "redundancy",
                            f"redundancy group {group!r} of {consumer!r} is stored with a different "
                            f"minimum or strength on {other.id}; include every member of the group "
                            "in the same import when you change it",
                        )
                    )
                break
    kept = [(r, origin) for r, origin in relationships if r.key not in rejected]
    return kept, problems
