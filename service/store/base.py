"""The store contract that the embedded (SQLite) and the Neo4j store both fulfil."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

import numpy as np

from service.errors import InvalidInputError
from service.model import CI, Change, Incident, Procedure, Relationship, Status
from service.records import Origin, procedure_from_record, procedure_to_record

Direction = Literal["outgoing", "incoming"]
ProgressCallback = Callable[[int, int], None]
"""Called after each written batch with (records written so far, records in total)."""

STATUS_CODES: tuple[Status, ...] = tuple(Status)
"""CI statuses in code order, as ``TopologyData.node_status`` numbers them; 0 is operational."""


@dataclass(frozen=True)
class CIFilter:
    """Conditions that a listed CI must all meet; ``None`` means no condition.

    ``name`` and ``text`` match case-insensitive substrings: ``name`` of the
    name only, ``text`` of the id, name, owner or any tag. ``type``, ``tag``
    and ``environment`` match exactly.
    """

    name: str | None = None
    type: str | None = None
    tag: str | None = None
    environment: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class CIPage:
    items: list[CI]
    has_next_page: bool
    end_cursor: str | None
    total_count: int


@dataclass(frozen=True)
class ChangeFilter:
    """Conditions that a listed change must all meet; ``None`` means no condition.

    ``ci_ids`` keeps the changes that affect any of these CIs. The time
    conditions apply to the change's window, which runs from its actual start
    (else planned start) to its actual end (else planned end). ``since`` keeps
    the changes that had not ended before it, and a change without an end
    counts as not ended. ``until`` keeps those that started at or before it.
    A change without any start time meets neither. ``status`` and ``kind`` match
    exactly, and ``text`` is a case-insensitive substring of the id, title,
    description or implementer.
    """

    ci_ids: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    kind: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class IncidentFilter:
    """Conditions that a listed incident must all meet; ``None`` means no condition.

    ``ci_ids`` keeps the incidents that list any of these CIs as impacted or as
    a root cause. ``since`` and ``until`` bound the start time, both inclusive.
    ``status``, ``severity`` and ``caused_by_change`` (a change id) match
    exactly, and ``text`` is a case-insensitive substring of the id, title,
    symptom text or a symptom tag.
    """

    ci_ids: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    severity: str | None = None
    caused_by_change: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class ChangePage:
    items: list[Change]
    has_next_page: bool
    end_cursor: str | None
    total_count: int


@dataclass(frozen=True)
class IncidentPage:
    items: list[Incident]
    has_next_page: bool
    end_cursor: str | None
    total_count: int


@dataclass
class WriteResult:
    """Counts of the records a write created, updated or left unchanged (already stored as given)."""

    cis_created: int = 0
    cis_updated: int = 0
    cis_unchanged: int = 0
    relationships_created: int = 0
    relationships_updated: int = 0
    relationships_unchanged: int = 0
    changes_created: int = 0
    changes_updated: int = 0
    changes_unchanged: int = 0
    incidents_created: int = 0
    incidents_updated: int = 0
    incidents_unchanged: int = 0
    procedures_created: int = 0
    procedures_updated: int = 0
    procedures_unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.procedures_created
            + self.procedures_updated
            +
            self.cis_created
            + self.cis_updated
            + self.relationships_created
            + self.relationships_updated
            + self.changes_created
            + self.changes_updated
            + self.incidents_created
            + self.incidents_updated
        )


@dataclass(frozen=True)
class DeleteResult:
    """Counts of the records that deleting a CI removed. Changes and incidents stay, and only their links go."""

    cis_deleted: int
    relationships_deleted: int
    change_links_deleted: int = 0
    incident_links_deleted: int = 0


@dataclass
class TopologyData:
    """The whole topology in bulk form, read in one consistent snapshot of the store.

    Nodes are numbered 0..n-1 in the order of ``ids``. Edge arrays hold one
    entry per relationship as stored (source to target), not yet turned into
    impact direction. Validity bounds are POSIX seconds, NaN where unbounded.
    ``node_status`` contains each CI's status as its position in
    ``STATUS_CODES``. When it is left out, every CI counts as operational.
    """

    version: int
    ids: list[str]
    types: list[str]
    node_valid_from: np.ndarray
    node_valid_until: np.ndarray
    edge_source: np.ndarray
    edge_target: np.ndarray
    edge_type: list[str] | np.ndarray
    edge_hard: np.ndarray
    edge_group: list[str | None]
    edge_min_available: np.ndarray
    edge_min_percent: np.ndarray
    edge_valid_from: np.ndarray
    edge_valid_until: np.ndarray
    extra: dict[str, object] = field(default_factory=dict)
    node_status: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.node_status is None:
            self.node_status = np.zeros(len(self.ids), dtype=np.int8)


class GraphStore(Protocol):
    """Persistent storage of the CMDB graph.

    Every write that changes data increments ``version()``, so readers can tell
    when their topology snapshot is stale. Writing a record that is already
    stored exactly as given changes nothing, including the version.
    """

    def version(self) -> int: ...

    def check(self) -> None:
        """Raise ``StoreUnavailableError`` with the reason unless the store responds."""
        ...

    def get_cis(self, ids: Sequence[str]) -> dict[str, CI]: ...

    def list_cis(self, filter: CIFilter, first: int, after: str | None) -> CIPage: ...

    def relationships_of(self, ci_id: str, direction: Direction) -> list[Relationship]:
        """Return the relationships whose source (outgoing) or target (incoming) is the CI."""
        ...

    def existing_ids(self, ids: Sequence[str]) -> set[str]: ...

    def redundancy_members(self, consumer_ids: Sequence[str]) -> list[Relationship]:
        """Return the stored relationships that are in a redundancy group of these consumers."""
        ...

    def get_changes(self, ids: Sequence[str]) -> dict[str, Change]: ...

    def get_incidents(self, ids: Sequence[str]) -> dict[str, Incident]: ...

    def list_changes(self, filter: ChangeFilter, first: int, after: str | None) -> ChangePage:
        """Return a page of the changes that meet the filter, in id order."""
        ...

    def list_incidents(self, filter: IncidentFilter, first: int, after: str | None) -> IncidentPage:
        """Return a page of the incidents that meet the filter, in id order."""
        ...

    def write(
        self,
        cis: Sequence[CI],
        relationships: Sequence[Relationship],
        *,
        changes: Sequence[Change] = (),
        incidents: Sequence[Incident] = (),
        procedures: Sequence[Procedure] = (),
        batch_size: int = 5000,
        progress: ProgressCallback | None = None,
    ) -> WriteResult:
        """Upsert CIs, relationships, changes, incidents and procedures, in that order.

        Every CI that a relationship, change or incident names, and the change
        that an incident's ``caused_by_change`` names, must exist once the
        records before it are written. A change or incident is stored with its
        links to CIs and counts as updated when a field or a link differs.
        A procedure is stored whole, with the CI ids it names as they are:
        the loader checks them, and a link that outlives its CI is what the
        plan-gaps report finds.
        """
        ...

    def delete_ci(self, ci_id: str, *, cascade: bool) -> DeleteResult:
        """Delete a CI. A CI with relationships or with links from changes or incidents needs ``cascade``.

        With ``cascade`` the relationships and links go, and the changes and
        incidents stay without the link to this CI.
        """
        ...

    def delete_relationship(self, source: str, target: str, type_: str) -> bool: ...

    def get_procedures(self, ids: Sequence[str]) -> dict[str, Procedure]: ...

    def load_procedures(self) -> tuple[int, list[Procedure]]:
        """Return the version and every procedure in id order, read in one transaction."""
        ...

    def delete_procedure(self, procedure_id: str) -> bool:
        """Delete a procedure; return False when none has this id."""
        ...

    def load_topology(self) -> TopologyData: ...

    def load_events(self) -> tuple[int, list[Change], list[Incident]]:
        """Return the version and every change and incident, read in one transaction."""
        ...

    def close(self) -> None: ...


def encode_cursor(ci_id: str) -> str:
    return base64.urlsafe_b64encode(ci_id.encode("utf-8")).decode("ascii")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidInputError(
            f"cursor {cursor!r} is invalid; pass the endCursor of a previous page",
            field="after",
        ) from None


def search_text(ci: CI) -> str:
    """Return the lower-case text that the ``text`` filter searches, the same in every store."""
    return "\n".join([ci.id, ci.name, ci.owner or "", *ci.tags]).lower()


def validate_page_size(first: int, maximum: int = 1000, noun: str = "CIs") -> None:
    if first < 0 or first > maximum:
        raise InvalidInputError(
            f"first={first} is out of range; request between 0 and {maximum} {noun} per page",
            field="first",
        )


def event_time_text(value: datetime) -> str:
    """Format a change or incident time as fixed-width UTC text, e.g. ``2026-03-02T08:30:00.000000Z``.

    Both stores keep these times in this form, so comparing the texts
    compares the times, and ``parse_time`` reads them back exactly.
    """
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def change_window_texts(change: Change) -> tuple[str | None, str | None]:
    """Return the start and end of a change's window as ``event_time_text``, None where unknown."""
    start = change.actual_start or change.planned_start
    end = change.actual_end or change.planned_end
    return (
        None if start is None else event_time_text(start),
        None if end is None else event_time_text(end),
    )


def change_search_text(change: Change) -> str:
    """Return the lower-case text that the change ``text`` filter searches, the same in every store."""
    return "\n".join([change.id, change.title, change.description or "", change.implementer or ""]).lower()


def incident_search_text(incident: Incident) -> str:
    """Return the lower-case text that the incident ``text`` filter searches, the same in every store."""
    return "\n".join([incident.id, incident.title, incident.symptom_text or "", *incident.symptom_tags]).lower()


def delete_conflict_message(ci_id: str, relationships: int, change_links: int, incident_links: int) -> str:
    """Return the message of the ``ConflictError`` for deleting a CI without cascade, the same in every store."""
    if not (change_links or incident_links):
        return (
            f"CI {ci_id!r} has {relationships} relationship(s); delete them first "
            "or pass cascade to delete them with the CI"
        )
    return (
        f"CI {ci_id!r} has {relationships} relationship(s) and is named by {change_links} change link(s) "
        f"and {incident_links} incident link(s); pass cascade to delete the relationships and links "
        "with the CI, and the changes and incidents stay without their link to it"
    )


def procedure_document(procedure: Procedure) -> str:
    """Return the JSON text that both stores keep for a procedure; equal procedures give equal text."""
    return json.dumps(procedure_to_record(procedure), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def procedure_from_document(document: str) -> Procedure:
    procedure, problems = procedure_from_record(json.loads(document), Origin("store", "procedure"))
    if procedure is None:
        raise ValueError(f"stored procedure cannot be read back: {problems}")
    return procedure


def plan_procedure_writes(
    procedures: Sequence[Procedure], stored: dict[str, str], result: WriteResult
) -> dict[str, str]:
    """Count the procedures that a write creates, updates or leaves unchanged, in order.

    ``stored`` maps the ids already stored to their documents. A procedure
    given twice counts again against its earlier copy, as the records of
    every other kind do. Returns the documents to write, by id.
    """
    current = dict(stored)
    dirty: dict[str, str] = {}
    for procedure in procedures:
        document = procedure_document(procedure)
        previous = current.get(procedure.id)
        if previous is None:
            result.procedures_created += 1
        elif previous != document:
            result.procedures_updated += 1
        else:
            result.procedures_unchanged += 1
            continue
        current[procedure.id] = document
        dirty[procedure.id] = document
    return dirty
