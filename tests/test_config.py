"""Settings from the environment and a config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import load_settings
from service.errors import InvalidInputError


def test_settings_defaults() -> None:
    settings = load_settings({})

    assert settings.store == "embedded"
    assert settings.db == Path("faultgraph.db")
    assert settings.port == 8000
    assert settings.neo4j_password is None


def test_settings_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "faultgraph.toml"
    config.write_text('store = "neo4j"\nneo4j_uri = "bolt://db:7687"\nport = 9000\n', encoding="utf-8")

    settings = load_settings({"FAULTGRAPH_CONFIG": str(config), "FAULTGRAPH_PORT": "9100"})

    assert settings.store == "neo4j"
    assert settings.neo4j_uri == "bolt://db:7687"
    assert settings.port == 9100


def test_settings_password_file_not_in_repr(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret-value\n", encoding="utf-8")

    settings = load_settings({"FAULTGRAPH_NEO4J_PASSWORD_FILE": str(secret), "FAULTGRAPH_STORE": "neo4j"})

    assert settings.neo4j_password == "s3cret-value"
    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in settings.describe_store()


def test_settings_password_variable_wins_over_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-file\n", encoding="utf-8")

    settings = load_settings(
        {"FAULTGRAPH_NEO4J_PASSWORD_FILE": str(secret), "FAULTGRAPH_NEO4J_PASSWORD": "from-variable"}
    )

    assert settings.neo4j_password == "from-variable"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param({"FAULTGRAPH_STORE": "postgres"}, "store 'postgres' is unknown", id="unknown-store"),
        pytest.param({"FAULTGRAPH_PORT": "eighty"}, "port 'eighty' is not a number", id="bad-port"),
        pytest.param({"FAULTGRAPH_CONFIG": "/nonexistent/faultgraph.toml"}, "cannot read config file", id="missing-file"),
        pytest.param(
            {"FAULTGRAPH_NEO4J_PASSWORD_FILE": "/nonexistent/password"},
            "cannot read the Neo4j password file",
            id="missing-password-file",
        ),
    ],
)
def test_settings_reject_bad_values(environ: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_settings(environ)


def test_settings_reject_unknown_config_key(tmp_path: Path) -> None:
    config = tmp_path / "faultgraph.toml"
    config.write_text('stor = "neo4j"\n', encoding="utf-8")

    with pytest.raises(InvalidInputError, match="unknown key\\(s\\) stor"):
        load_settings({"FAULTGRAPH_CONFIG": str(config)})


def test_settings_reject_invalid_toml(tmp_path: Path) -> None:
    config = tmp_path / "faultgraph.toml"
    config.write_text("store = \n", encoding="utf-8")

    with pytest.raises(InvalidInputError, match="not valid TOML"):
        load_settings({"FAULTGRAPH_CONFIG": str(config)})
