"""Importer of faultgraph's own bundle format (YAML or JSON, ``schema/bundle.schema.json``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from importers.source import SourceError, load_yaml_documents, read_text
from service.errors import RecordProblem
from service.records import ImportBatch, batch_from_records

SECTIONS = ("cis", "relationships", "changes", "incidents", "procedures")


def parse_bundle(data: Any, source: str, *, from_yaml: bool = False) -> ImportBatch:
    """Turn a parsed bundle into model records; problems name the section and record index.

    Pass ``from_yaml`` for data that YAML parsed, whose unquoted times arrive
    as datetimes; JSON data skips that conversion, which copies every record.
    """
    if not isinstance(data, Mapping):
        kind = type(data).__name__ if data is not None else "empty document"
        return ImportBatch(
            problems=[
                RecordProblem(
                    source,
                    "(bundle)",
                    "(bundle)",
                    f"a bundle is a mapping with 'cis' and 'relationships' lists, not a {kind}",
                )
            ]
        )

    problems = []
    for key in data:
        if key not in (*SECTIONS, "format"):
            problems.append(
                RecordProblem(
                    source,
                    "(bundle)",
                    str(key),
                    f"unknown section {key!r}; a bundle has the sections {', '.join(SECTIONS)}",
                )
            )
    if "format" in data and data["format"] != "faultgraph-bundle/1":
        problems.append(
            RecordProblem(
                source,
                "(bundle)",
                "format",
                f"unsupported format {data['format']!r}; use 'faultgraph-bundle/1' or leave it out",
            )
        )
    sections = {}
    for name in SECTIONS:
        section = data.get(name) or []
        if not isinstance(section, list):
            problems.append(
                RecordProblem(source, "(bundle)", name, f"'{name}' must be a list of records")
            )
            section = []
        sections[name] = section

    if from_yaml:
        sections = {name: _plain_values(section) for name, section in sections.items()}
    batch = batch_from_records(
        sections["cis"],
        sections["relationships"],
        source,
        changes=sections["changes"],
        incidents=sections["incidents"],
        procedures=sections["procedures"],
    )
    batch.problems[:0] = problems
    return batch


def _plain_values(value: Any) -> Any:
    """Return the value with YAML dates and times turned back into ISO 8601 text.

    YAML reads an unquoted ``2026-03-01T14:05:00Z`` as a datetime and
    ``2026-03-01`` as a date, but the bundle schema expects times as text and
    attributes as JSON. A time without an offset stays without one, so the
    record check still rejects it and names the field.
    """
    if isinstance(value, date):
        # datetime is a subclass of date, so this covers both.
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: _plain_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_values(item) for item in value]
    return value


def read(path: Path) -> ImportBatch:
    """Read one bundle file; a ``.json`` file is parsed as JSON, anything else as YAML."""
    if path.suffix.lower() == ".json":
        text = read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceError(
                RecordProblem(
                    str(path),
                    f"line {exc.lineno}, column {exc.colno}",
                    "(file)",
                    f"invalid JSON: {exc.msg}; fix the syntax there",
                )
            ) from exc
        return parse_bundle(data, str(path))

    documents = [d for d in load_yaml_documents(path) if d is not None]
    if len(documents) != 1:
        return ImportBatch(
            problems=[
                RecordProblem(
                    str(path),
                    "(file)",
                    "(file)",
                    f"expected one YAML document, found {len(documents)}; "
                    "put the whole bundle in one document",
                )
            ]
        )
    return parse_bundle(documents[0], str(path), from_yaml=True)
