"""The shared loader with native bundles: bad input is rejected whole and named, re-imports change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from importers import read_files
from service.errors import ImportRejectedError, RecordProblem
from service.loader import ImportReport, load
from service.model import Status
from service.store.base import CIFilter, GraphStore
from tests.conftest import TEST_DATA

BUNDLES = TEST_DATA / "bundles"
BASE = BUNDLES / "base.yaml"
CRLF = BUNDLES / "branch-crlf.yaml"


def import_files(store: GraphStore, *paths: Path, keep_going: bool = False) -> ImportReport:
    return load(store, read_files("bundle", list(paths)), keep_going=keep_going)


def store_state(store: GraphStore) -> tuple[int, list[Any], list[Any]]:
    """Return the version, every CI and every relationship, to compare a store before and after."""
    cis = store.list_cis(CIFilter(), 1000, None).items
    relationships = [r for ci in cis for r in store.relationships_of(ci.id, "outgoing")]
    return store.version(), cis, relationships


def problem_keys(problems: list[RecordProblem]) -> set[tuple[str, str, str]]:
    return {(Path(problem.source).name, problem.record, problem.field) for problem in problems}


@pytest.fixture
def base_store(store: GraphStore) -> GraphStore:
    """A store holding ``base.yaml``, so each test can check that a rejected import left it as it was."""
    import_files(store, BASE)
    return store


# Each bad file: one problem per (record, field), all named in the error message.
BAD_FILES = [
    pytest.param("missing-id.yaml", [("cis#1", "id")], id="missing-id"),
    pytest.param(
        "unknown-relationship-type.yaml",
        [("relationships#1 (new-1 -USES-> zürich-db)", "type")],
        id="unknown-relationship-type",
    ),
    pytest.param(
        "unknown-ci.yaml", [("relationships#0 (new-1 -DEPENDS_ON-> no-such-db)", "target")], id="unknown-ci"
    ),
    pytest.param(
        "conflicting-duplicate.yaml",
        [("cis#0 (id 'new-1')", "id"), ("cis#2 (id 'new-1')", "id")],
        id="conflicting-duplicate-id",
    ),
    pytest.param(
        "conflicting-relationship.yaml",
        [
            ("relationships#0 (new-1 -DEPENDS_ON-> zürich-db)", "strength"),
            ("relationships#1 (new-1 -DEPENDS_ON-> zürich-db)", "strength"),
        ],
        id="conflicting-duplicate-relationship",
    ),
    pytest.param(
        "self-dependency.yaml", [("relationships#0 (new-1 -DEPENDS_ON-> new-1)", "target")], id="self-dependency"
    ),
    pytest.param("invalid-yaml.yaml", [("line 5, column 14", "(file)")], id="invalid-yaml"),
    pytest.param("invalid-json.json", [("line 4, column 39", "(file)")], id="invalid-json"),
    pytest.param("not-utf8.yaml", [("line 3", "(file)")], id="not-utf8"),
    pytest.param("list.yaml", [("(bundle)", "(bundle)")], id="bundle-is-list"),
    pytest.param("unknown-section.yaml", [("(bundle)", "runbooks")], id="unknown-section"),
    pytest.param("time-without-zone.yaml", [("cis#0 (id 'new-1')", "valid_from")], id="time-without-zone"),
    pytest.param(
        "time-without-zone-unquoted.yaml", [("cis#0 (id 'new-1')", "valid_from")], id="yaml-time-without-zone"
    ),
    pytest.param(
        "valid-until-before-from.yaml",
        [("relationships#0 (new-1 -DEPENDS_ON-> zürich-db)", "valid_until")],
        id="valid-until-before-valid-from",
    ),
    pytest.param(
        "redundancy-without-minimum.yaml",
        [("relationships#0 (new-1 -DEPENDS_ON-> trunk-a)", "redundancy")],
        id="redundancy-without-minimum",
    ),
    pytest.param(
        "redundancy-both-minimums.yaml",
        [("relationships#0 (new-1 -DEPENDS_ON-> trunk-a)", "redundancy")],
        id="redundancy-both-minimums",
    ),
    pytest.param(
        "redundancy-disagree.yaml",
        [
            ("relationships#0 (new-1 -DEPENDS_ON-> trunk-a)", "redundancy"),
            ("relationships#1 (new-1 -DEPENDS_ON-> trunk-b)", "redundancy"),
        ],
        id="redundancy-members-disagree",
    ),
    pytest.param(
        "redundancy-disagree-stored.yaml",
        [("relationships#0 (pbx-1 -DEPENDS_ON-> trunk-c)", "redundancy")],
        id="redundancy-disagrees-with-stored",
    ),
]


@pytest.mark.parametrize(("file_name", "expected"), BAD_FILES)
def test_loader_rejects_bad_file(base_store: GraphStore, file_name: str, expected: list[tuple[str, str]]) -> None:
    with pytest.raises(ImportRejectedError) as excinfo:
        import_files(base_store, BUNDLES / file_name)

    assert problem_keys(excinfo.value.problems) == {(file_name, record, field) for record, field in expected}


@pytest.mark.parametrize(("file_name", "expected"), BAD_FILES)
def test_loader_error_names_file_record_field(
    base_store: GraphStore, file_name: str, expected: list[tuple[str, str]]
) -> None:
    with pytest.raises(ImportRejectedError) as excinfo:
        import_files(base_store, BUNDLES / file_name)

    message = str(excinfo.value)
    for record, field in expected:
        assert f"{BUNDLES / file_name}: record {record}, field '{field}': " in message


@pytest.mark.parametrize(("file_name", "expected"), BAD_FILES)
def test_loader_rejected_file_writes_nothing(
    base_store: GraphStore, file_name: str, expected: list[tuple[str, str]]
) -> None:
    before = store_state(base_store)

    with pytest.raises(ImportRejectedError):
        import_files(base_store, BUNDLES / file_name)

    assert store_state(base_store) == before


@pytest.mark.parametrize(
    ("file_name", "fragment"),
    [
        pytest.param("missing-id.yaml", "add it", id="missing-id"),
        pytest.param("unknown-relationship-type.yaml", "use one of 'DEPENDS_ON'", id="unknown-type"),
        pytest.param("unknown-ci.yaml", "'no-such-db' not found", id="unknown-ci"),
        pytest.param("conflicting-duplicate.yaml", "with a different type; keep one", id="conflicting-duplicate"),
        pytest.param("conflicting-relationship.yaml", "with a different strength", id="conflicting-relationship"),
        pytest.param("self-dependency.yaml", "cannot depend on itself", id="self-dependency"),
        pytest.param("invalid-yaml.yaml", "invalid YAML", id="invalid-yaml"),
        pytest.param("not-utf8.yaml", "convert the file to UTF-8", id="not-utf8"),
        pytest.param("list.yaml", "not a list", id="bundle-is-list"),
        pytest.param("unknown-section.yaml", "unknown section 'runbooks'", id="unknown-section"),
        pytest.param("time-without-zone.yaml", "has no time zone", id="time-without-zone"),
        pytest.param("time-without-zone-unquoted.yaml", "has no time zone", id="yaml-time-without-zone"),
        pytest.param("valid-until-before-from.yaml", "is not after valid_from", id="valid-until-before-from"),
        pytest.param("redundancy-without-minimum.yaml", "set exactly one of", id="redundancy-without-minimum"),
        pytest.param("redundancy-both-minimums.yaml", "set exactly one of", id="redundancy-both-minimums"),
        pytest.param("redundancy-disagree.yaml", "min_available 2, hard", id="redundancy-disagree"),
        pytest.param(
            "redundancy-disagree-stored.yaml", "stored with min_available 1, hard", id="redundancy-stored"
        ),
    ],
)
def test_loader_error_explains_fix(base_store: GraphStore, file_name: str, fragment: str) -> None:
    with pytest.raises(ImportRejectedError, match=fragment):
        import_files(base_store, BUNDLES / file_name)


def test_loader_reference_to_invalid_ci(store: GraphStore) -> None:
    with pytest.raises(ImportRejectedError) as excinfo:
        import_files(store, BUNDLES / "keep-going.yaml")

    [problem] = [p for p in excinfo.value.problems if p.record.startswith("relationships#1 ")]
    assert problem.field == "target"
    assert "fix the CI's own record if it was rejected" in problem.message


def test_loader_reference_to_conflicting_ci(store: GraphStore, tmp_path: Path) -> None:
    bundle = tmp_path / "conflict.yaml"
    bundle.write_text(
        "cis:\n  - {id: a, type: service}\n  - {id: a, type: host}\n  - {id: b, type: service}\n"
        "relationships:\n  - {source: b, type: DEPENDS_ON, target: a}\n",
        encoding="utf-8",
    )

    with pytest.raises(ImportRejectedError) as excinfo:
        import_files(store, bundle)

    [problem] = [p for p in excinfo.value.problems if p.record.startswith("relationships#0 ")]
    assert "defined more than once with different fields" in problem.message


# Files that must import


def test_loader_imports_base_bundle(store: GraphStore) -> None:
    report = import_files(store, BASE)

    assert report.rejected == []
    assert report.result.cis_created == 11
    assert report.result.relationships_created == 9
    assert store.version() > 0


def test_loader_keeps_non_ascii_text(store: GraphStore) -> None:
    import_files(store, BASE)

    cis = store.get_cis(["pbx-1", "checkout", "zürich-db", "shop"])
    assert cis["pbx-1"].name == "Telefonanlage Zürich"
    assert cis["pbx-1"].owner == "Équipe Téléphonie"
    assert cis["pbx-1"].tags == ("voice", "zürich")
    assert cis["checkout"].name == "東京チェックアウト"
    assert cis["shop"].name == "Boutique en ligne – Café"


def test_loader_reads_yaml_dates_as_text(store: GraphStore) -> None:
    import_files(store, BASE)

    cis = store.get_cis(["zürich-db", "shop"])
    assert cis["zürich-db"].attributes == {"installed": "2024-05-01", "rack": "R-12"}
    assert cis["shop"].valid_from is not None
    assert cis["shop"].valid_from.isoformat() == "2025-01-01T00:00:00+00:00"


def test_loader_keeps_time_offset(store: GraphStore) -> None:
    import_files(store, BASE)

    [relationship] = [r for r in store.relationships_of("checkout", "outgoing") if r.type.value == "DEPENDS_ON"]
    assert relationship.valid_from is not None
    assert relationship.valid_from.isoformat() == "2025-05-31T22:00:00+00:00"


def test_loader_imports_crlf_file(store: GraphStore) -> None:
    assert b"\r\n" in CRLF.read_bytes()

    report = import_files(store, CRLF)

    assert report.rejected == []
    cis = store.get_cis(["köln-router", "köln-pbx"])
    assert cis["köln-router"].name == "Router Filiale Köln"
    assert cis["köln-router"].owner == "Réseau Ouest"
    assert [r.target for r in store.relationships_of("köln-pbx", "outgoing")] == ["köln-router"]


def test_loader_identical_duplicates_imported_once(store: GraphStore) -> None:
    report = import_files(store, BUNDLES / "identical-duplicate.yaml")

    assert report.rejected == []
    assert report.result.cis_created == 2
    assert report.result.relationships_created == 1
    assert store.get_cis(["new-1"])["new-1"].name == "Neuer Dienst"


# keep_going


def test_loader_keep_going_lists_every_rejected_record(base_store: GraphStore) -> None:
    report = import_files(base_store, BUNDLES / "keep-going.yaml", keep_going=True)

    assert problem_keys(report.rejected) == {
        ("keep-going.yaml", "cis#2 (id 'new-3')", "type"),
        ("keep-going.yaml", "relationships#1 (new-1 -DEPENDS_ON-> new-3)", "target"),
        ("keep-going.yaml", "relationships#2 (new-2 -RUNS_ON-> new-2)", "target"),
        ("keep-going.yaml", "relationships#3 (new-1 -USES-> zürich-db)", "type"),
    }


def test_loader_keep_going_writes_valid_records(base_store: GraphStore) -> None:
    version = base_store.version()

    report = import_files(base_store, BUNDLES / "keep-going.yaml", keep_going=True)

    assert report.result.cis_created == 2
    assert report.result.relationships_created == 1
    assert set(base_store.get_cis(["new-1", "new-2", "new-3"])) == {"new-1", "new-2"}
    assert [r.target for r in base_store.relationships_of("new-1", "outgoing")] == ["new-2"]
    assert base_store.version() > version


def test_loader_keep_going_rejects_every_conflicting_copy(store: GraphStore) -> None:
    report = import_files(store, BUNDLES / "conflicting-duplicate.yaml", keep_going=True)

    assert problem_keys(report.rejected) == {
        ("conflicting-duplicate.yaml", "cis#0 (id 'new-1')", "id"),
        ("conflicting-duplicate.yaml", "cis#2 (id 'new-1')", "id"),
    }
    assert set(store.get_cis(["new-1", "new-2"])) == {"new-2"}


def test_loader_keep_going_rejects_whole_disagreeing_group(base_store: GraphStore) -> None:
    report = import_files(base_store, BUNDLES / "redundancy-disagree.yaml", keep_going=True)

    assert len(report.rejected) == 2
    assert base_store.relationships_of("new-1", "outgoing") == []


def test_loader_keep_going_other_file_still_imported(store: GraphStore) -> None:
    report = import_files(store, BUNDLES / "not-utf8.yaml", CRLF, keep_going=True)

    assert problem_keys(report.rejected) == {("not-utf8.yaml", "line 3", "(file)")}
    assert set(store.get_cis(["köln-router", "köln-pbx"])) == {"köln-router", "köln-pbx"}


# Re-imports and updates


@pytest.mark.parametrize("path", [BASE, CRLF], ids=["base", "crlf"])
def test_loader_reimport_changes_nothing(store: GraphStore, path: Path) -> None:
    import_files(store, path)
    before = store_state(store)

    report = import_files(store, path)

    assert report.result.cis_created == 0
    assert report.result.cis_updated == 0
    assert report.result.relationships_created == 0
    assert report.result.relationships_updated == 0
    assert report.result.changed is False
    assert store_state(store) == before


def test_loader_one_changed_ci_field_updates_one_record(store: GraphStore, tmp_path: Path) -> None:
    import_files(store, BASE)
    version = store.version()
    changed = tmp_path / "base.yaml"
    text = BASE.read_text(encoding="utf-8")
    changed.write_text(text.replace("owner: チーム決済", "owner: チーム請求"), encoding="utf-8")

    report = import_files(store, changed)

    assert report.result.cis_updated == 1
    assert report.result.cis_created == 0
    assert report.result.relationships_updated == 0
    assert report.result.relationships_created == 0
    assert store.version() > version
    assert store.get_cis(["checkout"])["checkout"].owner == "チーム請求"


def test_loader_one_changed_relationship_field_updates_one_record(store: GraphStore, tmp_path: Path) -> None:
    import_files(store, BASE)
    version = store.version()
    changed = tmp_path / "base.yaml"
    changed.write_text(
        BASE.read_text(encoding="utf-8").replace("strength: soft", "strength: hard"), encoding="utf-8"
    )

    report = import_files(store, changed)

    assert report.result.relationships_updated == 1
    assert report.result.relationships_created == 0
    assert report.result.cis_updated == 0
    assert store.version() > version


def test_loader_status_change_updates_one_record(store: GraphStore, tmp_path: Path) -> None:
    import_files(store, CRLF)
    version = store.version()
    changed = tmp_path / "branch.yaml"
    changed.write_bytes(
        CRLF.read_bytes().replace(b"    type: service\r\n", b"    type: service\r\n    status: down\r\n")
    )

    report = import_files(store, changed)

    assert report.result.cis_updated == 1
    assert store.version() > version
    assert store.get_cis(["köln-pbx"])["köln-pbx"].status is Status.DOWN
