"""Evaluation of likely culprits on labelled scenarios: ``faultgraph eval culprits PATH...``.

A scenario is a YAML or JSON file holding a native bundle (``cis``,
``relationships``, ``changes``, ``incidents``) and one more top-level key,
``scenario``, that the evaluator removes before it parses the bundle::

    scenario:
      name: crm-db-pool-change            # unique, shown in the report
      description: what happened, in a sentence or two
      base: [topologies/call-center.yaml] # optional bundles loaded first,
                                          # relative to this file
      symptom:
        ci_ids: [screen-pop]              # where the symptom was observed
        started_at: 2026-03-02T10:00:00Z  # onset, with a time zone
        tags: [slow_response, timeout]
        text: Screen pops take 20 s
      expected_root_causes: [crm-db-primary]
      decoys: [wfm-app]                   # optional, for readers only

Each scenario is loaded into a fresh embedded store in a temporary folder:
first the ``base`` bundles, then the scenario's own bundle, each through
``service.loader.load``. A CI that the scenario's bundle repeats replaces the
base's record, which is how a scenario sets the status of a base CI at onset.
The topology, the CI statuses, the changes and the incidents are read back
from the store into the same snapshot that the GraphQL API analyses.

The scores follow the RCAEval benchmark: AC@k is the fraction of scenarios in
which an expected root cause is among the top k candidates, and Avg@5 is the
mean of AC@1 to AC@5. Two baselines rank the same candidates:
``recent-change`` by the end time of each candidate's latest change before
onset (latest first, candidates without changes last, ties by distance, then
id), and ``closest-dependency`` by distance from the observed CIs, then id.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from tabulate import tabulate

from importers import native
from importers.source import SourceError, load_yaml_documents, read_text
from service.analysis.culprits import Culprit, CulpritOptions, Symptom, likely_culprits
from service.analysis.events import EventIndex, change_times, was_made
from service.errors import FaultgraphError, InvalidInputError
from service.loader import load
from service.model import parse_time
from service.snapshot import SnapshotCache
from service.store.embedded import EmbeddedStore

SCENARIO_KEY = "scenario"
SCENARIO_SUFFIXES = (".yaml", ".yml", ".json")
METHODS = ("faultgraph", "recent-change", "closest-dependency")
TOP_K = 5


class ScenarioError(InvalidInputError):
    """A scenario file that cannot be evaluated; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class Scenario:
    """One labelled case: a bundle, a symptom and the CIs that truly caused it."""

    path: Path
    name: str
    description: str
    symptom: Symptom
    expected: tuple[str, ...]
    decoys: tuple[str, ...]
    base: tuple[Path, ...]
    bundle: dict[str, Any]


@dataclass(frozen=True)
class ScenarioResult:
    """How each method ranked one scenario's candidates.

    ``ranks`` contains, per method, the best rank of an expected root cause (1 is
    first), or None when no expected root cause is a candidate. ``top`` contains
    each method's first five candidate ids.
    """

    scenario: Scenario
    ranks: dict[str, int | None]
    top: dict[str, list[str]]
    candidate_count: int
    reason: str | None


@dataclass(frozen=True)
class Scores:
    """RCAEval accuracy of one method: ``accuracy[k - 1]`` is AC@k for k = 1..5."""

    accuracy: list[float]

    @property
    def ac1(self) -> float:
        return self.accuracy[0]

    @property
    def ac3(self) -> float:
        return self.accuracy[2]

    @property
    def avg5(self) -> float:
        return sum(self.accuracy) / len(self.accuracy)


@dataclass(frozen=True)
class Evaluation:
    results: list[ScenarioResult]
    scores: dict[str, Scores] = field(default_factory=dict)


def score(ranks: Sequence[int | None], max_k: int = TOP_K) -> Scores:
    """Return AC@1..AC@max_k over the ranks of the true root cause (None: not found).

    Raises:
        ValueError: no ranks are given.
    """
    if not ranks:
        raise ValueError("no scenario ranks to score; pass at least one scenario")
    accuracy = [sum(1 for rank in ranks if rank is not None and rank <= k) / len(ranks) for k in range(1, max_k + 1)]
    return Scores(accuracy)


# Reading scenarios


def find_scenarios(paths: Iterable[Path]) -> list[Path]:
    """Expand folders into the scenario files under them, in name order.

    A file named directly must be a scenario. Inside a folder, only files
    with a top-level ``scenario`` key count, so bundles that scenarios use as
    ``base`` can live beside them.

    Raises:
        ScenarioError: a path does not exist, or a folder contains no scenario.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = [
                candidate
                for candidate in sorted(path.rglob("*"))
                if candidate.suffix.lower() in SCENARIO_SUFFIXES and candidate.is_file() and _has_scenario_key(candidate)
            ]
            if not inside:
                raise ScenarioError(f"{path}: no scenario files found; a scenario has a top-level '{SCENARIO_KEY}' key")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise ScenarioError(f"{path}: file or folder not found; check the path")
    return list(dict.fromkeys(found))


def _has_scenario_key(path: Path) -> bool:
    try:
        document = _read_document(path)
    except ScenarioError:
        # Keep a broken file, so that reading it as a scenario reports the problem.
        return True
    return isinstance(document, Mapping) and SCENARIO_KEY in document


def _read_document(path: Path) -> Any:
    try:
        if path.suffix.lower() == ".json":
            try:
                return json.loads(read_text(path))
            except json.JSONDecodeError as exc:
                raise ScenarioError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}; fix the syntax") from exc
        documents = [document for document in load_yaml_documents(path) if document is not None]
    except SourceError as exc:
        raise ScenarioError(str(exc.problem)) from exc
    if len(documents) != 1:
        raise ScenarioError(f"{path}: expected one YAML document, found {len(documents)}; put the scenario in one")
    return documents[0]


def read_scenario(path: Path) -> Scenario:
    """Read one scenario file; the bundle part is checked later, when it is loaded.

    Raises:
        ScenarioError: the file or its ``scenario`` section is invalid.
    """
    document = _read_document(path)
    if not isinstance(document, Mapping) or SCENARIO_KEY not in document:
        raise ScenarioError(f"{path}: missing the top-level '{SCENARIO_KEY}' section; add name, symptom and expected_root_causes")
    section = document[SCENARIO_KEY]
    if not isinstance(section, Mapping):
        raise ScenarioError(f"{path}: '{SCENARIO_KEY}' must be a mapping with name, symptom and expected_root_causes")
    bundle = {key: value for key, value in document.items() if key != SCENARIO_KEY}

    name = _text(path, section, "name", required=True)
    symptom_section = section.get("symptom")
    if not isinstance(symptom_section, Mapping):
        raise ScenarioError(f"{path}: {SCENARIO_KEY}.symptom is missing or not a mapping; give ci_ids and started_at")
    ci_ids = _id_list(path, symptom_section, "symptom.ci_ids")
    raw_start = symptom_section.get("started_at")
    if not isinstance(raw_start, str | datetime):
        raise ScenarioError(f"{path}: {SCENARIO_KEY}.symptom.started_at is missing; give the onset such as 2026-03-02T10:00:00Z")
    try:
        started_at = parse_time(raw_start, field_name=f"{SCENARIO_KEY}.symptom.started_at")
    except ValueError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    tags = _id_list(path, symptom_section, "symptom.tags", required=False)
    text = _text(path, symptom_section, "text", prefix="symptom.")
    expected = _id_list(path, section, "expected_root_causes")
    decoys = _id_list(path, section, "decoys", required=False)
    base = tuple((path.parent / item).resolve() for item in _id_list(path, section, "base", required=False))
    return Scenario(
        path=path,
        name=name,
        description=_text(path, section, "description") or "",
        symptom=Symptom(tuple(ci_ids), started_at, tuple(tags), text),
        expected=tuple(expected),
        decoys=tuple(decoys),
        base=base,
        bundle=bundle,
    )


def _text(path: Path, section: Mapping[str, Any], key: str, *, required: bool = False, prefix: str = "") -> str | None:
    value = section.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{path}: {SCENARIO_KEY}.{prefix}{key} must be non-empty text")
    return value.strip()


def _id_list(path: Path, section: Mapping[str, Any], dotted: str, *, required: bool = True) -> list[str]:
    key = dotted.split(".")[-1]
    value = section.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value) or (required and not value):
        raise ScenarioError(f"{path}: {SCENARIO_KEY}.{dotted} must be a non-empty list of strings")
    return list(value)


# Running scenarios


def evaluate(paths: Iterable[Path], work_dir: Path | None = None) -> Evaluation:
    """Evaluate every scenario under ``paths`` with faultgraph and both baselines.

    Raises:
        ScenarioError: a scenario file is invalid or names unknown CIs.
        ImportRejectedError: a scenario's bundle is invalid.
    """
    scenarios = [read_scenario(path) for path in find_scenarios(paths)]
    names: dict[str, Path] = {}
    for scenario in scenarios:
        if scenario.name in names:
            raise ScenarioError(
                f"{scenario.path}: scenario name {scenario.name!r} is also used by {names[scenario.name]}; rename one"
            )
        names[scenario.name] = scenario.path

    results = []
    with tempfile.TemporaryDirectory(prefix="faultgraph-eval-", dir=work_dir) as folder:
        for number, scenario in enumerate(scenarios):
            results.append(run_scenario(scenario, Path(folder) / f"scenario-{number}.db"))
    scores = {method: score([result.ranks[method] for result in results]) for method in METHODS}
    return Evaluation(results, scores)


def run_scenario(scenario: Scenario, database: Path) -> ScenarioResult:
    """Load one scenario into a fresh embedded store and rank its candidates with every method."""
    store = EmbeddedStore(database)
    try:
        batches = [native.read(base) for base in scenario.base]
        batches.append(native.parse_bundle(scenario.bundle, str(scenario.path), from_yaml=True))
        for batch in batches:
            load(store, batch)
        snapshot = SnapshotCache(store).snapshot()
    finally:
        store.close()
    topology = snapshot.topology

    missing = [ci_id for ci_id in (*scenario.expected, *scenario.symptom.ci_ids) if ci_id not in topology.index]
    if missing:
        raise ScenarioError(f"{scenario.path}: CI(s) {', '.join(missing)} named in '{SCENARIO_KEY}' are not in its bundles; add them or correct the ids")

    index = snapshot.events
    report = likely_culprits(topology, scenario.symptom, index, snapshot.statuses, CulpritOptions(limit=None))
    rankings = {
        "faultgraph": [culprit.ci_id for culprit in report.culprits],
        "recent-change": rank_by_recent_change(report.culprits, index, scenario.symptom.started_at),
        "closest-dependency": rank_by_distance(report.culprits),
    }
    expected = set(scenario.expected)
    ranks = {method: _first_rank(ranking, expected) for method, ranking in rankings.items()}
    top = {method: ranking[:TOP_K] for method, ranking in rankings.items()}
    return ScenarioResult(scenario, ranks, top, report.candidate_count, report.reason)


def _first_rank(ranking: Sequence[str], expected: set[str]) -> int | None:
    return next((position for position, ci_id in enumerate(ranking, start=1) if ci_id in expected), None)


def rank_by_recent_change(culprits: Sequence[Culprit], index: EventIndex, onset: datetime) -> list[str]:
    """Baseline: order candidates by the end of their latest change made before onset, latest first.

    A change still running at onset counts as ending at onset. Candidates
    without such a change come last; ties go to the nearer candidate, then the
    lower id.
    """
    earliest = datetime.min.replace(tzinfo=UTC)
    keyed = []
    for culprit in culprits:
        latest = None
        for change in index.changes_on(culprit.ci_id, onset, earliest):
            if not was_made(change):
                continue
            end = change_times(change).end
            moment = onset if end is None or end > onset else end
            latest = moment if latest is None else max(latest, moment)
        recency = -latest.timestamp() if latest is not None else float("inf")
        keyed.append((recency, culprit.distance, culprit.ci_id))
    return [ci_id for _, _, ci_id in sorted(keyed)]


def rank_by_distance(culprits: Sequence[Culprit]) -> list[str]:
    """Baseline: order candidates by hops from the nearest observed CI, then by id."""
    return [culprit.ci_id for culprit in sorted(culprits, key=lambda culprit: (culprit.distance, culprit.ci_id))]


# Command line


def _format_rank(rank: int | None) -> str:
    return "-" if rank is None else str(rank)


def evaluation_document(evaluation: Evaluation) -> dict[str, Any]:
    """Return the evaluation as plain JSON-ready data."""
    return {
        "scenarios": [
            {
                "name": result.scenario.name,
                "path": str(result.scenario.path),
                "expected": list(result.scenario.expected),
                "decoys": list(result.scenario.decoys),
                "candidates": result.candidate_count,
                "ranks": result.ranks,
                "top": result.top,
                "reason": result.reason,
            }
            for result in evaluation.results
        ],
        "summary": {
            method: {
                "AC@1": round(scores.ac1, 4),
                "AC@3": round(scores.ac3, 4),
                "Avg@5": round(scores.avg5, 4),
                "AC@k": [round(value, 4) for value in scores.accuracy],
            }
            for method, scores in evaluation.scores.items()
        },
    }


@click.group("eval")
def eval_group() -> None:
    """Measure how well faultgraph's analyses find known root causes."""


@eval_group.command("culprits")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def culprits_command(paths: tuple[Path, ...], as_json: bool) -> None:
    """Rank likely culprits on labelled scenarios and report AC@1, AC@3 and Avg@5.

    PATH is a scenario file or a folder searched for scenario files. Each
    scenario is loaded into a fresh temporary embedded store; faultgraph and
    two baselines (most recent change first, closest dependency first) rank
    the same candidates.
    """
    try:
        evaluation = evaluate(list(paths))
    except FaultgraphError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        click.echo(json.dumps(evaluation_document(evaluation), indent=2, ensure_ascii=False))
        return

    rows = []
    for result in evaluation.results:
        top = result.top["faultgraph"][0] if result.top["faultgraph"] else result.reason or "-"
        rows.append(
            (
                result.scenario.name,
                ", ".join(result.scenario.expected),
                *(_format_rank(result.ranks[method]) for method in METHODS),
                top,
            )
        )
    click.echo(tabulate(rows, headers=["scenario", "expected", *METHODS, "faultgraph top 1"]))
    summary = [
        (method, f"{scores.ac1:.3f}", f"{scores.ac3:.3f}", f"{scores.avg5:.3f}")
        for method, scores in evaluation.scores.items()
    ]
    click.echo("")
    click.echo(f"{len(evaluation.results)} scenarios; rank of the first expected root cause, '-' when not a candidate")
    click.echo(tabulate(summary, headers=["method", "AC@1", "AC@3", "Avg@5"]))
