"""Reading source files: UTF-8 text and YAML documents, with errors that name the file and line."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from service.errors import RecordProblem


class SourceError(Exception):
    """A file that cannot be read or parsed at all."""

    def __init__(self, problem: RecordProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def read_text(path: Path) -> str:
    """Read a UTF-8 file (a byte order mark is allowed) or raise SourceError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(
            RecordProblem(str(path), "(file)", "(file)", f"cannot read the file: {exc.strerror or exc}")
        ) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(
            RecordProblem(
                str(path),
                f"line {line}",
                "(file)",
                f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "convert the file to UTF-8",
            )
        ) from exc


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> RecordProblem:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(file)"
    reason = getattr(exc, "problem", None) or str(exc)
    return RecordProblem(str(path), where, "(file)", f"invalid YAML: {reason}; fix the syntax there")


_DATE = re.compile(r"(?<![\w.-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w.-]*:)")


def impossible_date_problem(source: str, text: str, exc: ValueError, first_line: int = 1) -> RecordProblem:
    """Explain a YAML value that looks like a date but does not exist, such as ``2026-02-30``.

    YAML turns an unquoted date into a date object and raises ``ValueError``
    (not a ``YAMLError``) when the day does not exist, without a position.
    The line is found by looking for the first such date in ``text``, whose
    first line is line ``first_line`` of the file.
    """
    for number, line in enumerate(text.splitlines(), start=first_line):
        for match in _DATE.finditer(line):
            year, month, day = (int(part) for part in match.groups())
            try:
                date(year, month, day)
            except ValueError:
                key = re.match(r"\s*(?:-\s*)?([\w.-]+)\s*:", line)
                return RecordProblem(
                    source,
                    f"line {number}",
                    key.group(1) if key else "(file)",
                    f"{match.group(0)!r} is not a real date ({exc}); correct it, or quote it if it is not a date",
                )
    return RecordProblem(source, "(file)", "(file)", f"invalid value in the YAML: {exc}; correct it")


def load_yaml_documents(path: Path) -> list[Any]:
    """Parse every YAML document of a file (JSON is YAML too) or raise SourceError."""
    text = read_text(path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as exc:
        raise SourceError(_yaml_problem(path, exc)) from exc
    except ValueError as exc:
        raise SourceError(impossible_date_problem(str(path), text, exc)) from exc
