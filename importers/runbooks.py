"""Importer of Markdown runbooks: one procedure per file, from YAML front matter and ``## `` sections.

A runbook looks like this::

    ---
    title: Disk almost full
    action: adjust_parameter
    weight: 20
    ---

    # DiskAlmostFull

    Text before the first section is the description.

    ## Diagnosis

    Markdown as written, with its lists and code blocks.

How a file is read:

* UTF-8 with or without a byte order mark; CRLF and CR line endings become LF.
* Front matter is YAML between a ``---`` line at the very top and the next
  ``---`` (or ``...``) line. It may set every procedure field of the bundle
  format except ``steps``, ``source`` and ``source_id``, which come from the
  body and the file. Other keys, such as Hugo's ``weight``, ``aliases`` or
  ``bookHidden``, are kept in ``attributes``.
* The title is the front matter ``title``, else the text of the first ``# ``
  heading. Every later ``# `` or ``## `` heading starts a step titled with
  the heading. The step's text is the Markdown up to the next such heading,
  deeper headings included. The text before the first step, without the
  title heading, is the description, or ``attributes["introduction"]``
  when the front matter gives a ``description``. A ``#`` line inside a
  fenced code block is code, not a heading.
* A code fence that is never closed runs to the end of the file, as in
  CommonMark. Headings below it then start no step, and the runbook gets a
  warning.
* A section without text is not a step. It gets a warning and its heading is
  listed in ``attributes["empty_sections"]``.
* Hugo section pages (``_index.md``) are not runbooks. They are counted in
  ``ImportBatch.skipped`` under ``section index pages``.

Unless the front matter or the mapping sets them, a procedure gets the id
``runbook/<file stem>``, level ``system``, action ``diagnose`` and source
``runbook``. Its source id is the file's path relative to the directory
given, or its name when the file itself was given. ``attributes["alert"]``
holds the alert name: the front matter ``alert``, else the file stem.

A mapping file (YAML) links runbooks to CIs::

    defaults:                 # level, action, owner, risk, expected_minutes,
      owner: platform-team    # contacts, escalation, tags, id_prefix
    rules:
      - match:                # every condition given must hold
          alert: "KubePod*"   # glob, or a list of globs, on the alert name
          path: "kubernetes/*"
          front_matter: {severity: critical}
        selectors: [{type: workload}]
        applies_to: [k8s/default/deployment/frontend]
        level: system         # also action, owner and tags

Every matching rule adds its ``selectors``, ``applies_to`` and ``tags``. For
``level``, ``action`` and ``owner`` the first matching rule that sets one
wins. The front matter beats the rules, and the rules beat the defaults,
except that tags, selectors and ``applies_to`` from all three are combined.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from importers.source import SourceError, impossible_date_problem, load_yaml_documents, read_text
from service.errors import ImportRejectedError, RecordProblem
from service.records import ImportBatch, Origin, bundle_schema, procedure_from_record

logger = logging.getLogger(__name__)

SOURCE = "runbook"
SECTION_INDEX_NAME = "_index.md"
SECTION_INDEX_KIND = "section index pages"
DEFAULT_ID_PREFIX = "runbook/"
DEFAULT_LEVEL = "system"
DEFAULT_ACTION = "diagnose"

# Procedure fields that come from the body and the file, so front matter may not set them.
_IMPORTER_FIELDS = frozenset({"steps", "source", "source_id"})
_RULE_SINGLE_FIELDS = ("level", "action", "owner")
_RULE_LIST_FIELDS = ("selectors", "applies_to", "tags")
_DEFAULT_FIELDS = ("level", "action", "owner", "risk", "expected_minutes", "contacts", "escalation", "tags")
_MATCH_KEYS = ("alert", "path", "front_matter")

_FRONT_MATTER_OPEN = "---"
_FRONT_MATTER_CLOSE = ("---", "...")
# An ATX heading: up to three spaces, one to six '#', then a space or the end of the line.
_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
# Fences may be indented without limit, because a fence inside a list item is indented with the item.
_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")


@cache
def _front_matter_fields() -> frozenset[str]:
    return frozenset(bundle_schema()["$defs"]["procedure"]["properties"]) - _IMPORTER_FIELDS


# Parsing one file


@dataclass(frozen=True)
class Section:
    """A ``#`` or ``##`` heading of the body with the Markdown below it, outer blank lines removed."""

    heading: str
    text: str


@dataclass(frozen=True)
class Runbook:
    """One Markdown runbook as written, before defaults and the mapping apply.

    ``heading`` is the text of the first ``# `` heading. ``introduction`` is
    the text before the first section, without that heading.
    ``unclosed_fence_line`` is the file line of a code fence that is never
    closed, so that everything below it is code.
    """

    source: str
    relative_path: str
    front_matter: dict[str, Any]
    heading: str | None
    introduction: str | None
    sections: tuple[Section, ...]
    unclosed_fence_line: int | None = None

    @property
    def stem(self) -> str:
        return PurePosixPath(self.relative_path).stem

    @property
    def alert(self) -> str:
        alert = self.front_matter.get("alert")
        return alert if isinstance(alert, str) and alert else self.stem


def parse_runbook(text: str, source: str, relative_path: str) -> Runbook:
    """Split a runbook's text into front matter, title heading, introduction and sections.

    Args:
        text: the file's text; any line endings.
        source: the file as named in messages.
        relative_path: the path that the mapping's ``path`` globs and the
            default source id use, with ``/`` separators.

    Raises:
        SourceError: the front matter is not closed, not valid YAML, or not a mapping.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    front_matter, body_start = _split_front_matter(lines, source)
    heading, introduction, sections, unclosed_fence = _split_sections(lines[body_start:])
    unclosed_fence_line = None if unclosed_fence is None else body_start + unclosed_fence + 1
    return Runbook(source, relative_path, front_matter, heading, introduction, tuple(sections), unclosed_fence_line)


def _split_front_matter(lines: list[str], source: str) -> tuple[dict[str, Any], int]:
    """Return the parsed front matter and the index of the first body line."""
    first = lines[0].rstrip() if lines else ""
    if first == "+++":
        raise SourceError(
            RecordProblem(
                source,
                "line 1",
                "(front matter)",
                "TOML front matter ('+++') is not supported; write it as YAML between '---' lines",
            )
        )
    if first != _FRONT_MATTER_OPEN:
        return {}, 0
    end = next((index for index in range(1, len(lines)) if lines[index].rstrip() in _FRONT_MATTER_CLOSE), None)
    if end is None:
        raise SourceError(
            RecordProblem(
                source,
                "line 1",
                "(front matter)",
                "the front matter opened by '---' on line 1 is not closed; add a line '---' after it",
            )
        )

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load("\n".join(lines[1:end]), Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        # The front matter starts on line 2 of the file, and marks count from 0.
        where = f"line {mark.line + 2}, column {mark.column + 1}" if mark is not None else "line 1"
        reason = getattr(exc, "problem", None) or str(exc)
        message = f"invalid YAML in the front matter: {reason}; fix the syntax there"
        raise SourceError(RecordProblem(source, where, "(front matter)", message)) from exc
    except ValueError as exc:
        # The front matter starts on line 2 of the file.
        raise SourceError(impossible_date_problem(source, "\n".join(lines[1:end]), exc, first_line=2)) from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SourceError(
            RecordProblem(
                source,
                "line 2",
                "(front matter)",
                f"the front matter is a YAML {type(data).__name__}, not a mapping; write it as 'key: value' lines",
            )
        )
    return {str(key): _plain_value(value) for key, value in data.items()}, end + 1


def _plain_value(value: Any) -> Any:
    """Return a YAML value as JSON data: dates and times as ISO 8601 text, mapping keys as text.

    Procedures keep their attributes as JSON, and the bundle schema expects times as text.
    """
    if isinstance(value, date):
        # datetime is a subclass of date, so this covers both.
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_value(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain_value(item) for item in value), key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _split_sections(lines: list[str]) -> tuple[str | None, str | None, list[Section], int | None]:
    """Return the title heading, the introduction, the sections and the index of an unclosed fence."""
    heading: str | None = None
    introduction: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    current = introduction
    in_code, unclosed_fence = _code_lines(lines)
    for line, code in zip(lines, in_code, strict=True):
        level_and_text = None if code else _heading(line)
        if level_and_text is None or level_and_text[0] > 2:
            current.append(line)
            continue
        level, text = level_and_text
        if level == 1 and heading is None and not sections:
            heading = text
            continue
        current = []
        sections.append((text, current))
    return (
        heading or None,
        _trim(introduction) or None,
        [Section(text, _trim(body)) for text, body in sections],
        unclosed_fence,
    )


def _code_lines(lines: list[str]) -> tuple[list[bool], int | None]:
    """Tell for each line whether it belongs to a fenced code block, fence lines included.

    A fence closes with the same character, at least as many times, and
    nothing else on the line. As in CommonMark, an unclosed fence runs to the
    end of the file; its index is returned second, or None.
    """
    flags = []
    fence: str | None = None
    opened_at: int | None = None
    for index, line in enumerate(lines):
        match = _FENCE.fullmatch(line)
        if fence is None:
            # A backtick fence's info string may not contain a backtick.
            if match is not None and not (match[1][0] == "`" and "`" in match[2]):
                fence, opened_at = match[1], index
            flags.append(fence is not None)
            continue
        if match is not None and match[1][0] == fence[0] and len(match[1]) >= len(fence) and not match[2].strip():
            fence, opened_at = None, None
        flags.append(True)
    return flags, opened_at


def _heading(line: str) -> tuple[int, str] | None:
    match = _HEADING.fullmatch(line)
    if match is None:
        return None
    text = _CLOSING_HASHES.sub("", match[2] or "").strip()
    return len(match[1]), text


def _trim(lines: list[str]) -> str:
    """Join lines, dropping blank lines at both ends but keeping the indentation of the first."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])


# The mapping file


@dataclass(frozen=True)
class Rule:
    """One rule of a mapping file: its conditions and the fields it gives to the runbooks it matches."""

    index: int
    alerts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    front_matter: dict[str, Any] = field(default_factory=dict)
    gives: dict[str, Any] = field(default_factory=dict)

    def matches(self, runbook: Runbook) -> bool:
        """Tell whether the runbook meets every condition of the rule.

        An alert glob matches the whole alert name, case-sensitively. A path
        glob matches the end of the relative path, as ``PurePath.match`` does,
        so ``node/*`` matches ``node/A.md`` and ``runbooks/node/A.md`` but
        not ``node/disk/A.md``.
        """
        if self.alerts and not any(fnmatchcase(runbook.alert, pattern) for pattern in self.alerts):
            return False
        path = PurePosixPath(runbook.relative_path)
        if self.paths and not any(path.match(pattern) for pattern in self.paths):
            return False
        return all(
            key in runbook.front_matter and runbook.front_matter[key] == value
            for key, value in self.front_matter.items()
        )


@dataclass(frozen=True)
class RunbookMapping:
    """A parsed mapping file: defaults for every runbook and the rules in file order."""

    source: str
    defaults: dict[str, Any] = field(default_factory=dict)
    id_prefix: str = DEFAULT_ID_PREFIX
    rules: tuple[Rule, ...] = ()


NO_MAPPING = RunbookMapping(source="(no mapping)")


def load_mapping(path: Path) -> RunbookMapping:
    """Read and check a mapping file.

    Raises:
        ImportRejectedError: the file cannot be read, is not valid YAML, or
            has invalid entries. Each problem names the file, the entry
            (``defaults`` or ``rules[<index>]``) and the field.
    """
    source = str(path)
    try:
        documents = [document for document in load_yaml_documents(path) if document is not None]
    except SourceError as exc:
        raise ImportRejectedError([exc.problem]) from exc
    if len(documents) != 1 or not isinstance(documents[0], Mapping):
        found = "no document" if not documents else f"{len(documents)} documents"
        if len(documents) == 1:
            found = type(documents[0]).__name__
        raise ImportRejectedError(
            [
                RecordProblem(
                    source,
                    "(mapping)",
                    "(file)",
                    f"expected one YAML mapping with 'rules' and optional 'defaults', found {found}",
                )
            ]
        )
    data = _plain_value(documents[0])

    problems = [
        RecordProblem(source, "(mapping)", key, f"unknown key {key!r}; a mapping file has 'defaults' and 'rules'")
        for key in data
        if key not in ("defaults", "rules")
    ]
    defaults, id_prefix = _read_defaults(data.get("defaults"), source, problems)
    rules = data.get("rules")
    if rules is None:
        rules = []
    if not isinstance(rules, list):
        problems.append(
            RecordProblem(
                source, "(mapping)", "rules", "'rules' must be a list of rules, each starting with '- match:'"
            )
        )
        rules = []
    parsed_rules = [_read_rule(index, rule, source, problems) for index, rule in enumerate(rules)]
    if problems:
        raise ImportRejectedError(problems)
    return RunbookMapping(source, defaults, id_prefix, tuple(rule for rule in parsed_rules if rule is not None))


def _read_defaults(value: Any, source: str, problems: list[RecordProblem]) -> tuple[dict[str, Any], str]:
    if value is None:
        return {}, DEFAULT_ID_PREFIX
    if not isinstance(value, Mapping):
        problems.append(RecordProblem(source, "defaults", "defaults", "'defaults' must be a mapping of field: value"))
        return {}, DEFAULT_ID_PREFIX
    defaults = dict(value)
    for key in defaults:
        if key not in (*_DEFAULT_FIELDS, "id_prefix"):
            allowed = ", ".join((*_DEFAULT_FIELDS, "id_prefix"))
            problems.append(
                RecordProblem(source, "defaults", key, f"unknown key {key!r}; defaults may set {allowed}")
            )
    id_prefix = defaults.pop("id_prefix", DEFAULT_ID_PREFIX)
    if not isinstance(id_prefix, str):
        problems.append(
            RecordProblem(source, "defaults", "id_prefix", f"expected text such as 'runbook/', found {id_prefix!r}")
        )
        id_prefix = DEFAULT_ID_PREFIX
    known = {key: item for key, item in defaults.items() if key in _DEFAULT_FIELDS}
    problems.extend(_field_problems(known, Origin(source, "defaults")))
    return known, id_prefix


def _read_rule(index: int, value: Any, source: str, problems: list[RecordProblem]) -> Rule | None:
    record = f"rules[{index}]"
    if not isinstance(value, Mapping):
        problems.append(
            RecordProblem(
                source, record, "(rule)", "a rule is a mapping with 'match' and what it gives, such as 'selectors'"
            )
        )
        return None
    before = len(problems)
    allowed = ("match", *_RULE_SINGLE_FIELDS, *_RULE_LIST_FIELDS)
    for key in value:
        if key not in allowed:
            problems.append(
                RecordProblem(source, record, key, f"unknown key {key!r}; a rule may have {', '.join(allowed)}")
            )

    match = value.get("match")
    if not isinstance(match, Mapping) or not any(key in match for key in _MATCH_KEYS):
        problems.append(
            RecordProblem(
                source,
                record,
                "match",
                "missing or empty 'match'; give at least one of 'alert', 'path' and 'front_matter'",
            )
        )
        match = {}
    for key in match:
        if key not in _MATCH_KEYS:
            problems.append(
                RecordProblem(
                    source,
                    record,
                    f"match.{key}",
                    f"unknown condition {key!r}; use 'alert', 'path' or 'front_matter'",
                )
            )
    alerts = _globs(match.get("alert"), source, record, "match.alert", problems)
    paths = _globs(match.get("path"), source, record, "match.path", problems)
    front_matter = match.get("front_matter", {})
    if not isinstance(front_matter, Mapping) or ("front_matter" in match and not front_matter):
        problems.append(
            RecordProblem(
                source,
                record,
                "match.front_matter",
                "expected a non-empty mapping of front matter field: value, such as {severity: critical}",
            )
        )
        front_matter = {}

    gives = {key: value[key] for key in (*_RULE_SINGLE_FIELDS, *_RULE_LIST_FIELDS) if key in value}
    problems.extend(_field_problems(gives, Origin(source, record)))
    if len(problems) > before:
        return None
    return Rule(index, alerts, paths, dict(front_matter), gives)


def _globs(value: Any, source: str, record: str, field_name: str, problems: list[RecordProblem]) -> tuple[str, ...]:
    if value is None:
        return ()
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
        problems.append(
            RecordProblem(
                source, record, field_name, f"expected a glob or a list of globs such as 'Kube*', found {value!r}"
            )
        )
        return ()
    return tuple(patterns)


def _field_problems(values: dict[str, Any], origin: Origin) -> list[RecordProblem]:
    """Check mapping values with the bundle's procedure schema, so that the messages match the bundle's."""
    trial = {"id": "mapping-check", "title": "mapping check", "level": DEFAULT_LEVEL, "action": DEFAULT_ACTION}
    _, problems = procedure_from_record({**trial, **values}, origin)
    return problems


# Building procedures


def read(path: Path) -> ImportBatch:
    """Read one runbook file without a mapping.

    Raises:
        SourceError: the file cannot be read, is not UTF-8, or its front
            matter is invalid.
    """
    batch = ImportBatch()
    if path.name == SECTION_INDEX_NAME:
        batch.skipped[SECTION_INDEX_KIND] = 1
        return batch
    runbook = parse_runbook(read_text(path), str(path), path.name)
    _add_procedure(runbook, NO_MAPPING, [], batch)
    return batch


def read_many(paths: Sequence[Path], *, mapping: Path | None = None) -> ImportBatch:
    """Read runbook files and folders (every ``*.md`` below a folder, in sorted order) into one batch.

    A file that cannot be read or parsed becomes a problem of the batch, so
    the shared loader rejects the whole import unless ``keep_going`` is set.

    Raises:
        ImportRejectedError: the mapping file is invalid; nothing was read.
    """
    rules = load_mapping(mapping) if mapping is not None else NO_MAPPING
    batch = ImportBatch()
    matched: set[int] = set()
    for file, relative_path in _runbook_files(paths, batch):
        if file.name == SECTION_INDEX_NAME:
            batch.skipped[SECTION_INDEX_KIND] = batch.skipped.get(SECTION_INDEX_KIND, 0) + 1
            continue
        try:
            runbook = parse_runbook(read_text(file), str(file), relative_path)
        except SourceError as exc:
            batch.problems.append(exc.problem)
            continue
        matching = [rule for rule in rules.rules if rule.matches(runbook)]
        matched.update(rule.index for rule in matching)
        _add_procedure(runbook, rules, matching, batch)

    for rule in rules.rules:
        if rule.index not in matched:
            batch.warnings.append(
                f"{rules.source}: rules[{rule.index}] matches no runbook of this import; check its 'match' conditions"
            )
    logger.info(
        "read %d runbooks, %d problems, %d section index pages skipped",
        len(batch.procedures),
        len(batch.problems),
        batch.skipped.get(SECTION_INDEX_KIND, 0),
    )
    return batch


def _runbook_files(paths: Sequence[Path], batch: ImportBatch) -> Iterator[tuple[Path, str]]:
    """Yield each file to read with its relative path, once, folders expanded in sorted order."""
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            files = sorted(path.rglob("*.md"))
            if not files:
                batch.problems.append(
                    RecordProblem(str(path), "(folder)", "(file)", "no '*.md' file in this folder; check the path")
                )
            pairs = [(file, file.relative_to(path).as_posix()) for file in files]
        else:
            pairs = [(path, path.name)]
        for file, relative_path in pairs:
            resolved = file.resolve()
            if resolved not in seen:
                seen.add(resolved)
                yield file, relative_path


def _add_procedure(runbook: Runbook, mapping: RunbookMapping, rules: list[Rule], batch: ImportBatch) -> None:
    record, problems = _procedure_record(runbook, mapping, rules)
    procedure_id = record.get("id")
    origin = Origin(runbook.source, f"runbook '{procedure_id}'" if isinstance(procedure_id, str) else "(runbook)")
    problems = [RecordProblem(origin.source, origin.record, name, message) for name, message in problems]

    if "title" not in record:
        problems.append(
            RecordProblem(
                origin.source,
                origin.record,
                "title",
                "runbook without a title; add 'title' to the front matter or a '# ' heading above the first section",
            )
        )
        record = {**record, "title": "(untitled)"}
    procedure, record_problems = procedure_from_record(record, origin)
    problems.extend(record_problems)
    if problems:
        batch.problems.extend(problems)
        return

    assert procedure is not None
    if runbook.unclosed_fence_line is not None:
        batch.warnings.append(
            f"{origin.source}: {origin.record}: the code block opened on line {runbook.unclosed_fence_line} "
            "is never closed, so the rest of the file is code and its headings start no step; "
            "close the block with a line of the same fence characters"
        )
    for heading in procedure.attributes.get("empty_sections", ()):
        batch.warnings.append(
            f"{origin.source}: {origin.record}: section {heading!r} has no text, so it is not a step; "
            "write the section or remove its heading"
        )
    if not procedure.applies_to and not procedure.selectors:
        batch.warnings.append(
            f"{origin.source}: {origin.record} applies to no CI; add a mapping rule or applies_to"
        )
    batch.procedures.append((procedure, origin))


def _procedure_record(
    runbook: Runbook, mapping: RunbookMapping, rules: list[Rule]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Build the bundle record of a runbook, and list (field, message) for front matter the record cannot hold."""
    front_matter = runbook.front_matter
    problems: list[tuple[str, str]] = []
    fields = _front_matter_fields()
    from_front_matter = {key: value for key, value in front_matter.items() if key in fields and value is not None}
    for key in sorted(_IMPORTER_FIELDS & front_matter.keys()):
        problems.append(
            (key, f"'{key}' is set by the importer from the body and the file; remove it from the front matter")
        )
    if "alert" in front_matter and not (isinstance(front_matter["alert"], str) and front_matter["alert"]):
        problems.append(("alert", f"expected the alert name as text, found {front_matter['alert']!r}"))

    record: dict[str, Any] = {"id": from_front_matter.get("id", f"{mapping.id_prefix}{runbook.stem}")}
    title = from_front_matter.get("title")
    if isinstance(title, str) and not title.strip():
        title = None
    if title is not None or runbook.heading:
        record["title"] = title if title is not None else runbook.heading

    for name in ("level", "action", "owner"):
        value = from_front_matter.get(name)
        if value is None:
            value = next((rule.gives[name] for rule in rules if name in rule.gives), None)
        if value is None:
            value = mapping.defaults.get(name)
        if value is not None:
            record[name] = value
    record.setdefault("level", DEFAULT_LEVEL)
    record.setdefault("action", DEFAULT_ACTION)
    for name in ("risk", "expected_minutes", "contacts", "escalation"):
        value = from_front_matter.get(name, mapping.defaults.get(name))
        if value is not None:
            record[name] = value
    for name in ("description", "last_reviewed", "last_drilled"):
        if name in from_front_matter:
            record[name] = from_front_matter[name]
    if "description" not in record and runbook.introduction:
        record["description"] = runbook.introduction

    list_sources = [from_front_matter, *(rule.gives for rule in rules), mapping.defaults]
    for name in _RULE_LIST_FIELDS:
        combined = _combined(name, list_sources)
        if combined is not None:
            record[name] = combined

    record["steps"] = [
        {"title": section.heading, "text": section.text} if section.heading else {"text": section.text}
        for section in runbook.sections
        if section.text
    ]
    record["source"] = SOURCE
    record["source_id"] = runbook.relative_path
    record["attributes"] = _attributes(runbook, from_front_matter)
    return record, problems


def _combined(name: str, sources: list[Mapping[str, Any]]) -> Any:
    """Concatenate a list field from every source in order, dropping repeats.

    A value that is not a list is returned as it is, so that the record check reports it.
    """
    combined: list[Any] = []
    found = False
    for source in sources:
        value = source.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            return value
        found = True
        for item in value:
            if item not in combined:
                combined.append(item)
    return combined if found else None


def _attributes(runbook: Runbook, from_front_matter: Mapping[str, Any]) -> Any:
    fields = _front_matter_fields() | _IMPORTER_FIELDS
    attributes: dict[str, Any] = {
        key: value for key, value in runbook.front_matter.items() if key not in fields
    }
    explicit = from_front_matter.get("attributes")
    if explicit is not None:
        if not isinstance(explicit, Mapping):
            # The record check rejects it and names the field.
            return explicit
        attributes.update(explicit)
    attributes["alert"] = runbook.alert
    if "description" in from_front_matter and runbook.introduction:
        attributes["introduction"] = runbook.introduction
    empty = [section.heading for section in runbook.sections if not section.text]
    if empty:
        attributes["empty_sections"] = empty
    return attributes
