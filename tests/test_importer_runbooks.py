"""Tests of the Markdown runbook importer, on our own samples and on the prometheus-operator runbooks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from importers import kubernetes, native, read_files, runbooks
from importers.runbooks import parse_runbook
from importers.source import SourceError
from service.errors import ImportRejectedError
from service.loader import load
from service.model import (
    CI,
    Contact,
    EscalationStep,
    Procedure,
    ProcedureAction,
    ProcedureLevel,
    RelatedTo,
    RelationshipType,
    Risk,
    Selector,
    Step,
    selector_matches_attributes,
)
from service.records import ImportBatch
from service.store.base import CIFilter, GraphStore
from tests.conftest import SHARED_DATA, TEST_DATA

SAMPLES = TEST_DATA / "runbooks"
GOOD = SAMPLES / "good"
BAD = SAMPLES / "bad"
SHOP_MAPPING = SAMPLES / "shop.mapping.yaml"
TOPOLOGY = SAMPLES / "topology.yaml"
EXAMPLE_MAPPING = Path(__file__).resolve().parents[1] / "examples" / "runbooks" / "prometheus-operator.mapping.yaml"

REAL_RUNBOOKS = SHARED_DATA / "runbooks" / "prometheus-operator"
BOUTIQUE_MANIFESTS = SHARED_DATA / "online-boutique" / "kubernetes-manifests.yaml"
needs_real_runbooks = pytest.mark.skipif(
    not REAL_RUNBOOKS.is_dir() or not BOUTIQUE_MANIFESTS.is_file(),
    reason=f"the prometheus-operator runbooks or Online Boutique manifests are not in {SHARED_DATA}",
)
STANDARD_SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation")


def good_runbook_files() -> list[Path]:
    return sorted(path for path in GOOD.rglob("*.md") if path.name != "_index.md")


def procedures_by_id(batch: ImportBatch) -> dict[str, Procedure]:
    return {procedure.id: procedure for procedure, _ in batch.procedures}


def read_one(name: str) -> Procedure:
    batch = runbooks.read(GOOD / name)
    assert batch.problems == []
    assert len(batch.procedures) == 1
    return batch.procedures[0][0]


def write_mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def read_good(tmp_path: Path, mapping_text: str) -> dict[str, Procedure]:
    batch = runbooks.read_many([GOOD], mapping=write_mapping(tmp_path, mapping_text))
    assert batch.problems == []
    return procedures_by_id(batch)


def all_cis(store: GraphStore) -> list[CI]:
    cis: list[CI] = []
    after = None
    while True:
        page = store.list_cis(CIFilter(), first=500, after=after)
        cis.extend(page.items)
        if not page.has_next_page:
            return cis
        after = page.end_cursor


# Parsing one file


@pytest.mark.parametrize(
    ("name", "title"),
    [
        pytest.param("title-only.md", "Search index lagging behind the catalog", id="front-matter-beats-heading"),
        pytest.param("hugo-keys.md", "Order queue backlog", id="front-matter-without-heading"),
        pytest.param("no-front-matter.md", "Restart the cart cache", id="heading"),
        pytest.param("crlf.md", "Payment latency high", id="crlf"),
        pytest.param("non-ascii.md", "Zahlungsdienst neu starten 🔁", id="non-ascii-with-bom"),
        pytest.param("code-fence.md", "Rotate the TLS certificate", id="code-fence"),
    ],
)
def test_read_title(name: str, title: str) -> None:
    assert read_one(name).title == title


@pytest.mark.parametrize(
    ("name", "step_titles"),
    [
        pytest.param("title-only.md", ["Meaning", "Mitigation"], id="title-only"),
        pytest.param(
            "full-fields.md",
            ["Confirm that the primary is lost", "Promote the standby", "Point checkout at the standby"],
            id="full-fields",
        ),
        pytest.param("hugo-keys.md", ["Meaning", "Mitigation"], id="hugo-keys"),
        pytest.param("no-front-matter.md", ["Check", "Restart"], id="no-front-matter"),
        pytest.param("crlf.md", ["Diagnosis", "Mitigation"], id="crlf"),
        pytest.param("non-ascii.md", ["Prüfen", "再起動"], id="non-ascii"),
        pytest.param("code-fence.md", ["Inspect", "Replace"], id="code-fence"),
        pytest.param("empty-section.md", ["Diagnosis"], id="empty-section"),
    ],
)
def test_read_step_titles_in_order(name: str, step_titles: list[str]) -> None:
    assert [step.title for step in read_one(name).steps] == step_titles


@pytest.mark.parametrize(
    ("name", "description"),
    [
        pytest.param(
            "no-front-matter.md",
            "The cart cache keeps sessions for 30 minutes, so a restart logs nobody out\nwhen it takes less than that.",
            id="text-below-heading",
        ),
        pytest.param("non-ascii.md", "Der Zahlungsdienst (決済サービス) antwortet nicht.", id="non-ascii"),
        pytest.param("crlf.md", "Payments take longer than two seconds.", id="crlf"),
        pytest.param(
            "full-fields.md", "Move checkout writes to the standby when the primary is lost.", id="front-matter"
        ),
        pytest.param("title-only.md", None, id="none"),
        pytest.param("hugo-keys.md", None, id="none-without-heading"),
    ],
)
def test_read_description(name: str, description: str | None) -> None:
    assert read_one(name).description == description


def test_read_step_keeps_markdown_as_written() -> None:
    steps = read_one("full-fields.md").steps

    assert steps[1] == Step(
        title="Promote the standby",
        text=(
            "1. Stop replication on the standby.\n"
            "2. Promote it:\n"
            "\n"
            "   ```shell\n"
            "   pg_ctl promote -D /var/lib/postgresql/data\n"
            "   ```"
        ),
    )


def test_read_code_hash_not_heading() -> None:
    inspect, replace = read_one("code-fence.md").steps

    assert "# not a heading" in inspect.text
    assert "## not a section either" in inspect.text
    assert "### Kept inside the step" in inspect.text
    assert replace.text.startswith("    # indented code, not a heading\n")


def test_read_full_front_matter_fields() -> None:
    procedure = read_one("full-fields.md")

    assert procedure.id == "PROC-CHECKOUT-FAILOVER"
    assert procedure.level is ProcedureLevel.SERVICE
    assert procedure.action is ProcedureAction.FAILOVER
    assert procedure.owner == "checkout-team"
    assert procedure.risk is Risk.HIGH
    assert procedure.expected_minutes == 15
    assert procedure.contacts == (Contact("Checkout on-call", "first responder", "+49 30 5550100"),)
    assert procedure.escalation == (EscalationStep(20, Contact("Database team", reach="#db-oncall")),)
    assert procedure.applies_to == ("checkout-db",)
    assert procedure.selectors == (
        Selector(type="database", environment="production"),
        Selector(related_to=RelatedTo("checkout-db", RelationshipType.DEPENDS_ON)),
    )
    assert procedure.last_reviewed == datetime(2026, 1, 15, tzinfo=UTC)
    assert procedure.last_drilled == datetime(2025, 11, 3, 9, 30, tzinfo=UTC)
    assert procedure.tags == ("checkout", "database")


def test_read_hugo_keys_in_attributes() -> None:
    procedure = read_one("hugo-keys.md")

    assert procedure.attributes == {
        "weight": 20,
        "bookCollapseSection": True,
        "bookFlatSection": False,
        "bookHidden": False,
        "aliases": ["/order-queue-backlog/"],
        "date": "2025-06-01",
        "alert": "hugo-keys",
    }


def test_read_introduction_kept_beside_description() -> None:
    attributes = read_one("full-fields.md").attributes

    assert attributes["introduction"] == "Only for the production pair; staging has no standby."
    assert attributes["alert"] == "CheckoutDatabaseDown"
    assert attributes["severity"] == "critical"


@pytest.mark.parametrize(
    ("name", "expected_id"),
    [
        pytest.param("title-only.md", "runbook/title-only", id="default"),
        pytest.param("full-fields.md", "PROC-CHECKOUT-FAILOVER", id="front-matter"),
    ],
)
def test_read_id(name: str, expected_id: str) -> None:
    assert read_one(name).id == expected_id


def test_read_defaults_without_front_matter() -> None:
    procedure = read_one("no-front-matter.md")

    assert procedure.level is ProcedureLevel.SYSTEM
    assert procedure.action is ProcedureAction.DIAGNOSE
    assert procedure.source == "runbook"
    assert procedure.source_id == "no-front-matter.md"
    assert procedure.owner is None
    assert procedure.tags == ()


def test_read_many_source_id_relative_to_folder() -> None:
    batch = runbooks.read_many([GOOD])

    assert procedures_by_id(batch)["runbook/DiskAlmostFull"].source_id == "storage/DiskAlmostFull.md"


def test_read_many_follows_sorted_paths() -> None:
    batch = runbooks.read_many([GOOD])

    expected = [path.relative_to(GOOD).as_posix() for path in good_runbook_files()]
    assert [procedure.source_id for procedure, _ in batch.procedures] == expected


def test_read_crlf_same_as_lf() -> None:
    text = (GOOD / "crlf.md").read_bytes().decode("utf-8")
    assert "\r\n" in text

    from_crlf = parse_runbook(text, "crlf.md", "crlf.md")
    from_lf = parse_runbook(text.replace("\r\n", "\n"), "crlf.md", "crlf.md")

    assert from_crlf == from_lf


def test_parse_runbook_cr_line_endings() -> None:
    text = "---\rtitle: Old Mac file\r---\r\r## Check\r\rLine one\rLine two\r"

    runbook = parse_runbook(text, "mac.md", "mac.md")

    assert runbook.front_matter == {"title": "Old Mac file"}
    assert [(section.heading, section.text) for section in runbook.sections] == [("Check", "Line one\nLine two")]


def test_parse_runbook_closing_hashes_removed() -> None:
    runbook = parse_runbook("# Title #\n\n## Step ##\n\ntext\n", "x.md", "x.md")

    assert runbook.heading == "Title"
    assert runbook.sections[0].heading == "Step"


def test_parse_runbook_second_title_heading() -> None:
    runbook = parse_runbook("# Title\n\n## One\n\nfirst\n\n# Two\n\nsecond\n", "x.md", "x.md")

    assert [(section.heading, section.text) for section in runbook.sections] == [("One", "first"), ("Two", "second")]


def test_parse_runbook_unclosed_fence_runs_to_end() -> None:
    runbook = parse_runbook("---\ntitle: T\n---\n## A\n\n```\ncode\n## B\n", "x.md", "x.md")

    assert [(section.heading, section.text) for section in runbook.sections] == [("A", "```\ncode\n## B")]
    assert runbook.unclosed_fence_line == 6


def test_read_unclosed_fence_warns_with_line() -> None:
    batch = runbooks.read(GOOD / "unclosed-fence.md")

    assert [step.title for step in batch.procedures[0][0].steps] == ["Flush"]
    fence_warnings = [warning for warning in batch.warnings if "is never closed" in warning]
    assert len(fence_warnings) == 1
    assert fence_warnings[0].startswith(f"{GOOD / 'unclosed-fence.md'}: runbook 'runbook/unclosed-fence'")
    assert "opened on line 5" in fence_warnings[0]


def test_read_empty_section_warns_and_is_listed() -> None:
    batch = runbooks.read(GOOD / "empty-section.md")

    procedure = batch.procedures[0][0]
    assert procedure.attributes["empty_sections"] == ["Mitigation"]
    section_warnings = [warning for warning in batch.warnings if "has no text" in warning]
    assert len(section_warnings) == 1
    assert str(GOOD / "empty-section.md") in section_warnings[0]
    assert "'Mitigation'" in section_warnings[0]


def test_read_section_index_page_skipped() -> None:
    batch = runbooks.read(GOOD / "_index.md")

    assert batch.procedures == []
    assert batch.problems == []
    assert batch.skipped == {"section index pages": 1}


def test_read_many_counts_section_index_pages() -> None:
    batch = runbooks.read_many([GOOD])

    assert batch.skipped == {"section index pages": 2}
    assert batch.problems == []
    assert len(batch.procedures) == len(good_runbook_files())


def test_read_many_file_given_twice_read_once() -> None:
    batch = runbooks.read_many([GOOD / "crlf.md", GOOD / "crlf.md"])

    assert [procedure.id for procedure, _ in batch.procedures] == ["runbook/crlf"]


def test_read_many_empty_folder_is_problem(tmp_path: Path) -> None:
    batch = runbooks.read_many([tmp_path])

    assert [(problem.source, problem.field) for problem in batch.problems] == [(str(tmp_path), "(file)")]
    assert "no '*.md' file" in batch.problems[0].message


def test_read_unlinked_runbook_warns() -> None:
    batch = runbooks.read(GOOD / "crlf.md")

    assert batch.warnings == [
        f"{GOOD / 'crlf.md'}: runbook 'runbook/crlf' applies to no CI; add a mapping rule or applies_to"
    ]


def test_read_linked_runbook_has_no_warning() -> None:
    assert runbooks.read(GOOD / "full-fields.md").warnings == []


# Bad runbooks


@pytest.mark.parametrize(
    ("name", "record", "field", "message"),
    [
        pytest.param(
            "invalid-yaml.md",
            "line 4, column 6",
            "(front matter)",
            "invalid YAML in the front matter",
            id="invalid-yaml",
        ),
        pytest.param(
            "unclosed-front-matter.md", "line 1", "(front matter)", "is not closed", id="unclosed-front-matter"
        ),
        pytest.param("not-utf8.md", "line 1", "(file)", "not valid UTF-8", id="not-utf8"),
        pytest.param("no-title.md", "runbook 'runbook/no-title'", "title", "runbook without a title", id="no-title"),
        pytest.param(
            "bad-level.md",
            "runbook 'runbook/bad-level'",
            "level",
            "'urgent' is not allowed; use one of",
            id="bad-level",
        ),
        pytest.param(
            "steps-in-front-matter.md",
            "runbook 'runbook/steps-in-front-matter'",
            "steps",
            "set by the importer",
            id="steps-in-front-matter",
        ),
    ],
)
def test_read_many_bad_runbook_problem(name: str, record: str, field: str, message: str) -> None:
    batch = runbooks.read_many([BAD / name])

    assert batch.procedures == []
    assert len(batch.problems) == 1
    problem = batch.problems[0]
    assert problem.source == str(BAD / name)
    assert problem.record == record
    assert problem.field == field
    assert message in problem.message


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("invalid-yaml.md", id="invalid-yaml"),
        pytest.param("unclosed-front-matter.md", id="unclosed-front-matter"),
        pytest.param("not-utf8.md", id="not-utf8"),
    ],
)
def test_read_unparsable_file_raises(name: str) -> None:
    with pytest.raises(SourceError, match=re.escape(str(BAD / name))):
        runbooks.read(BAD / name)


def test_read_many_missing_file_is_problem(tmp_path: Path) -> None:
    missing = tmp_path / "absent.md"

    batch = runbooks.read_many([missing])

    assert [(problem.source, problem.field) for problem in batch.problems] == [(str(missing), "(file)")]
    assert "cannot read the file" in batch.problems[0].message


def test_parse_runbook_front_matter_not_mapping() -> None:
    with pytest.raises(SourceError, match="not a mapping"):
        parse_runbook("---\n- a\n- b\n---\n# Title\n", "list.md", "list.md")


def test_parse_runbook_toml_front_matter_rejected() -> None:
    with pytest.raises(SourceError, match="TOML front matter"):
        parse_runbook('+++\ntitle = "x"\n+++\n# Title\n', "toml.md", "toml.md")


# The mapping


def test_mapping_alert_glob_on_file_stem(tmp_path: Path) -> None:
    procedures = read_good(tmp_path, "rules:\n  - match: {alert: 'no-front-*'}\n    selectors: [{type: cache}]\n")

    assert procedures["runbook/no-front-matter"].selectors == (Selector(type="cache"),)
    assert procedures["runbook/crlf"].selectors == ()


def test_mapping_alert_from_front_matter(tmp_path: Path) -> None:
    procedures = read_good(tmp_path, "rules:\n  - match: {alert: 'Checkout*'}\n    applies_to: [checkout]\n")

    assert procedures["PROC-CHECKOUT-FAILOVER"].applies_to == ("checkout-db", "checkout")


def test_mapping_alert_glob_is_case_sensitive(tmp_path: Path) -> None:
    procedures = read_good(tmp_path, "rules:\n  - match: {alert: 'checkout*'}\n    applies_to: [checkout]\n")

    assert procedures["PROC-CHECKOUT-FAILOVER"].applies_to == ("checkout-db",)


def test_mapping_path_glob_on_relative_path(tmp_path: Path) -> None:
    procedures = read_good(tmp_path, "rules:\n  - match: {path: 'storage/*'}\n    selectors: [{type: host}]\n")

    linked = {procedure_id for procedure_id, p in procedures.items() if Selector(type="host") in p.selectors}
    assert linked == {"runbook/DiskAlmostFull"}


def test_mapping_front_matter_condition(tmp_path: Path) -> None:
    procedures = read_good(tmp_path, "rules:\n  - match: {front_matter: {severity: critical}}\n    tags: [paging]\n")

    tagged = {procedure_id for procedure_id, procedure in procedures.items() if "paging" in procedure.tags}
    assert tagged == {"runbook/DiskAlmostFull", "PROC-CHECKOUT-FAILOVER"}


def test_mapping_all_conditions_must_hold(tmp_path: Path) -> None:
    mapping = "rules:\n  - match: {front_matter: {severity: critical}, path: 'storage/*'}\n    tags: [paging]\n"

    procedures = read_good(tmp_path, mapping)

    tagged = {procedure_id for procedure_id, procedure in procedures.items() if "paging" in procedure.tags}
    assert tagged == {"runbook/DiskAlmostFull"}


def test_mapping_every_matching_rule_adds_links(tmp_path: Path) -> None:
    mapping = """
rules:
  - match: {alert: DiskAlmostFull}
    selectors: [{type: host}]
    applies_to: [storage-node-1]
  - match: {path: 'storage/*'}
    selectors: [{type: vm}, {type: host}]
"""
    procedure = read_good(tmp_path, mapping)["runbook/DiskAlmostFull"]

    assert procedure.selectors == (Selector(type="host"), Selector(type="vm"))
    assert procedure.applies_to == ("storage-node-1",)


def test_mapping_first_matching_rule_sets_level(tmp_path: Path) -> None:
    mapping = """
rules:
  - match: {alert: crlf}
    level: transaction
  - match: {alert: 'c*'}
    level: tooling
    owner: second-rule
"""
    procedure = read_good(tmp_path, mapping)["runbook/crlf"]

    assert procedure.level is ProcedureLevel.TRANSACTION
    assert procedure.owner == "second-rule"


def test_mapping_front_matter_beats_rules(tmp_path: Path) -> None:
    mapping = "rules:\n  - match: {alert: 'Checkout*'}\n    level: system\n    action: restart\n    owner: other-team\n"

    procedure = read_good(tmp_path, mapping)["PROC-CHECKOUT-FAILOVER"]

    assert procedure.level is ProcedureLevel.SERVICE
    assert procedure.action is ProcedureAction.FAILOVER
    assert procedure.owner == "checkout-team"


def test_mapping_defaults_fill_the_gaps(tmp_path: Path) -> None:
    mapping = """
defaults:
  id_prefix: shop/
  level: tooling
  owner: platform-team
  risk: low
  expected_minutes: 10
  contacts: [{name: Platform on-call}]
rules: []
"""
    procedure = read_good(tmp_path, mapping)["shop/no-front-matter"]

    assert procedure.level is ProcedureLevel.TOOLING
    assert procedure.owner == "platform-team"
    assert procedure.risk is Risk.LOW
    assert procedure.expected_minutes == 10
    assert procedure.contacts == (Contact("Platform on-call"),)


def test_mapping_defaults_lose_to_front_matter(tmp_path: Path) -> None:
    mapping = "defaults:\n  id_prefix: shop/\n  risk: low\n  contacts: [{name: Platform on-call}]\n"

    procedure = read_good(tmp_path, mapping)["PROC-CHECKOUT-FAILOVER"]

    assert procedure.risk is Risk.HIGH
    assert procedure.contacts == (Contact("Checkout on-call", "first responder", "+49 30 5550100"),)


def test_mapping_tags_combined_without_repeats(tmp_path: Path) -> None:
    mapping = """
defaults:
  tags: [shop, database]
rules:
  - match: {alert: 'Checkout*'}
    tags: [paging, checkout]
"""
    procedure = read_good(tmp_path, mapping)["PROC-CHECKOUT-FAILOVER"]

    assert procedure.tags == ("checkout", "database", "paging", "shop")


def test_mapping_unlinked_runbook_warns(tmp_path: Path) -> None:
    mapping = write_mapping(tmp_path, "rules:\n  - match: {path: 'storage/*'}\n    selectors: [{type: host}]\n")

    batch = runbooks.read_many([GOOD], mapping=mapping)

    unlinked = [warning.split(": ")[0] for warning in batch.warnings if "applies to no CI" in warning]
    # DiskAlmostFull is linked by the rule, full-fields by its own front matter.
    linked_names = {"DiskAlmostFull.md", "full-fields.md"}
    assert unlinked == [str(path) for path in good_runbook_files() if path.name not in linked_names]


def test_mapping_rule_matching_nothing_warns(tmp_path: Path) -> None:
    mapping = write_mapping(tmp_path, "rules:\n  - match: {alert: NoSuchAlert}\n    selectors: [{type: host}]\n")

    batch = runbooks.read_many([GOOD], mapping=mapping)

    assert f"{mapping}: rules[0] matches no runbook of this import; check its 'match' conditions" in batch.warnings


@pytest.mark.parametrize(
    ("text", "record", "field"),
    [
        pytest.param("rule: []\n", "(mapping)", "rule", id="unknown-top-key"),
        pytest.param("rules: {match: {alert: X}}\n", "(mapping)", "rules", id="rules-not-list"),
        pytest.param("rules:\n  - selectors: [{type: host}]\n", "rules[0]", "match", id="rule-without-match"),
        pytest.param("rules:\n  - match: {}\n", "rules[0]", "match", id="empty-match"),
        pytest.param("rules:\n  - match: {alert: X, name: Y}\n", "rules[0]", "match.name", id="unknown-condition"),
        pytest.param("rules:\n  - match: {alert: 42}\n", "rules[0]", "match.alert", id="alert-not-text"),
        pytest.param("rules:\n  - match: {path: []}\n", "rules[0]", "match.path", id="empty-path-list"),
        pytest.param(
            "rules:\n  - match: {front_matter: {}}\n", "rules[0]", "match.front_matter", id="empty-front-matter"
        ),
        pytest.param(
            "rules:\n  - match: {alert: X}\n  - match: {alert: Y}\n    selectors: [{}]\n",
            "rules[1]",
            "selectors.0",
            id="empty-selector",
        ),
        pytest.param(
            "rules:\n  - match: {alert: X}\n    selectors: [{type: Host Machine}]\n",
            "rules[0]",
            "selectors.0.type",
            id="bad-selector-type",
        ),
        pytest.param("rules:\n  - match: {alert: X}\n    level: urgent\n", "rules[0]", "level", id="bad-rule-level"),
        pytest.param("rules:\n  - match: {alert: X}\n    risk: low\n", "rules[0]", "risk", id="field-not-for-rules"),
        pytest.param("rules:\n  - 'KubePod*'\n", "rules[0]", "(rule)", id="rule-not-mapping"),
        pytest.param("defaults:\n  action: reboot\n", "defaults", "action", id="bad-default-action"),
        pytest.param("defaults:\n  selectors: [{type: host}]\n", "defaults", "selectors", id="unknown-default"),
        pytest.param("defaults:\n  id_prefix: 7\n", "defaults", "id_prefix", id="id-prefix-not-text"),
        pytest.param("defaults: [level]\n", "defaults", "defaults", id="defaults-not-mapping"),
        pytest.param("- rules\n", "(mapping)", "(file)", id="not-a-mapping"),
        pytest.param("", "(mapping)", "(file)", id="empty-file"),
        pytest.param("rules: [\n", "line 2, column 1", "(file)", id="invalid-yaml"),
    ],
)
def test_load_mapping_rejects_bad_entry(tmp_path: Path, text: str, record: str, field: str) -> None:
    mapping = write_mapping(tmp_path, text)

    with pytest.raises(ImportRejectedError) as raised:
        runbooks.read_many([GOOD], mapping=mapping)

    assert [(problem.source, problem.record, problem.field) for problem in raised.value.problems] == [
        (str(mapping), record, field)
    ]


def test_load_mapping_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImportRejectedError, match="cannot read the file"):
        runbooks.read_many([GOOD], mapping=tmp_path / "absent.yaml")


def test_read_files_passes_mapping() -> None:
    batch = read_files("runbook", [GOOD], mapping=SHOP_MAPPING)

    assert procedures_by_id(batch)["runbook/DiskAlmostFull"].selectors == (Selector(type="host"),)


def test_read_files_rejects_options_of_other_format() -> None:
    with pytest.raises(TypeError, match="takes no options"):
        read_files("bundle", [TOPOLOGY], mapping=SHOP_MAPPING)


# Through the shared loader, into both stores


def load_topology(store: GraphStore) -> None:
    load(store, native.read(TOPOLOGY))


def test_load_samples_with_mapping(store: GraphStore) -> None:
    load_topology(store)

    report = load(store, runbooks.read_many([GOOD], mapping=SHOP_MAPPING))

    _, stored = store.load_procedures()
    assert report.rejected == []
    assert report.procedures_read == len(good_runbook_files())
    stored_by_id = {procedure.id: procedure for procedure in stored}
    assert len(stored_by_id) == len(good_runbook_files())
    assert stored_by_id["PROC-CHECKOUT-FAILOVER"].applies_to == ("checkout-db", "checkout")
    assert stored_by_id["runbook/DiskAlmostFull"].tags == ("paging", "shop")
    assert stored_by_id["runbook/non-ascii"].steps == (
        Step(title="Prüfen", text="Fehlermeldung „Zeitüberschreitung“ in den Logs suchen."),
        Step(title="再起動", text="Den Dienst neu starten ✅"),
    )


def test_load_stores_procedures_unchanged(store: GraphStore) -> None:
    load_topology(store)
    batch = runbooks.read_many([GOOD], mapping=SHOP_MAPPING)

    load(store, batch)

    _, stored = store.load_procedures()
    assert sorted(stored, key=lambda p: p.id) == sorted((p for p, _ in batch.procedures), key=lambda p: p.id)


def test_load_unparsable_file_rejects_all(store: GraphStore) -> None:
    load_topology(store)
    batch = runbooks.read_many([GOOD, BAD / "invalid-yaml.md"], mapping=SHOP_MAPPING)

    with pytest.raises(ImportRejectedError, match="invalid-yaml.md"):
        load(store, batch)

    _, stored = store.load_procedures()
    assert stored == []


def test_load_keep_going_lists_skipped_files(store: GraphStore) -> None:
    load_topology(store)
    batch = runbooks.read_many([GOOD, BAD], mapping=SHOP_MAPPING)

    report = load(store, batch, keep_going=True)

    _, stored = store.load_procedures()
    assert len(stored) == len(good_runbook_files())
    assert sorted(problem.source for problem in report.rejected) == sorted(str(path) for path in BAD.glob("*.md"))
    assert all(problem.message for problem in report.rejected)


def test_load_unknown_ci_rejected(store: GraphStore) -> None:
    report = load(store, runbooks.read_many([GOOD / "full-fields.md"]), keep_going=True)

    assert [(problem.source, problem.field) for problem in report.rejected] == [
        (str(GOOD / "full-fields.md"), "applies_to"),
        (str(GOOD / "full-fields.md"), "selectors.1.related_to.ci"),
    ]
    _, stored = store.load_procedures()
    assert stored == []


def test_load_selector_matching_nothing_warns(store: GraphStore, tmp_path: Path) -> None:
    load_topology(store)
    mapping = write_mapping(tmp_path, "rules:\n  - match: {alert: crlf}\n    selectors: [{type: mainframe}]\n")

    report = load(store, runbooks.read_many([GOOD / "crlf.md"], mapping=mapping))

    warnings = [warning for warning in report.warnings if "matches no CI" in warning]
    assert len(warnings) == 1
    assert str(GOOD / "crlf.md") in warnings[0]
    assert "type mainframe" in warnings[0]


# The prometheus-operator runbooks


def real_runbook_files() -> list[Path]:
    return sorted(path for path in REAL_RUNBOOKS.rglob("*.md") if path.name != "_index.md")


def outside_code(lines: list[str]) -> list[bool]:
    """Tell for each line whether it is outside a ``` code block, a fence toggling the block."""
    flags = []
    in_code = False
    for line in lines:
        if line.lstrip().startswith("```"):
            in_code = not in_code
            flags.append(False)
        else:
            flags.append(not in_code)
    return flags


def expected_standard_steps(path: Path) -> list[str]:
    """Return the standard section headings of a runbook that have text below them, in file order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    outside = outside_code(lines)
    heading_lines = [index for index, line in enumerate(lines) if line.startswith("## ") and outside[index]]
    expected = []
    for position, index in enumerate(heading_lines):
        heading = lines[index][3:].strip()
        end = heading_lines[position + 1] if position + 1 < len(heading_lines) else len(lines)
        if heading in STANDARD_SECTIONS and any(line.strip() for line in lines[index + 1 : end]):
            expected.append(heading)
    return expected


@pytest.fixture
def boutique_store(store: GraphStore) -> GraphStore:
    load(store, kubernetes.read(BOUTIQUE_MANIFESTS))
    return store


def test_example_mapping_valid() -> None:
    mapping = runbooks.load_mapping(EXAMPLE_MAPPING)

    assert mapping.rules
    assert mapping.defaults["level"] == "system"


@needs_real_runbooks
def test_real_runbooks_all_imported(boutique_store: GraphStore) -> None:
    files = real_runbook_files()

    report = load(boutique_store, runbooks.read_many([REAL_RUNBOOKS], mapping=EXAMPLE_MAPPING))

    _, stored = boutique_store.load_procedures()
    assert report.rejected == []
    assert len(stored) == len(files)
    assert {procedure.source_id for procedure in stored} == {
        path.relative_to(REAL_RUNBOOKS).as_posix() for path in files
    }
    assert report.skipped == {"section index pages": len(list(REAL_RUNBOOKS.rglob("_index.md")))}


@needs_real_runbooks
def test_real_runbooks_every_one_linked() -> None:
    batch = runbooks.read_many([REAL_RUNBOOKS], mapping=EXAMPLE_MAPPING)

    unlinked = [procedure.id for procedure, _ in batch.procedures if not (procedure.selectors or procedure.applies_to)]
    assert unlinked == []
    assert not [warning for warning in batch.warnings if "matches no runbook" in warning]


@needs_real_runbooks
def test_real_runbooks_sections_become_steps() -> None:
    batch = runbooks.read_many([REAL_RUNBOOKS], mapping=EXAMPLE_MAPPING)
    by_source_id = {procedure.source_id: procedure for procedure, _ in batch.procedures}

    for path in real_runbook_files():
        procedure = by_source_id[path.relative_to(REAL_RUNBOOKS).as_posix()]
        titles = [step.title for step in procedure.steps if step.title in STANDARD_SECTIONS]
        assert titles == expected_standard_steps(path), path


@needs_real_runbooks
def test_real_runbooks_unclosed_fence_warns() -> None:
    batch = runbooks.read_many([REAL_RUNBOOKS], mapping=EXAMPLE_MAPPING)

    warned = sorted(warning.split(": ")[0] for warning in batch.warnings if "is never closed" in warning)
    # An odd number of fence lines leaves the last block open.
    unclosed = [
        str(path)
        for path in real_runbook_files()
        if sum(line.lstrip().startswith("```") for line in path.read_text(encoding="utf-8").splitlines()) % 2
    ]
    assert warned == unclosed


@needs_real_runbooks
def test_real_runbooks_alert_is_file_stem() -> None:
    batch = runbooks.read_many([REAL_RUNBOOKS], mapping=EXAMPLE_MAPPING)

    assert sorted(procedure.attributes["alert"] for procedure, _ in batch.procedures) == sorted(
        path.stem for path in real_runbook_files()
    )


@needs_real_runbooks
def test_real_crash_looping_selects_workloads(boutique_store: GraphStore) -> None:
    load(boutique_store, runbooks.read_many([REAL_RUNBOOKS], mapping=EXAMPLE_MAPPING))
    procedure = boutique_store.get_procedures(["runbook/KubePodCrashLooping"])["runbook/KubePodCrashLooping"]
    cis = all_cis(boutique_store)

    selected = {ci.id for ci in cis if any(selector_matches_attributes(s, ci) for s in procedure.selectors)}

    with BOUTIQUE_MANIFESTS.open(encoding="utf-8") as manifests:
        deployments = {d["metadata"]["name"] for d in yaml.safe_load_all(manifests) if d and d["kind"] == "Deployment"}
    assert deployments
    assert selected == {f"k8s/default/deployment/{name}" for name in deployments}
    assert procedure.level is ProcedureLevel.SYSTEM
    assert procedure.action is ProcedureAction.DIAGNOSE


@needs_real_runbooks
def test_real_node_runbooks_select_hosts_and_vms() -> None:
    batch = runbooks.read_many([REAL_RUNBOOKS], mapping=EXAMPLE_MAPPING)

    node = [procedure for procedure, _ in batch.procedures if procedure.source_id.startswith("node/")]

    assert len(node) == len(list((REAL_RUNBOOKS / "node").glob("[!_]*.md")))
    assert all(procedure.selectors == (Selector(type="host"), Selector(type="vm")) for procedure in node)
