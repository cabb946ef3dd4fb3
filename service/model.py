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
        # Rounding the product to two decimals first reads 66.67 % of 3 as 2
        # providers, as its writer means, and not as 2.0001 rounded up to 3.
        return math.ceil(round(group_size * self.min_available_percent / 100.0, 2))


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


class ChangeKind(enum.StrEnum):
    DEPLOY = "deploy"
    CONFIG = "config"
    PATCH = "patch"
    SCALE = "scale"
    FEATURE_FLAG = "feature_flag"
    NETWORK = "network"
    DATABASE = "database"
    INFRASTRUCTURE = "infrastructure"
    OTHER = "other"


class ChangeStatus(enum.StrEnum):
    PLANNED = "planned"
    APPROVED = "approved"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"


class Risk(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Change:
    """A change to one or more CIs, planned or made.

    Times are aware UTC datetimes. ``affected`` lists the ids of the CIs the
    change touches; ``rollback_procedure`` is the id of the procedure that
    undoes it.
    """

    id: str
    title: str
    kind: ChangeKind
    status: ChangeStatus
    affected: tuple[str, ...]
    risk: Risk = Risk.MEDIUM
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    actual_start: datetime | None = None
    actual_end: datetime | None = None
    implementer: str | None = None
    description: str | None = None
    rollback_procedure: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)

    @property
    def start(self) -> datetime | None:
        """The actual start if known, else the planned one."""
        return self.actual_start or self.planned_start

    @property
    def end(self) -> datetime | None:
        """The actual end if known, else the planned one."""
        return self.actual_end or self.planned_end


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class IncidentStatus(enum.StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


@dataclass(frozen=True)
class Incident:
    """A past or ongoing incident, with the CIs it hurt and what caused it."""

    id: str
    title: str
    severity: Severity
    status: IncidentStatus
    started_at: datetime
    impacted: tuple[str, ...] = ()
    root_causes: tuple[str, ...] = ()
    detected_at: datetime | None = None
    resolved_at: datetime | None = None
    symptom_text: str | None = None
    symptom_tags: tuple[str, ...] = ()
    caused_by_change: str | None = None
    resolved_with: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)


class ProcedureLevel(enum.StrEnum):
    """The part of the emergency plan a procedure acts in, in the order a plan uses them.

    Responders notify first (communication), restore what customers and staff
    use (transaction, then service), then repair the system underneath.
    Tooling notes describe the tools the other procedures use.
    """

    COMMUNICATION = "communication"
    TRANSACTION = "transaction"
    SERVICE = "service"
    SYSTEM = "system"
    TOOLING = "tooling"


class ProcedureAction(enum.StrEnum):
    RESTART = "restart"
    ROLLBACK = "rollback"
    SCALE = "scale"
    ADJUST_PARAMETER = "adjust_parameter"
    SNAPSHOT_ANALYSIS = "snapshot_analysis"
    DISABLE_FEATURE = "disable_feature"
    FAILOVER = "failover"
    NOTIFY = "notify"
    DIAGNOSE = "diagnose"
    RESTORE = "restore"
    ESCALATE = "escalate"
    OTHER = "other"


@dataclass(frozen=True)
class Step:
    """One step of a procedure: what to do, with an optional short title."""

    text: str
    title: str | None = None


@dataclass(frozen=True)
class Contact:
    """A person or team to reach, with how to reach them (phone, e-mail, chat channel)."""

    name: str
    role: str | None = None
    reach: str | None = None


@dataclass(frozen=True)
class EscalationStep:
    """Whom to call when a procedure has not worked ``after_minutes`` after it started."""

    after_minutes: int
    contact: Contact


@dataclass(frozen=True)
class RelatedTo:
    """The relationship part of a selector: CIs with a ``relationship`` to the CI ``ci``.

    A CI matches when it is the source of a ``relationship`` whose target is
    ``ci`` ("every CI that RUNS_ON cluster-1"), or, when ``transitive`` is
    set, when it reaches ``ci`` through a chain of such relationships.
    """

    ci: str
    relationship: RelationshipType
    transitive: bool = False


@dataclass(frozen=True)
class Selector:
    """CIs that a procedure applies to without naming them; a CI must meet every condition given.

    ``tags`` must all be on the CI. At least one condition is set.
    """

    type: str | None = None
    environment: str | None = None
    tags: tuple[str, ...] = ()
    related_to: RelatedTo | None = None

    @property
    def specificity(self) -> int:
        """How narrowly the selector picks CIs: one per condition, two for a relationship."""
        return (
            (self.type is not None)
            + (self.environment is not None)
            + len(self.tags)
            + (2 if self.related_to is not None else 0)
        )

    def describe(self) -> str:
        """Return the selector in words, e.g. ``type database, environment production``."""
        parts = []
        if self.type is not None:
            parts.append(f"type {self.type}")
        if self.environment is not None:
            parts.append(f"environment {self.environment}")
        parts.extend(f"tag {tag}" for tag in self.tags)
        if self.related_to is not None:
            chain = " (directly or through others)" if self.related_to.transitive else ""
            parts.append(f"{self.related_to.relationship.value} {self.related_to.ci}{chain}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Procedure:
    """An emergency-plan entry: what to do, at which level, and whom it concerns.

    It applies to the CIs named in ``applies_to`` and to every CI that one of
    its ``selectors`` picks. ``expected_minutes`` is how long it usually takes.
    """

    id: str
    title: str
    level: ProcedureLevel
    action: ProcedureAction
    steps: tuple[Step, ...] = ()
    description: str | None = None
    expected_minutes: int | None = None
    risk: Risk | None = None
    owner: str | None = None
    contacts: tuple[Contact, ...] = ()
    escalation: tuple[EscalationStep, ...] = ()
    applies_to: tuple[str, ...] = ()
    selectors: tuple[Selector, ...] = ()
    last_reviewed: datetime | None = None
    last_drilled: datetime | None = None
    tags: tuple[str, ...] = ()
    source: str | None = None
    source_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)


def selector_matches_attributes(selector: Selector, ci: CI) -> bool:
    """Return whether the CI meets the selector's type, environment and tag conditions (not ``related_to``)."""
    return (
        (selector.type is None or ci.type == selector.type)
        and (selector.environment is None or ci.environment == selector.environment)
        and all(tag in ci.tags for tag in selector.tags)
    )
