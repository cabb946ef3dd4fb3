"""Importers: one module per source format, each turning source files into model records.

Every importer module exposes ``read(path) -> ImportBatch`` for one file and
raises ``SourceError`` when the file cannot be read or parsed at all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from importers.source import SourceError
from service.records import ImportBatch

# Format name used on the command line and in the API -> module under ``importers``.
FORMATS: dict[str, str] = {
    "bundle": "importers.native",
    "kubernetes": "importers.kubernetes",
    "runbook": "importers.runbooks",
}


def reader_for(format_name: str) -> Callable[[Path], ImportBatch]:
    """Return the ``read`` function of a format.

    Raises:
        KeyError: the format is unknown.
    """
    module = importlib.import_module(FORMATS[format_name])
    return module.read  # type: ignore[no-any-return]


def read_files(format_name: str, paths: list[Path], **options: Any) -> ImportBatch:
    """Read every file of one format into one batch.

    A file that cannot be read or parsed becomes a problem of the batch, so the
    shared loader rejects the whole import unless it is told to keep going, in
    which case the other files are still imported. A format whose files refer
    to each other (Kubernetes manifests) reads all files at once through its
    ``read_many``, which also takes the format's ``options``, such as the
    ``mapping`` file of runbooks.

    Raises:
        TypeError: options are given for a format without ``read_many``.
    """
    read_many = getattr(importlib.import_module(FORMATS[format_name]), "read_many", None)
    if read_many is not None:
        return read_many(paths, **options)  # type: ignore[no-any-return]
    if options:
        raise TypeError(f"format {format_name!r} takes no options, but got {', '.join(sorted(options))}")
    read = reader_for(format_name)
    batch = ImportBatch()
    for path in paths:
        try:
            batch.extend(read(path))
        except SourceError as exc:
            batch.problems.append(exc.problem)
    return batch
