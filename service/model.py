"""Domain model: configuration items (CIs) and the typed relationships between them.

A relationship ``source -[TYPE]-> target`` reads as a sentence ("checkout
DEPENDS_ON payment", "payment RUNS_ON node-7", "payment PART_OF online-shop").
Each type states which end is the *provider* and which is the *consumer*:
impact flows from the provider to the consumer, so a failed provider hurts its
consumers and never the other way round.

==============  ========================================  ==========
type            meaning                                   provider
==============  ========================================  ==========
DEPENDS_ON      source needs target to work               target
RUNS_ON         source software runs on target platform   target
HOSTED_ON       source is hosted by target (VM, site)     target
CONNECTS_TO     source reaches target over the network    target
PART_OF         source is a component of target           source
==============  ========================================  ==========

``PART_OF`` is the one type whose provider is the source: a business service
or transaction is made of its parts and fails when they fail.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class RelationshipType(enum.StrEnum):
    DEPENDS_ON = "DEPENDS_ON"
    RUNS_ON = "RUNS_ON"
    HOSTED_ON = "HOSTED_ON"
    CONNECTS_TO = "CONNECTS_TO"
    PART_OF = "PART_OF"

    @property
    def provider_is_source(self) -> bool:
        """Whether impact flows from the source to the target of this type."""
        return self is RelationshipType.PART_OF


class Strength(enum.StrEnum):
    """How much a consumer needs a provider.

    A hard dependency passes the provider's impact on unchanged. A soft one
    weakens it by one level, so a soft dependency never makes its consumer
    DOWN.
    """

    HARD = "hard"
    SOFT = "soft"


class Criticality(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Status(enum.StrEnum):
    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    DOWN = "down"
    MAINTENANCE = "maintenance"
    PLANNED = "planned"
    RETIRED = "retired"
    UNKNOWN = "unknown"


# CI types that stand for what the business sells or does; blast radius reports
# which of them each impacted CI reaches.
BUSINESS_TYPES = frozenset({"business_service", "transaction"})


@dataclass(frozen=True)
class CI:
    """A configuration item."""

    id: str
    name: str
    type: str
    environment: str | None = None
    criticality: Criticality | None = None
    owner: str | None = None
    status: Status = Status.OPERATIONAL
    tags: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)
    source: str | None = None
    source_id: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def is_business(self) -> bool:
        return self.type in BUSINESS_TYPES


@dataclass(frozen=True)
class Redundancy:
    """Membership of a relationship in a redundancy group of its consumer.

    The consumer needs at least ``min_available`` providers of the group (or
    ``min_available_percent`` of them, rounded up) to stay up. Exactly one of
    the two is set.
    """

    group: str
    min_available: int | None = None
    min_available_percent: float | None = None

    def required(self, group_size: int) -> int:
        """Return how many of ``group_size`` providers must stay up."""
        if self.min_available is not None:
            return self.min_available
        assert self.min_available_percent is not None
        # A small tolerance keeps 3 x 33.33 % from rounding up to a fourth provider.
        return math.ceil(group_size * self.min_available_percent / 100.0 - 1e-9)


@dataclass(frozen=True)
class Relationship:
    """A typed edge ``source -[type]-> target`` between two CIs."""

    source: str
    target: str
    type: RelationshipType
    strength: Strength = Strength.HARD
    redundancy: Redundancy | None = None
    attributes: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """The identity of a relationship: at most one of each type between two CIs."""
        return (self.source, self.target, self.type.value)

    @property
    def id(self) -> str:
        return relationship_id(self.source, self.type.value, self.target)

    @property
    def provider(self) -> str:
        return self.source if self.type.provider_is_source else self.target

    @property
    def consumer(self) -> str:
        return self.target if self.type.provider_is_source else self.source


def relationship_id(source: str, type_: str, target: str) -> str:
    """Return the readable id of a relationship, e.g. ``cart-DEPENDS_ON->redis``."""
    return f"{source}-{type_}->{target}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str | datetime, *, field_name: str) -> datetime:
    """Parse an ISO 8601 time with an offset into an aware UTC datetime.

    Raises:
        ValueError: the value is not ISO 8601, or has no time zone offset.
    """
    if isinstance(value, datetime):
        parsed = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{field_name} {value!r} is not an ISO 8601 time; "
                "write it like 2026-03-01T14:05:00Z"
            ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(
            f"{field_name} {value!r} has no time zone; add an offset such as Z or +01:00"
        )
    return parsed.astimezone(UTC)


def format_time(value: datetime | None) -> str | None:
    """Format a time as ISO 8601 in UTC with a ``Z`` suffix."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
