"""Conversion of plain records (bundle entries, mutation inputs) into model objects.

Every record is checked against the JSON Schema in ``schema/bundle.schema.json``
before it becomes a model object. A compiled validator checks the common, valid
case quickly; only a record that fails is checked again by ``jsonschema`` to
list every problem with the field it concerns.
"""

from __future__ import annotations

import gc
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema

from service.errors import RecordProblem
from service.model import (
    CI,
    Change,
    ChangeKind,
    ChangeStatus,
    Criticality,
    Contact,
    EscalationStep,
    Incident,
    IncidentStatus,
    Procedure,
    ProcedureAction,
    ProcedureLevel,
    Redundancy,
    RelatedTo,
    Relationship,
    RelationshipType,
    Risk,
    Selector,
    Severity,
    Status,
    Step,
    Strength,
    format_time,
    parse_time,
)

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "bundle.schema.json"


@dataclass(frozen=True)
class Origin:
    """Where a record came from, for error messages: a file (or API call) and a position."""

    source: str
    record: str


@dataclass
class ImportBatch:
    """Model records produced by one importer run, with their origins.

    ``problems`` are records the importer could not turn into model objects.
    ``warnings`` are facts the user must see but that do not stop the import,
    such as a reference to a Service that the manifests do not define.
    """

    cis: list[tuple[CI, Origin]] = field(default_factory=list)
    relationships: list[tuple[Relationship, Origin]] = field(default_factory=list)
    changes: list[tuple[Change, Origin]] = field(default_factory=list)
    incidents: list[tuple[Incident, Origin]] = field(default_factory=list)
    procedures: list[tuple[Procedure, Origin]] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def rename_source(self, old: str, new: str) -> None:
        """Name the source ``new`` wherever a record, problem or warning names ``old``."""

        def renamed(origin: Origin) -> Origin:
            return Origin(new, origin.record) if origin.source == old else origin

        self.cis = [(ci, renamed(origin)) for ci, origin in self.cis]
        self.relationships = [(r, renamed(origin)) for r, origin in self.relationships]
        self.changes = [(change, renamed(origin)) for change, origin in self.changes]
        self.incidents = [(incident, renamed(origin)) for incident, origin in self.incidents]
        self.procedures = [(procedure, renamed(origin)) for procedure, origin in self.procedures]
        self.problems = [
            RecordProblem(new, p.record, p.field, p.message) if p.source == old else p for p in self.problems
        ]
        self.warnings = [warning.replace(old, new) for warning in self.warnings]

    def extend(self, other: ImportBatch) -> None:
        self.cis.extend(other.cis)
        self.relationships.extend(other.relationships)
        self.changes.extend(other.changes)
        self.incidents.extend(other.incidents)
        self.procedures.extend(other.procedures)
        self.problems.extend(other.problems)
        self.warnings.extend(other.warnings)
        for kind, count in other.skipped.items():
            self.skipped[kind] = self.skipped.get(kind, 0) + count


_gc_pause_lock = threading.Lock()
_gc_pause_depth = 0
_gc_was_enabled = False


@contextmanager
def paused_garbage_collection() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while a bulk import builds its records.

    The collector makes full passes over every tracked object as their number
    grows, so importing a million relationships with it on took about 45 % more
    CPU time (measured with ``bench/bench_blast_radius.py``). Records do
    not form reference cycles, so the pause leaks nothing, and cycles that
    other threads create meanwhile are collected when the last pause ends.
    Nested and concurrent pauses are counted. Usable as a decorator.
    """
    global _gc_pause_depth, _gc_was_enabled
    with _gc_pause_lock:
        if _gc_pause_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pause_depth += 1
    try:
        yield
    finally:
        with _gc_pause_lock:
            _gc_pause_depth -= 1
            if _gc_pause_depth == 0 and _gc_was_enabled:
                gc.enable()


@cache
def bundle_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _definition(name: str) -> dict[str, Any]:
    schema = bundle_schema()
    return {"$defs": schema["$defs"], **schema["$defs"][name]}


@cache
def _fast_validator(name: str) -> Any:
    return fastjsonschema.compile(_definition(name))


@cache
def _detailed_validator(name: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(_definition(name))


def _schema_problems(name: str, record: Any, origin: Origin) -> list[RecordProblem]:
    try:
        _fast_validator(name)(record)
        return []
    except fastjsonschema.JsonSchemaException:
        pass

    problems = []
    errors = sorted(_detailed_validator(name).iter_errors(record), key=lambda e: list(e.path))
    for error in errors:
        field_name = ".".join(str(part) for part in error.absolute_path) or _missing_field(error)
        problems.append(RecordProblem(origin.source, origin.record, field_name, _explain(error)))
    return problems


def _missing_field(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        # The message reads "'id' is a required property".
        return str(error.message).split("'")[1] if "'" in error.message else "(record)"
    if error.validator == "additionalProperties":
        return "(record)"
    return "(record)"


def _explain(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return f"{error.message}; add it"
    if error.validator == "additionalProperties":
        return f"{error.message}; remove it or check its spelling"
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value if v is not None)
        return f"{error.instance!r} is not allowed; use one of {allowed}"
    if error.validator == "pattern" and error.absolute_path and error.absolute_path[-1] == "type":
        return f"{error.instance!r} is not a valid CI type; use snake_case such as 'database'"
    if error.validator == "pattern":
        return (
            f"{error.instance!r} is not a valid identifier; "
            "use a non-empty string without control characters or surrounding spaces"
        )
    if error.validator == "oneOf" and "steps" in error.absolute_path:
        return "a step is a non-empty text, or an object with a non-empty 'text' and an optional 'title'"
    if error.validator == "oneOf" and isinstance(error.instance, Mapping):
        return "set exactly one of 'min_available' and 'min_available_percent'"
    if error.validator == "minProperties" and "selectors" in error.absolute_path:
        return "a selector needs at least one of 'type', 'environment', 'tags' and 'related_to'"
    return error.message


def _parse_times(
    record: Mapping[str, Any], origin: Origin, names: tuple[str, ...]
) -> tuple[dict[str, Any], list[RecordProblem]]:
    values: dict[str, Any] = {}
    problems = []
    for name in names:
        raw = record.get(name)
        if raw is None:
            values[name] = None
            continue
        try:
            values[name] = parse_time(raw, field_name=name)
        except ValueError as exc:
            problems.append(RecordProblem(origin.source, origin.record, name, str(exc)))
    return values, problems


def _parse_days(
    record: Mapping[str, Any], origin: Origin, names: tuple[str, ...]
) -> tuple[dict[str, Any], list[RecordProblem]]:
    """Parse times that may also be written as a plain day, such as a review date ``2026-03-01``.

    A plain day means the start of that day in UTC.
    """
    day_values: dict[str, Any] = {}
    day_problems: list[RecordProblem] = []
    for name in names:
        raw = record.get(name)
        if isinstance(raw, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw.strip()):
            try:
                day_values[name] = datetime.combine(date.fromisoformat(raw.strip()), time(), UTC)
            except ValueError as exc:
                day_problems.append(
                    RecordProblem(
                        origin.source,
                        origin.record,
                        name,
                        f"{name} {raw!r} is not a real day ({exc}); write a day such as 2026-03-01 "
                        "or a time with an offset",
                    )
                )
    checked = {problem.field for problem in day_problems}
    values, problems = _parse_times(
        record, origin, tuple(name for name in names if name not in day_values and name not in checked)
    )
    values.update(day_values)
    return values, [*day_problems, *problems]


def _check_order(
    record: Mapping[str, Any], origin: Origin, values: Mapping[str, Any], start: str, end: str
) -> list[RecordProblem]:
    """Return a problem when the time ``end`` is before the time ``start``."""
    if values.get(start) is None or values.get(end) is None or values[end] >= values[start]:
        return []
    return [
        RecordProblem(
            origin.source,
            origin.record,
            end,
            f"{end} {record[end]!r} is before {start} {record[start]!r}; swap them or correct one",
        )
    ]


def _times(record: Mapping[str, Any], origin: Origin) -> tuple[dict[str, Any], list[RecordProblem]]:
    values: dict[str, Any] = {}
    problems = []
    for name in ("valid_from", "valid_until"):
        raw = record.get(name)
        if raw is None:
            values[name] = None
            continue
        try:
            values[name] = parse_time(raw, field_name=name)
        except ValueError as exc:
            problems.append(RecordProblem(origin.source, origin.record, name, str(exc)))
    start, end = values.get("valid_from"), values.get("valid_until")
    if start is not None and end is not None and end <= start:
        problems.append(
            RecordProblem(
                origin.source,
                origin.record,
                "valid_until",
                f"valid_until {record['valid_until']!r} is not after valid_from "
                f"{record['valid_from']!r}; swap them or correct one",
            )
        )
    return values, problems


def ci_from_record(record: Any, origin: Origin) -> tuple[CI | None, list[RecordProblem]]:
    """Validate one CI record and build the CI, or return the problems found."""
    problems = _schema_problems("ci", record, origin)
    if problems:
        return None, problems
    times, problems = _times(record, origin)
    if problems:
        return None, problems

    criticality = record.get("criticality")
    ci = CI(
        id=record["id"],
        name=record.get("name") or record["id"],
        type=record["type"],
        environment=record.get("environment"),
        criticality=Criticality(criticality) if criticality else None,
        owner=record.get("owner"),
        status=Status(record.get("status", "operational")),
        tags=tuple(record.get("tags", ())),
        attributes=dict(record.get("attributes", {})),
        source=record.get("source"),
        source_id=record.get("source_id"),
        valid_from=times["valid_from"],
        valid_until=times["valid_until"],
    )
    return ci, []


def relationship_from_record(
    record: Any, origin: Origin
) -> tuple[Relationship | None, list[RecordProblem]]:
    """Validate one relationship record and build the relationship, or return the problems."""
    problems = _schema_problems("relationship", record, origin)
    if problems:
        return None, problems
    times, problems = _times(record, origin)
    if problems:
        return None, problems

    redundancy = None
    if "redundancy" in record:
        spec = record["redundancy"]
        redundancy = Redundancy(
            group=spec["group"],
            min_available=spec.get("min_available"),
            min_available_percent=spec.get("min_available_percent"),
        )
    relationship = Relationship(
        source=record["source"],
        target=record["target"],
        type=RelationshipType(record["type"]),
        strength=Strength(record.get("strength", "hard")),
        redundancy=redundancy,
        attributes=dict(record.get("attributes", {})),
        valid_from=times["valid_from"],
        valid_until=times["valid_until"],
    )
    return relationship, []


def _describe(index: int, record: Any, key: str) -> str:
    if isinstance(record, Mapping) and isinstance(record.get(key), str):
        return f"#{index} (id '{record[key]}')"
    return f"#{index}"


def _describe_relationship(index: int, record: Any) -> str:
    if isinstance(record, Mapping):
        source, target = record.get("source"), record.get("target")
        if isinstance(source, str) and isinstance(target, str):
            return f"#{index} ({source} -{record.get('type', '?')}-> {target})"
    return f"#{index}"


def change_from_record(record: Any, origin: Origin) -> tuple[Change | None, list[RecordProblem]]:
    """Validate one change record and build the Change, or return the problems found."""
    problems = _schema_problems("change", record, origin)
    if problems:
        return None, problems
    names = ("planned_start", "planned_end", "actual_start", "actual_end")
    times, problems = _parse_times(record, origin, names)
    if not problems:
        problems = _check_order(record, origin, times, "planned_start", "planned_end")
        problems += _check_order(record, origin, times, "actual_start", "actual_end")
    if problems:
        return None, problems

    change = Change(
        id=record["id"],
        title=record["title"],
        kind=ChangeKind(record["kind"]),
        status=ChangeStatus(record["status"]),
        affected=tuple(record["affected"]),
        risk=Risk(record.get("risk", "medium")),
        planned_start=times["planned_start"],
        planned_end=times["planned_end"],
        actual_start=times["actual_start"],
        actual_end=times["actual_end"],
        implementer=record.get("implementer"),
        description=record.get("description"),
        rollback_procedure=record.get("rollback_procedure"),
        attributes=dict(record.get("attributes", {})),
    )
    return change, []


def incident_from_record(record: Any, origin: Origin) -> tuple[Incident | None, list[RecordProblem]]:
    """Validate one incident record and build the Incident, or return the problems found."""
    problems = _schema_problems("incident", record, origin)
    if problems:
        return None, problems
    times, problems = _parse_times(record, origin, ("started_at", "detected_at", "resolved_at"))
    if not problems:
        problems = _check_order(record, origin, times, "started_at", "detected_at")
        problems += _check_order(record, origin, times, "started_at", "resolved_at")
    if problems:
        return None, problems

    incident = Incident(
        id=record["id"],
        title=record["title"],
        severity=Severity(record["severity"]),
        status=IncidentStatus(record["status"]),
        started_at=times["started_at"],
        detected_at=times["detected_at"],
        resolved_at=times["resolved_at"],
        impacted=tuple(record.get("impacted", ())),
        root_causes=tuple(record.get("root_causes", ())),
        symptom_text=record.get("symptom_text"),
        symptom_tags=tuple(record.get("symptom_tags", ())),
        caused_by_change=record.get("caused_by_change"),
        resolved_with=record.get("resolved_with"),
        attributes=dict(record.get("attributes", {})),
    )
    return incident, []


def _contact(record: Mapping[str, Any]) -> Contact:
    return Contact(name=record["name"], role=record.get("role"), reach=record.get("reach"))


def _selector(record: Mapping[str, Any]) -> Selector:
    related = record.get("related_to")
    return Selector(
        type=record.get("type"),
        environment=record.get("environment"),
        tags=tuple(record.get("tags", ())),
        related_to=None
        if related is None
        else RelatedTo(
            ci=related["ci"],
            relationship=RelationshipType(related["relationship"]),
            transitive=bool(related.get("transitive", False)),
        ),
    )


def procedure_from_record(record: Any, origin: Origin) -> tuple[Procedure | None, list[RecordProblem]]:
    """Validate one procedure record and build the Procedure, or return the problems found."""
    problems = _schema_problems("procedure", record, origin)
    if problems:
        return None, problems
    times, problems = _parse_days(record, origin, ("last_reviewed", "last_drilled"))
    if problems:
        return None, problems

    steps = tuple(
        Step(text=step) if isinstance(step, str) else Step(text=step["text"], title=step.get("title"))
        for step in record.get("steps", ())
    )
    risk = record.get("risk")
    procedure = Procedure(
        id=record["id"],
        title=record["title"],
        level=ProcedureLevel(record["level"]),
        action=ProcedureAction(record["action"]),
        steps=steps,
        description=record.get("description"),
        expected_minutes=record.get("expected_minutes"),
        risk=Risk(risk) if risk else None,
        owner=record.get("owner"),
        contacts=tuple(_contact(contact) for contact in record.get("contacts", ())),
        escalation=tuple(
            EscalationStep(after_minutes=step["after_minutes"], contact=_contact(step["contact"]))
            for step in record.get("escalation", ())
        ),
        applies_to=tuple(record.get("applies_to", ())),
        selectors=tuple(_selector(selector) for selector in record.get("selectors", ())),
        last_reviewed=times["last_reviewed"],
        last_drilled=times["last_drilled"],
        tags=tuple(record.get("tags", ())),
        source=record.get("source"),
        source_id=record.get("source_id"),
        attributes=dict(record.get("attributes", {})),
    )
    return procedure, []


@paused_garbage_collection()
def batch_from_records(
    cis: Iterable[Any],
    relationships: Iterable[Any],
    source: str,
    *,
    changes: Iterable[Any] = (),
    incidents: Iterable[Any] = (),
    procedures: Iterable[Any] = (),
    section_prefix: str = "",
) -> ImportBatch:
    """Turn CI, relationship, change, incident and procedure records into an ImportBatch, collecting every problem."""
    batch = ImportBatch()
    def by_id(index: int, record: Any) -> str:
        return _describe(index, record, "id")

    sections: list[tuple[str, Iterable[Any], Any, list[Any], Callable[[int, Any], str]]] = [
        ("cis", cis, ci_from_record, batch.cis, by_id),
        ("relationships", relationships, relationship_from_record, batch.relationships, _describe_relationship),
        ("changes", changes, change_from_record, batch.changes, by_id),
        ("incidents", incidents, incident_from_record, batch.incidents, by_id),
        ("procedures", procedures, procedure_from_record, batch.procedures, by_id),
    ]
    for name, records, convert, found, describe in sections:
        for index, record in enumerate(records):
            origin = Origin(source, f"{section_prefix}{name}{describe(index, record)}")
            built, problems = convert(record, origin)
            if built is None:
                batch.problems.extend(problems)
            else:
                found.append((built, origin))
    return batch


def ci_to_record(ci: CI) -> dict[str, Any]:
    """Return the bundle record of a CI (the inverse of ``ci_from_record``)."""
    record: dict[str, Any] = {"id": ci.id, "name": ci.name, "type": ci.type}
    optional = {
        "environment": ci.environment,
        "criticality": ci.criticality.value if ci.criticality else None,
        "owner": ci.owner,
        "source": ci.source,
        "source_id": ci.source_id,
        "valid_from": format_time(ci.valid_from),
        "valid_until": format_time(ci.valid_until),
    }
    record.update({key: value for key, value in optional.items() if value is not None})
    record["status"] = ci.status.value
    if ci.tags:
        record["tags"] = list(ci.tags)
    if ci.attributes:
        record["attributes"] = ci.attributes
    return record


def change_to_record(change: Change) -> dict[str, Any]:
    """Return the bundle record of a change (the inverse of ``change_from_record``)."""
    record: dict[str, Any] = {
        "id": change.id,
        "title": change.title,
        "kind": change.kind.value,
        "status": change.status.value,
        "risk": change.risk.value,
        "affected": list(change.affected),
    }
    optional = {
        "planned_start": format_time(change.planned_start),
        "planned_end": format_time(change.planned_end),
        "actual_start": format_time(change.actual_start),
        "actual_end": format_time(change.actual_end),
        "implementer": change.implementer,
        "description": change.description,
        "rollback_procedure": change.rollback_procedure,
    }
    record.update({key: value for key, value in optional.items() if value is not None})
    if change.attributes:
        record["attributes"] = change.attributes
    return record


def incident_to_record(incident: Incident) -> dict[str, Any]:
    """Return the bundle record of an incident (the inverse of ``incident_from_record``)."""
    record: dict[str, Any] = {
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "started_at": format_time(incident.started_at),
        "impacted": list(incident.impacted),
        "root_causes": list(incident.root_causes),
        "symptom_tags": list(incident.symptom_tags),
    }
    optional = {
        "detected_at": format_time(incident.detected_at),
        "resolved_at": format_time(incident.resolved_at),
        "symptom_text": incident.symptom_text,
        "caused_by_change": incident.caused_by_change,
        "resolved_with": incident.resolved_with,
    }
    record.update({key: value for key, value in optional.items() if value is not None})
    if incident.attributes:
        record["attributes"] = incident.attributes
    return record


def _contact_record(contact: Contact) -> dict[str, Any]:
    record: dict[str, Any] = {"name": contact.name}
    if contact.role is not None:
        record["role"] = contact.role
    if contact.reach is not None:
        record["reach"] = contact.reach
    return record


def _selector_record(selector: Selector) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if selector.type is not None:
        record["type"] = selector.type
    if selector.environment is not None:
        record["environment"] = selector.environment
    if selector.tags:
        record["tags"] = list(selector.tags)
    if selector.related_to is not None:
        related = selector.related_to
        record["related_to"] = {"ci": related.ci, "relationship": related.relationship.value}
        if related.transitive:
            record["related_to"]["transitive"] = True
    return record


def procedure_to_record(procedure: Procedure) -> dict[str, Any]:
    """Return the bundle record of a procedure (the inverse of ``procedure_from_record``).

    Both stores keep this record as JSON text, so equal procedures give equal text.
    """
    record: dict[str, Any] = {
        "id": procedure.id,
        "title": procedure.title,
        "level": procedure.level.value,
        "action": procedure.action.value,
        "steps": [
            {"text": step.text} if step.title is None else {"title": step.title, "text": step.text}
            for step in procedure.steps
        ],
    }
    optional = {
        "description": procedure.description,
        "expected_minutes": procedure.expected_minutes,
        "risk": procedure.risk.value if procedure.risk else None,
        "owner": procedure.owner,
        "last_reviewed": format_time(procedure.last_reviewed),
        "last_drilled": format_time(procedure.last_drilled),
        "source": procedure.source,
        "source_id": procedure.source_id,
    }
    record.update({key: value for key, value in optional.items() if value is not None})
    if procedure.contacts:
        record["contacts"] = [_contact_record(contact) for contact in procedure.contacts]
    if procedure.escalation:
        record["escalation"] = [
            {"after_minutes": step.after_minutes, "contact": _contact_record(step.contact)}
            for step in procedure.escalation
        ]
    if procedure.applies_to:
        record["applies_to"] = list(procedure.applies_to)
    if procedure.selectors:
        record["selectors"] = [_selector_record(selector) for selector in procedure.selectors]
    if procedure.tags:
        record["tags"] = list(procedure.tags)
    if procedure.attributes:
        record["attributes"] = procedure.attributes
    return record
