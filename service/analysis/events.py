"""An index of changes and incidents, built once per snapshot for culprit and change-review queries.

``build_event_index`` sorts every change by start time per affected CI,
groups incidents by root-cause CI, by impacted CI and by causing change, and
turns each incident's title and symptom text into a TF-IDF vector. Building
takes O(c log c + i * w) for c changes and i incidents of w words each. A
query then reads only the entries of the CIs it looks at.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from service.model import Change, ChangeStatus, Incident, IncidentStatus

# Statuses of a change that was carried out, at least in part.
MADE_STATUSES = frozenset(
    {ChangeStatus.IN_PROGRESS, ChangeStatus.COMPLETED, ChangeStatus.FAILED, ChangeStatus.ROLLED_BACK}
)
# Statuses whose recorded end is when the work stopped.
ENDED_STATUSES = frozenset({ChangeStatus.COMPLETED, ChangeStatus.FAILED, ChangeStatus.ROLLED_BACK})
_CLOSED_INCIDENT = frozenset({IncidentStatus.RESOLVED, IncidentStatus.CLOSED})

_WORD = re.compile(r"[a-z0-9]+")
# Words too common in incident texts to tell two incidents apart.
_STOP_WORDS = frozenset(
    """
    a an and are as at be been but by for from had has have in into is it its of on or over
    that the their then there these this those to too was were when which while with after
    before during all any some than very not no can could would should will our we they them
    """.split()
)


def require_utc(value: datetime, field_name: str) -> datetime:
    """Return ``value`` in UTC.

    Raises:
        ValueError: ``value`` is naive; the message names ``field_name``.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{field_name} {value.isoformat()} has no time zone; pass an aware datetime, such as one in UTC"
        )
    return value.astimezone(UTC)


def tokenize(text: str) -> list[str]:
    """Split text into lower-case words, dropping stop words, numbers and words under three letters.

    A trailing plural ``s`` is removed, so "timeouts" and "timeout" match.
    """
    words = []
    for word in _WORD.findall(text.lower()):
        if len(word) < 3 or word in _STOP_WORDS or word.isdigit():
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.append(word)
    return words


@dataclass(frozen=True)
class ChangeTimes:
    """When a change started and stopped, in UTC; ``end`` is None while it runs or when unknown."""

    start: datetime | None
    end: datetime | None


def change_times(change: Change) -> ChangeTimes:
    """Return the start and the end of the work of a change.

    The start is the actual start, else the planned start. The end is the
    actual end, else the planned end of a change whose status shows that the
    work stopped (completed, failed, rolled back). A change in progress has none.
    """
    start = change.actual_start or change.planned_start
    end = change.actual_end
    if end is None and change.status in ENDED_STATUSES:
        end = change.planned_end
    return ChangeTimes(start, end)


def was_made(change: Change) -> bool:
    """Return whether the work of a change was carried out, at least in part."""
    if change.status is ChangeStatus.CANCELLED:
        return False
    return change.status in MADE_STATUSES or change.actual_start is not None


@dataclass(frozen=True)
class EventIndex:
    """Changes and incidents arranged for lookup by CI, by time and by text.

    ``changes_by_ci`` lists, per CI id, the changes that affect it in order of
    start time, and ``change_starts_by_ci`` their start times as POSIX seconds
    (changes without any start time are left out of both). ``longest_by_ci``
    is the longest duration in seconds of those changes, which bounds how far
    back a time search must look. The ``change_*`` arrays cover every change
    in ``changes``, NaN where a time is unknown: ``change_end`` is the actual
    end, else the planned end. ``incidents_by_changed_ci`` lists, per CI id,
    the incidents caused by a change that affects the CI (through
    ``caused_by_change``). ``incident_vectors`` contains each incident's
    TF-IDF vector, normalised to length 1.
    """

    changes: tuple[Change, ...]
    changes_by_id: dict[str, Change]
    changes_by_ci: dict[str, tuple[Change, ...]]
    change_starts_by_ci: dict[str, tuple[float, ...]]
    longest_by_ci: dict[str, float]
    change_start: np.ndarray
    change_end: np.ndarray
    incidents: tuple[Incident, ...]
    incidents_by_root_cause: dict[str, tuple[int, ...]]
    incidents_by_impacted: dict[str, tuple[int, ...]]
    incidents_by_change: dict[str, tuple[int, ...]]
    incidents_by_changed_ci: dict[str, tuple[int, ...]]
    incident_vectors: tuple[dict[str, float], ...]
    incident_tags: tuple[frozenset[str], ...]
    idf: dict[str, float]
    unseen_idf: float

    def changes_on(self, ci_id: str, started_before: datetime, not_ended_before: datetime) -> list[Change]:
        """Return the changes on a CI that started before one moment and had not ended before another.

        A change without an end counts as not ended. The result is in order of
        start time.
        """
        starts = self.change_starts_by_ci.get(ci_id)
        if not starts:
            return []
        changes = self.changes_by_ci[ci_id]
        upper = bisect_left(starts, started_before.timestamp())
        # A change that started before (earliest end - longest duration) ended too early.
        lower = bisect_left(starts, not_ended_before.timestamp() - self.longest_by_ci[ci_id])
        found = []
        for change in changes[lower:upper]:
            end = change_times(change).end
            if end is None or end >= not_ended_before:
                found.append(change)
        return found

    def text_vector(self, text: str) -> dict[str, float]:
        """Return the normalised TF-IDF vector of a text, with this index's document frequencies."""
        return _normalise(Counter(tokenize(text)), self.idf, self.unseen_idf)

    def similarity(self, position: int, tags: frozenset[str], vector: dict[str, float]) -> float:
        """Return how similar incident ``position`` is to a symptom, from 0 to 1.

        The similarity is the mean of the Jaccard index of the tag sets and the
        cosine of the TF-IDF vectors. When either side has no tags, or either
        has no text, only the other measure counts; with neither it is 0.
        """
        parts = []
        incident_tags = self.incident_tags[position]
        if tags and incident_tags:
            parts.append(len(tags & incident_tags) / len(tags | incident_tags))
        incident_vector = self.incident_vectors[position]
        if vector and incident_vector:
            small, large = sorted((vector, incident_vector), key=len)
            parts.append(sum(weight * large.get(word, 0.0) for word, weight in small.items()))
        if not parts:
            return 0.0
        return min(1.0, sum(parts) / len(parts))


def _normalise(counts: Counter[str], idf: dict[str, float], unseen_idf: float) -> dict[str, float]:
    weights = {word: count * idf.get(word, unseen_idf) for word, count in counts.items()}
    norm = math.sqrt(sum(weight * weight for weight in weights.values()))
    if norm == 0.0:
        return {}
    return {word: weight / norm for word, weight in weights.items()}


def _incident_text(incident: Incident) -> str:
    return f"{incident.title}\n{incident.symptom_text or ''}"


def _check_change_times(change: Change) -> None:
    for name in ("planned_start", "planned_end", "actual_start", "actual_end"):
        value = getattr(change, name)
        if value is not None:
            require_utc(value, f"change {change.id} {name}")


def _check_incident_times(incident: Incident) -> None:
    for name in ("started_at", "detected_at", "resolved_at"):
        value = getattr(incident, name)
        if value is not None:
            require_utc(value, f"incident {incident.id} {name}")


def build_event_index(changes: Iterable[Change], incidents: Iterable[Incident]) -> EventIndex:
    """Index changes and incidents for ``likely_culprits`` and ``review_change``.

    Args:
        changes: every known change; a later change with the id of an earlier
            one replaces it.
        incidents: every known incident; the same rule applies to ids.

    Raises:
        ValueError: a change or incident time is naive; the message names the
            record and the field.

    Example:
        >>> index = build_event_index(store_changes, store_incidents)
        >>> [c.id for c in index.changes_on("crm-db-primary", onset, onset - timedelta(hours=24))]
        ['CHG-1042']
    """
    by_id: dict[str, Change] = {}
    for change in changes:
        _check_change_times(change)
        by_id[change.id] = change
    change_list = tuple(by_id.values())

    per_ci: dict[str, list[tuple[float, str, Change]]] = defaultdict(list)
    longest: dict[str, float] = defaultdict(float)
    for change in change_list:
        times = change_times(change)
        if times.start is None:
            continue
        start = times.start.timestamp()
        duration = max(0.0, (times.end.timestamp() - start)) if times.end is not None else math.inf
        for ci_id in change.affected:
            per_ci[ci_id].append((start, change.id, change))
            longest[ci_id] = max(longest[ci_id], duration)
    changes_by_ci: dict[str, tuple[Change, ...]] = {}
    starts_by_ci: dict[str, tuple[float, ...]] = {}
    for ci_id, entries in per_ci.items():
        entries.sort(key=lambda entry: (entry[0], entry[1]))
        changes_by_ci[ci_id] = tuple(entry[2] for entry in entries)
        starts_by_ci[ci_id] = tuple(entry[0] for entry in entries)
    change_start = np.array([_epoch(c.actual_start or c.planned_start) for c in change_list], dtype=np.float64)
    change_end = np.array([_epoch(c.actual_end or c.planned_end) for c in change_list], dtype=np.float64)

    incident_by_id: dict[str, Incident] = {}
    for incident in incidents:
        _check_incident_times(incident)
        incident_by_id[incident.id] = incident
    incident_list = tuple(incident_by_id.values())
    by_root: dict[str, list[int]] = defaultdict(list)
    by_impacted: dict[str, list[int]] = defaultdict(list)
    by_change: dict[str, list[int]] = defaultdict(list)
    by_changed_ci: dict[str, list[int]] = defaultdict(list)
    for position, incident in enumerate(incident_list):
        for ci_id in incident.root_causes:
            by_root[ci_id].append(position)
        for ci_id in incident.impacted:
            by_impacted[ci_id].append(position)
        if incident.caused_by_change:
            by_change[incident.caused_by_change].append(position)
            cause = by_id.get(incident.caused_by_change)
            for ci_id in cause.affected if cause is not None else ():
                by_changed_ci[ci_id].append(position)

    documents = [Counter(tokenize(_incident_text(incident))) for incident in incident_list]
    document_frequency: Counter[str] = Counter()
    for document in documents:
        document_frequency.update(document.keys())
    count = len(documents)
    idf = {word: math.log((1 + count) / (1 + df)) + 1.0 for word, df in document_frequency.items()}
    unseen_idf = math.log(1 + count) + 1.0

    return EventIndex(
        changes=change_list,
        changes_by_id=by_id,
        changes_by_ci=changes_by_ci,
        change_starts_by_ci=starts_by_ci,
        longest_by_ci=dict(longest),
        change_start=change_start,
        change_end=change_end,
        incidents=incident_list,
        incidents_by_root_cause={ci_id: tuple(p) for ci_id, p in by_root.items()},
        incidents_by_impacted={ci_id: tuple(p) for ci_id, p in by_impacted.items()},
        incidents_by_change={change_id: tuple(p) for change_id, p in by_change.items()},
        incidents_by_changed_ci={ci_id: tuple(p) for ci_id, p in by_changed_ci.items()},
        incident_vectors=tuple(_normalise(document, idf, unseen_idf) for document in documents),
        incident_tags=tuple(frozenset(incident.symptom_tags) for incident in incident_list),
        idf=idf,
        unseen_idf=unseen_idf,
    )


def active_during(incident: Incident, start: datetime, end: datetime) -> bool:
    """Return whether an incident was unresolved at some moment between ``start`` and ``end``.

    An incident marked resolved or closed without a resolution time counts as
    resolved at every moment.
    """
    if incident.started_at > end:
        return False
    if incident.resolved_at is not None:
        return incident.resolved_at > start
    return incident.status not in _CLOSED_INCIDENT


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value is not None else math.nan


def describe_ids(ids: Sequence[str], limit: int = 5) -> str:
    """Join ids with commas, naming at most ``limit`` of them and counting the rest."""
    shown = ", ".join(ids[:limit])
    if len(ids) > limit:
        return f"{shown} and {len(ids) - limit} more"
    return shown


def format_minutes(minutes: float) -> str:
    """Format a duration in minutes as ``12 min`` or ``3 h 5 min``."""
    whole = int(round(minutes))
    if minutes < 1.0:
        return "less than a minute"
    if whole < 120:
        return f"{whole} min"
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"
