"""The culprit evaluation: scores, baselines, scenario files, and the shipped scenarios end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.analysis.culprits import Culprit
from service.analysis.events import build_event_index
from service.evaluation import (
    Evaluation,
    ScenarioError,
    evaluate,
    eval_group,
    find_scenarios,
    rank_by_distance,
    rank_by_recent_change,
    read_scenario,
    score,
)
from service.errors import ImportRejectedError
from service.model import Change, ChangeKind, ChangeStatus
from tests.test_culprits import ONSET, change

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"

SMALL = """\
scenario:
  name: {name}
  symptom:
    ci_ids: [web]
    started_at: "2026-03-02T10:00:00Z"
    tags: [slow_response]
  expected_root_causes: [{expected}]
cis:
  - {{id: web, type: service, status: degraded}}
  - {{id: db, type: database, status: degraded}}
  - {{id: cache, type: cache}}
relationships:
  - {{source: web, target: db, type: DEPENDS_ON}}
  - {{source: web, target: cache, type: DEPENDS_ON}}
changes:
  - {{id: CHG-1, title: Resize cache, kind: config, status: completed, affected: [cache],
     actual_start: "2026-03-02T09:50:00Z", actual_end: "2026-03-02T09:55:00Z"}}
"""


def write_small(folder: Path, name: str = "small", expected: str = "db") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SMALL.format(name=name, expected=expected), encoding="utf-8")
    return path


def culprit(ci_id: str, distance: int) -> Culprit:
    return Culprit(ci_id, 0, 0.0, [], [], [], distance, [])


@pytest.mark.parametrize(
    ("ranks", "ac1", "ac3", "avg5"),
    [
        pytest.param([1, 1, 1, 1], 1.0, 1.0, 1.0, id="all-first"),
        pytest.param([1, 2, 3, None], 0.25, 0.75, (0.25 + 0.5 + 0.75 + 0.75 + 0.75) / 5, id="mixed"),
        pytest.param([6, None], 0.0, 0.0, 0.0, id="none-in-top-5"),
        pytest.param([5], 0.0, 0.0, 0.2, id="fifth"),
    ],
)
def test_score_follows_rcaeval_definitions(ranks: list[int | None], ac1: float, ac3: float, avg5: float) -> None:
    scores = score(ranks)

    assert scores.ac1 == pytest.approx(ac1)
    assert scores.ac3 == pytest.approx(ac3)
    assert scores.avg5 == pytest.approx(avg5)


def test_score_without_ranks_raises() -> None:
    with pytest.raises(ValueError, match="no scenario ranks to score"):
        score([])


def test_recent_change_baseline_orders_by_latest_change_end() -> None:
    index = build_event_index(
        [
            change("C1", "old", ended_before=120),
            change("C2", "new", ended_before=5),
            change("C3", "running", ended_before=None, started_before=300),
            change("C4", "later", started_before=-10, ended_before=-20),
        ],
        [],
    )
    candidates = [culprit("none-far", 3), culprit("old", 1), culprit("new", 2), culprit("running", 4),
                  culprit("none-near", 1), culprit("later", 1)]

    order = rank_by_recent_change(candidates, index, ONSET)

    assert order == ["running", "new", "old", "later", "none-near", "none-far"]


def test_distance_baseline_breaks_ties_by_id() -> None:
    order = rank_by_distance([culprit("b", 1), culprit("c", 0), culprit("a", 1)])

    assert order == ["c", "a", "b"]


def test_read_scenario_parses_symptom_and_strips_section(tmp_path: Path) -> None:
    scenario = read_scenario(write_small(tmp_path))

    assert scenario.name == "small"
    assert scenario.symptom.ci_ids == ("web",)
    assert scenario.symptom.started_at == ONSET
    assert scenario.expected == ("db",)
    assert "scenario" not in scenario.bundle
    assert set(scenario.bundle) == {"cis", "relationships", "changes"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("cis: []\n", "missing the top-level 'scenario' section", id="no-section"),
        pytest.param(
            "scenario: {name: x, symptom: {ci_ids: [web], started_at: '2026-03-02T10:00:00'}, "
            "expected_root_causes: [db]}\n",
            "scenario.symptom.started_at '2026-03-02T10:00:00' has no time zone",
            id="naive-onset",
        ),
        pytest.param(
            "scenario: {name: x, symptom: {ci_ids: [web], started_at: '2026-03-02T10:00:00Z'}}\n",
            "scenario.expected_root_causes must be a non-empty list of strings",
            id="no-expected",
        ),
        pytest.param(
            "scenario: {name: x, symptom: {ci_ids: [], started_at: '2026-03-02T10:00:00Z'}, "
            "expected_root_causes: [db]}\n",
            "scenario.symptom.ci_ids must be a non-empty list of strings",
            id="no-symptom-cis",
        ),
        pytest.param("scenario: [1, 2]\n", "'scenario' must be a mapping", id="not-mapping"),
    ],
)
def test_read_scenario_invalid_names_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ScenarioError, match=re.escape(message)) as raised:
        read_scenario(path)

    assert raised.value.message.startswith(f"{path}: ")


def test_find_scenarios_skips_base_bundles_in_folders(tmp_path: Path) -> None:
    write_small(tmp_path, "one")
    (tmp_path / "base.yaml").write_text("cis: []\n", encoding="utf-8")

    assert find_scenarios([tmp_path]) == [tmp_path / "one.yaml"]


def test_find_scenarios_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="missing: file or folder not found"):
        find_scenarios([tmp_path / "missing"])


def test_evaluate_ranks_small_scenario_through_store(tmp_path: Path) -> None:
    evaluation = evaluate([write_small(tmp_path)], work_dir=tmp_path)

    result = evaluation.results[0]
    assert result.ranks == {"faultgraph": 1, "recent-change": 3, "closest-dependency": 3}
    assert result.top["faultgraph"][0] == "db"
    assert result.top["recent-change"][0] == "cache"
    assert result.candidate_count == 3


def test_evaluate_duplicate_names_raise(tmp_path: Path) -> None:
    write_small(tmp_path, "same")
    (tmp_path / "copy.yaml").write_text(SMALL.format(name="same", expected="db"), encoding="utf-8")

    with pytest.raises(ScenarioError, match="scenario name 'same' is also used by"):
        evaluate([tmp_path], work_dir=tmp_path)


def test_evaluate_expected_ci_missing_from_bundle_raises(tmp_path: Path) -> None:
    path = write_small(tmp_path, expected="nowhere")

    with pytest.raises(ScenarioError, match="CI\\(s\\) nowhere named in 'scenario' are not in its bundles"):
        evaluate([path], work_dir=tmp_path)


def test_evaluate_invalid_bundle_is_rejected_by_loader(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        SMALL.format(name="broken", expected="db") + "  - {id: CHG-2}\n", encoding="utf-8"
    )

    with pytest.raises(ImportRejectedError, match="title"):
        evaluate([path], work_dir=tmp_path)


def test_eval_command_prints_tables_and_json(tmp_path: Path) -> None:
    write_small(tmp_path)
    runner = CliRunner()

    table = runner.invoke(eval_group, ["culprits", str(tmp_path)])
    as_json = runner.invoke(eval_group, ["culprits", str(tmp_path), "--json"])

    assert table.exit_code == 0, table.output
    assert "AC@1" in table.output
    assert "small" in table.output
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.output)
    assert document["scenarios"][0]["ranks"] == {"faultgraph": 1, "recent-change": 3, "closest-dependency": 3}
    assert document["summary"]["faultgraph"]["AC@1"] == 1.0


def test_eval_command_reports_bad_scenario_as_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("scenario: {name: x}\n", encoding="utf-8")

    result = CliRunner().invoke(eval_group, ["culprits", str(tmp_path / "bad.yaml")])

    assert result.exit_code == 1
    assert "scenario.symptom is missing or not a mapping" in result.output


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    return evaluate([SCENARIOS], work_dir=tmp_path_factory.mktemp("scenarios"))


def test_shipped_scenarios_are_at_least_25(shipped: Evaluation) -> None:
    assert len(shipped.results) >= 25


def test_shipped_scenarios_faultgraph_accuracy(shipped: Evaluation) -> None:
    scores = shipped.scores["faultgraph"]

    assert scores.ac1 >= 0.8
    assert scores.ac3 >= 0.95


@pytest.mark.parametrize("baseline", ["recent-change", "closest-dependency"])
def test_shipped_scenarios_baselines_score_lower(shipped: Evaluation, baseline: str) -> None:
    scores = shipped.scores

    assert scores[baseline].ac1 < scores["faultgraph"].ac1
    assert scores[baseline].avg5 < scores["faultgraph"].avg5


def test_shipped_scenarios_every_expected_cause_is_a_candidate(shipped: Evaluation) -> None:
    missing = [result.scenario.name for result in shipped.results if result.ranks["faultgraph"] is None]

    assert missing == []


def test_shipped_scenarios_decoys_are_candidates_or_documented(shipped: Evaluation) -> None:
    # A decoy that is not even a candidate tests nothing but the walk, so most must be candidates.
    candidates_with_decoy = 0
    for result in shipped.results:
        if any(decoy in result.top["faultgraph"] or decoy in result.top["recent-change"] for decoy in result.scenario.decoys):
            candidates_with_decoy += 1

    assert candidates_with_decoy >= len(shipped.results) // 2


def test_recent_change_baseline_ignores_planned() -> None:
    planned = Change("P1", "Planned", ChangeKind.DEPLOY, ChangeStatus.APPROVED, ("db",),
                     planned_start=ONSET.replace(hour=9), planned_end=ONSET.replace(hour=9, minute=30))

    order = rank_by_recent_change([culprit("db", 2), culprit("web", 0)], build_event_index([planned], []), ONSET)

    assert order == ["web", "db"]
