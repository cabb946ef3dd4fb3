"""The store contract that the embedded (SQLite) and the Neo4j store both fulfil."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from service.errors import InvalidInputError
from service.model import CI, Relationship

Direction = Literal["outgoing", "incoming"]
ProgressCallback = Callable[[int, int], None]
"""Called after each written batch with (records written so far, records in total)."""


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


@dataclass
class WriteResult:
    """Counts of the records a write created, updated or left unchanged (already stored as given)."""

    cis_created: int = 0
    cis_updated: int = 0
    cis_unchanged: int = 0
    relationships_created: int = 0
    relationships_updated: int = 0
    relationships_unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.cis_created + self.cis_updated + self.relationships_created + self.relationships_updated
        )


@dataclass(frozen=True)
class DeleteResult:
    cis_deleted: int
    relationships_deleted: int


@dataclass
class TopologyData:
    """The whole topology in bulk form, read in one consistent snapshot of the store.

    Nodes are numbered 0..n-1 in the order of ``ids``. Edge arrays hold one
    entry per relationship as stored (source to target), not yet turned into
    impact direction. Validity bounds are POSIX seconds, NaN where unbounded.
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

    def write(
        self,
        cis: Sequence[CI],
        relationships: Sequence[Relationship],
        *,
        batch_size: int = 5000,
        progress: ProgressCallback | None = None,
    ) -> WriteResult:
        """Upsert CIs, then relationships, whose endpoints must exist once the CIs are written."""
        ...

    def delete_ci(self, ci_id: str, *, cascade: bool) -> DeleteResult: ...

    def delete_relationship(self, source: str, target: str, type_: str) -> bool: ...

    def load_topology(self) -> TopologyData: ...

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


def validate_page_size(first: int, maximum: int = 1000) -> None:
    if first < 0 or first > maximum:
        raise InvalidInputError(
            f"first={first} is out of range; request between 0 and {maximum} CIs per page",
            field="first",
        )
