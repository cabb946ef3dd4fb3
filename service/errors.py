"""Exceptions raised by faultgraph.

Every exception carries a machine-readable ``code`` that the GraphQL layer puts
into ``extensions.code``::

    FaultgraphError                 INTERNAL
    ├── NotFoundError               NOT_FOUND
    ├── InvalidInputError           INVALID_INPUT
    │   └── ImportRejectedError     INVALID_INPUT (one problem per rejected record)
    ├── ConflictError               CONFLICT
    ├── StoreUnavailableError       STORE_UNAVAILABLE
    └── PartialWriteError           STORE_UNAVAILABLE (some batches written, some not)
"""

from __future__ import annotations

from dataclasses import dataclass, field


class FaultgraphError(Exception):
    """Base class of the errors that faultgraph reports to its callers."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def extensions(self) -> dict[str, object]:
        """Return the GraphQL ``extensions`` for this error."""
        return {"code": self.code}


class NotFoundError(FaultgraphError):
    """A requested or referenced record that is not stored; ``field`` names the input that referenced it."""

    code = "NOT_FOUND"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def extensions(self) -> dict[str, object]:
        extensions = super().extensions()
        if self.field is not None:
            extensions["field"] = self.field
        return extensions


class InvalidInputError(FaultgraphError):
    """Input that faultgraph cannot accept; the message names the value and the fix."""

    code = "INVALID_INPUT"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def extensions(self) -> dict[str, object]:
        extensions = super().extensions()
        if self.field is not None:
            extensions["field"] = self.field
        return extensions


@dataclass(frozen=True)
class RecordProblem:
    """One reason why one input record was rejected."""

    source: str
    record: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: record {self.record}, field '{self.field}': {self.message}"


class ImportRejectedError(InvalidInputError):
    """An import in which at least one record is invalid, so nothing was written."""

    def __init__(self, problems: list[RecordProblem], *, limit: int = 20) -> None:
        shown = "\n".join(f"  - {problem}" for problem in problems[:limit])
        hidden = len(problems) - limit
        more = f"\n  ... and {hidden} more" if hidden > 0 else ""
        records = len({(problem.source, problem.record) for problem in problems})
        super().__init__(
            f"import rejected, nothing was written: {len(problems)} problem(s) in {records} record(s)\n{shown}{more}"
        )
        self.problems = problems

    def extensions(self) -> dict[str, object]:
        extensions = super().extensions()
        extensions["problems"] = [
            {"source": p.source, "record": p.record, "field": p.field, "message": p.message}
            for p in self.problems
        ]
        return extensions


class ConflictError(FaultgraphError):
    code = "CONFLICT"


class StoreUnavailableError(FaultgraphError):
    code = "STORE_UNAVAILABLE"


@dataclass
class WriteProgress:
    """Counts of the records that a batched write stored before it stopped."""

    cis_written: int = 0
    relationships_written: int = 0
    cis_not_written: int = 0
    relationships_not_written: int = 0
    failed_batches: list[str] = field(default_factory=list)
    changes_written: int = 0
    incidents_written: int = 0
    changes_not_written: int = 0
    incidents_not_written: int = 0
    procedures_written: int = 0
    procedures_not_written: int = 0


class PartialWriteError(StoreUnavailableError):
    """A batched write that stopped part way: whole batches were written, none half."""

    def __init__(self, message: str, progress: WriteProgress) -> None:
        super().__init__(message)
        self.progress = progress

    def extensions(self) -> dict[str, object]:
        extensions = super().extensions()
        extensions["written"] = {
            "cis": self.progress.cis_written,
            "relationships": self.progress.relationships_written,
            "changes": self.progress.changes_written,
            "incidents": self.progress.incidents_written,
            "procedures": self.progress.procedures_written,
        }
        extensions["notWritten"] = {
            "cis": self.progress.cis_not_written,
            "relationships": self.progress.relationships_not_written,
            "changes": self.progress.changes_not_written,
            "incidents": self.progress.incidents_not_written,
            "procedures": self.progress.procedures_not_written,
        }
        return extensions
