"""Settings from environment variables, optionally over a TOML config file.

=================================  ==========================================
environment variable               meaning (config file key)
=================================  ==========================================
FAULTGRAPH_CONFIG                  path of a TOML file with the keys below
FAULTGRAPH_STORE                   ``embedded`` (default) or ``neo4j`` (store)
FAULTGRAPH_DB                      SQLite file of the embedded store (db),
                                   default ``faultgraph.db`` in the working
                                   directory
FAULTGRAPH_NEO4J_URI               Bolt URI (neo4j_uri)
FAULTGRAPH_NEO4J_USER              user name (neo4j_user), default ``neo4j``
FAULTGRAPH_NEO4J_PASSWORD          password (neo4j_password)
FAULTGRAPH_NEO4J_PASSWORD_FILE     file whose first line is the password
                                   (neo4j_password_file)
FAULTGRAPH_NEO4J_DATABASE          database name (neo4j_database)
FAULTGRAPH_HOST, FAULTGRAPH_PORT   where ``serve`` listens (host, port)
=================================  ==========================================

Environment variables override the file. The password is never logged or
shown by ``repr``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from service.errors import InvalidInputError
from service.store.base import GraphStore

STORE_KINDS = ("embedded", "neo4j")


@dataclass(frozen=True)
class Settings:
    store: str = "embedded"
    db: Path = Path("faultgraph.db")
    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: str | None = field(default=None, repr=False)
    neo4j_database: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000

    def describe_store(self) -> str:
        """Return where the store is, for logs; never includes the password."""
        if self.store == "embedded":
            return f"embedded store {self.db}"
        return f"Neo4j at {self.neo4j_uri} as {self.neo4j_user}"


_ENVIRONMENT = {
    "store": "FAULTGRAPH_STORE",
    "db": "FAULTGRAPH_DB",
    "neo4j_uri": "FAULTGRAPH_NEO4J_URI",
    "neo4j_user": "FAULTGRAPH_NEO4J_USER",
    "neo4j_password": "FAULTGRAPH_NEO4J_PASSWORD",
    "neo4j_password_file": "FAULTGRAPH_NEO4J_PASSWORD_FILE",
    "neo4j_database": "FAULTGRAPH_NEO4J_DATABASE",
    "host": "FAULTGRAPH_HOST",
    "port": "FAULTGRAPH_PORT",
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from the config file, the environment and explicit overrides, in that order.

    Raises:
        InvalidInputError: an unknown store kind, a port that is not a number,
            an unreadable file or an unknown config key.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}

    config_path = environ.get("FAULTGRAPH_CONFIG")
    if config_path:
        values.update(_read_config_file(Path(config_path)))
    for key, variable in _ENVIRONMENT.items():
        if environ.get(variable):
            values[key] = environ[variable]
    values.update({key: value for key, value in overrides.items() if value is not None})

    password_file = values.pop("neo4j_password_file", None)
    if password_file and not values.get("neo4j_password"):
        values["neo4j_password"] = _read_password(Path(password_file))
    if "db" in values:
        values["db"] = Path(values["db"])
    if "port" in values:
        try:
            values["port"] = int(values["port"])
        except ValueError:
            raise InvalidInputError(
                f"port {values['port']!r} is not a number; set FAULTGRAPH_PORT to a TCP port such as 8000",
                field="port",
            ) from None
    store = values.get("store", "embedded")
    if store not in STORE_KINDS:
        raise InvalidInputError(
            f"store {store!r} is unknown; set FAULTGRAPH_STORE to one of {', '.join(STORE_KINDS)}",
            field="store",
        )
    return Settings(**values)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"config file {path} is not valid TOML: {exc}") from exc
    known = {f.name for f in fields(Settings)} | {"neo4j_password_file"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInputError(
            f"config file {path} has unknown key(s) {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(known))}"
        )
    return data


def _read_password(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read the Neo4j password file {path}: {exc.strerror or exc}",
            field="neo4j_password_file",
        ) from exc
    return lines[0] if lines else ""


def open_store(settings: Settings) -> GraphStore:
    """Open the configured store; a Neo4j store opens even while Neo4j is unreachable."""
    if settings.store == "embedded":
        from service.store.embedded import EmbeddedStore

        return EmbeddedStore(settings.db)
    from service.store.neo4j import Neo4jStore

    return Neo4jStore(
        settings.neo4j_uri,
        settings.neo4j_user,
        settings.neo4j_password or "",
        database=settings.neo4j_database,
    )
