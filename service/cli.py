"""The ``faultgraph`` command line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
from tabulate import tabulate

import importers
from service.analysis.blast_radius import BlastRadiusOptions, Impact, blast_radius, business_services_reached, path_to
from service.analysis.change_review import review_change
from service.analysis.culprits import CulpritOptions, Symptom, likely_culprits
from service.cli_events import culprits_document, culprits_text, review_document, review_text
from service.cli_plan import plan_command, plan_gaps_command, procedure_command
from service.config import Settings, load_settings, open_store
from service.errors import FaultgraphError, ImportRejectedError
from service.evaluation import eval_group
from service.loader import ImportReport, load
from service.model import parse_time, utc_now
from service.snapshot import SnapshotCache
from service.store.base import GraphStore

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = (
    ("bundle", PROJECT_ROOT / "examples" / "call-center" / "cmdb.yaml"),
    # The emergency handbook links to the call center's CIs, so it comes after them.
    ("bundle", PROJECT_ROOT / "examples" / "call-center" / "emergency-plan.yaml"),
    # Changes and past incidents name the CIs and the handbook's procedures, so they come last.
    ("bundle", PROJECT_ROOT / "examples" / "call-center" / "changes-incidents.yaml"),
    ("kubernetes", PROJECT_ROOT / "examples" / "online-boutique" / "kubernetes-manifests.yaml"),
)


def _settings(context: click.Context) -> Settings:
    return context.obj["settings"]  # type: ignore[no-any-return]


@click.group()
@click.option("--store", type=click.Choice(["embedded", "neo4j"]), help="Store kind [env FAULTGRAPH_STORE].")
@click.option("--db", type=click.Path(path_type=Path), help="SQLite file of the embedded store [env FAULTGRAPH_DB].")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def cli(context: click.Context, store: str | None, db: Path | None, verbose: bool) -> None:
    """faultgraph: a CMDB knowledge graph that computes what a failure hurts."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        context.obj = {"settings": load_settings(store=store, db=db)}
    except FaultgraphError as exc:
        raise click.ClickException(exc.message) from exc


def _open(context: click.Context, *, must_exist: bool = False) -> GraphStore:
    """Open the configured store; with ``must_exist``, reject an embedded store file that is not there.

    Read-only commands pass ``must_exist``, so a wrong working directory or
    FAULTGRAPH_DB gives a clear error instead of an empty new store.
    """
    settings = _settings(context)
    if must_exist and settings.store == "embedded" and not settings.db.exists():
        raise click.ClickException(
            f"no embedded store at {settings.db}; import data first with 'faultgraph import', "
            "or point FAULTGRAPH_DB (or --db) at an existing store"
        )
    try:
        return open_store(settings)
    except FaultgraphError as exc:
        raise click.ClickException(exc.message) from exc


def _import(
    store: GraphStore,
    format_name: str,
    paths: list[Path],
    *,
    keep_going: bool,
    batch_size: int,
    mapping: Path | None = None,
) -> ImportReport:
    click.echo(f"reading {len(paths)} {format_name} path(s)", err=True)
    options = {} if mapping is None else {"mapping": mapping}
    batch = importers.read_files(format_name, paths, **options)
    total = len(batch.cis) + len(batch.relationships) + len(batch.changes) + len(batch.incidents) + len(batch.procedures)
    long_import = total >= 20_000
    click.echo(f"validating and writing {total} records", err=True)
    # A bar on a terminal; elsewhere (CI logs, pipes) one line per tenth, so
    # a long import still shows that it is moving.
    with click.progressbar(
        length=total, label="writing", file=sys.stderr, hidden=not (long_import and sys.stderr.isatty())
    ) as bar:
        done = 0
        reported_tenths = 0

        def progress(written: int, _total: int) -> None:
            nonlocal done, reported_tenths
            bar.update(written - done)
            done = written
            tenths = written * 10 // max(total, 1)
            if long_import and not sys.stderr.isatty() and tenths > reported_tenths:
                reported_tenths = tenths
                click.echo(f"written {written} of {total} records", err=True)

        return load(store, batch, keep_going=keep_going, batch_size=batch_size, progress=progress)


WARNINGS_SHOWN = 20


def _print_report(report: ImportReport, *, all_warnings: bool = True) -> None:
    result = report.result
    click.echo(
        f"CIs: {report.cis_read} read, {result.cis_created} created, {result.cis_updated} updated, "
        f"{result.cis_unchanged} unchanged"
    )
    click.echo(
        f"relationships: {report.relationships_read} read, {result.relationships_created} created, "
        f"{result.relationships_updated} updated, {result.relationships_unchanged} unchanged"
    )
    if report.changes_read or report.incidents_read:
        click.echo(
            f"changes: {report.changes_read} read, {result.changes_created} created, "
            f"{result.changes_updated} updated, {result.changes_unchanged} unchanged"
        )
        click.echo(
            f"incidents: {report.incidents_read} read, {result.incidents_created} created, "
            f"{result.incidents_updated} updated, {result.incidents_unchanged} unchanged"
        )
    if report.procedures_read:
        click.echo(
            f"procedures: {report.procedures_read} read, {result.procedures_created} created, "
            f"{result.procedures_updated} updated, {result.procedures_unchanged} unchanged"
        )
    if report.skipped:
        skipped = ", ".join(f"{count} {kind}" for kind, count in sorted(report.skipped.items()))
        click.echo(f"skipped, not imported: {skipped}")
    shown = report.warnings if all_warnings else report.warnings[:WARNINGS_SHOWN]
    for warning in shown:
        click.echo(f"warning: {warning}", err=True)
    if len(shown) < len(report.warnings):
        click.echo(
            f"... and {len(report.warnings) - len(shown)} more warnings; pass --all-warnings to list them", err=True
        )
    if report.rejected:
        records = len({(problem.source, problem.record) for problem in report.rejected})
        click.echo(f"rejected {records} record(s), {len(report.rejected)} problem(s):", err=True)
        for problem in report.rejected:
            click.echo(f"  - {problem}", err=True)


@cli.command("import")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(sorted(importers.FORMATS)))
@click.argument("paths", metavar="PATH...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--keep-going", is_flag=True, help="Import the valid records and list every rejected one.")
@click.option("--batch-size", default=5000, show_default=True, help="Records per write batch.")
@click.option("--all-warnings", is_flag=True, help=f"List every warning, not only the first {WARNINGS_SHOWN}.")
@click.option(
    "--mapping",
    type=click.Path(path_type=Path, dir_okay=False),
    help="runbook format only: YAML rules that link runbooks to CIs by alert name, path or front matter.",
)
@click.pass_context
def import_command(
    context: click.Context,
    format_name: str,
    paths: tuple[Path, ...],
    keep_going: bool,
    batch_size: int,
    mapping: Path | None,
    all_warnings: bool,
) -> None:
    """Import source files of one FORMAT; all or nothing unless --keep-going.

    A runbook PATH may be a folder: every Markdown file under it is read.
    Exits with 0 when every record was imported, 1 when the import was
    rejected and nothing was written, and 3 when --keep-going wrote the valid
    records but rejected some.
    """
    if mapping is not None and format_name != "runbook":
        raise click.UsageError(f"--mapping applies to the runbook format only, not to {format_name}")
    store = _open(context)
    try:
        report = _import(
            store, format_name, list(paths), keep_going=keep_going, batch_size=batch_size, mapping=mapping
        )
    except ImportRejectedError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    except FaultgraphError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        store.close()
    _print_report(report, all_warnings=all_warnings)
    if report.rejected:
        sys.exit(3)


def _blast_radius_rows(radius: Any, topology: Any, names: dict[str, Any]) -> list[dict[str, Any]]:
    business = business_services_reached(topology, radius)
    business_of: dict[int, list[str]] = {}
    for node, members in business.items():
        for member in members:
            business_of.setdefault(int(member), []).append(topology.ids[node])
    rows = []
    for node, level, distance in zip(radius.impacted, radius.impact, radius.distance, strict=True):
        ci_id = topology.ids[node]
        ci = names.get(ci_id)
        rows.append(
            {
                "id": ci_id,
                "name": ci.name if ci else ci_id,
                "type": topology.type_names[topology.node_type[node]],
                "impact": Impact(level).name,
                "distance": int(distance),
                "path": [topology.ids[step] for step in path_to(radius, int(node))],
                "business_services": sorted(business_of.get(int(node), [])),
                "owner": ci.owner if ci else None,
            }
        )
    return rows


@cli.command("blast-radius")
@click.argument("ci_ids", metavar="CI_ID...", nargs=-1, required=True)
@click.option("--max-depth", type=click.IntRange(min=0), help="Follow at most this many relationships.")
@click.option("--type", "relationship_types", multiple=True, help="Relationship type to follow; repeatable.")
@click.option("--limit", type=click.IntRange(min=0), default=200, show_default=True, help="List at most this many CIs.")
@click.option("--as-of", help="ISO 8601 time with offset; default now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def blast_radius_command(
    context: click.Context,
    ci_ids: tuple[str, ...],
    max_depth: int | None,
    relationship_types: tuple[str, ...],
    limit: int,
    as_of: str | None,
    as_json: bool,
) -> None:
    """Show what else fails when the CIs CI_ID... fail."""
    store = _open(context, must_exist=True)
    try:
        moment = parse_time(as_of, field_name="--as-of") if as_of else utc_now()
        topology = SnapshotCache(store).current()
        unknown = [ci_id for ci_id in ci_ids if ci_id not in topology.index]
        if unknown:
            raise click.ClickException(
                f"CI(s) not found: {', '.join(unknown)}; list CIs with the GraphQL cis query"
            )
        options = BlastRadiusOptions(max_depth, relationship_types or None, limit, moment)
        radius = blast_radius(topology, list(ci_ids), options)
        names = store.get_cis([topology.ids[node] for node in radius.impacted])
    except (ValueError, FaultgraphError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()

    rows = _blast_radius_rows(radius, topology, names)
    summary = radius.summary
    if as_json:
        document = {
            "failed": list(ci_ids),
            "impacted": rows,
            "truncated": radius.truncated,
            "summary": {
                "total": summary.total,
                "by_impact": {level.name: count for level, count in summary.by_impact.items()},
                "by_type": summary.by_type,
            },
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return

    table = [
        (row["impact"], row["distance"], row["id"], row["type"], " -> ".join(row["path"]), ", ".join(row["business_services"]))
        for row in rows
    ]
    click.echo(tabulate(table, headers=["impact", "dist", "CI", "type", "path", "business services"]))
    counts = ", ".join(f"{count} {level.name}" for level, count in sorted(summary.by_impact.items(), reverse=True))
    more = f" (showing {len(rows)}; raise --limit for more)" if radius.truncated else ""
    click.echo(f"\n{summary.total} impacted: {counts}{more}")


@cli.command()
@click.option("--host", help="Interface to listen on [env FAULTGRAPH_HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="TCP port [env FAULTGRAPH_PORT, default 8000].")
@click.option(
    "--examples",
    is_flag=True,
    help=(
        "Import the call-center CMDB with its changes and incidents and the Online Boutique "
        "manifests from examples/ first."
    ),
)
@click.pass_context
def serve(context: click.Context, host: str | None, port: int | None, examples: bool) -> None:
    """Serve GraphQL at /graphql (GraphiQL in a browser), with /healthz, /readyz and /metrics."""
    import uvicorn

    from service.app import create_app

    settings = _settings(context)
    host = host or settings.host
    port = port or settings.port
    if examples:
        store = _open(context)
        try:
            for format_name, path in EXAMPLES:
                click.echo(f"importing example {path.relative_to(PROJECT_ROOT)}")
                _print_report(_import(store, format_name, [path], keep_going=False, batch_size=5000))
        except FaultgraphError as exc:
            raise click.ClickException(exc.message) from exc
        finally:
            store.close()
    click.echo(f"GraphQL at http://{host}:{port}/graphql")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@cli.command("culprits")
@click.option(
    "--at", "ci_ids", multiple=True, required=True, metavar="CI_ID", help="CI where the symptom shows; repeatable."
)
@click.option(
    "--since",
    "started_at",
    required=True,
    metavar="TIME",
    help="Onset: ISO 8601 with an offset, such as 2026-03-02T09:05:00Z.",
)
@click.option("--tag", "tags", multiple=True, help="Symptom tag, such as timeout or slow_response; repeatable.")
@click.option("--text", help="The symptom in words, compared with the texts of past incidents.")
@click.option(
    "--limit", type=click.IntRange(min=0), default=10, show_default=True, help="List at most this many culprits."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def culprits_command(
    context: click.Context,
    ci_ids: tuple[str, ...],
    started_at: str,
    tags: tuple[str, ...],
    text: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Rank the CIs that most likely caused a symptom seen on the --at CIs since --since."""
    store = _open(context, must_exist=True)
    try:
        onset = parse_time(started_at, field_name="--since")
        snapshot = SnapshotCache(store).snapshot()
        unknown = [ci_id for ci_id in ci_ids if ci_id not in snapshot.topology.index]
        if unknown:
            raise click.ClickException(f"--at: CI(s) not found: {', '.join(unknown)}; check the ids")
        symptom = Symptom(tuple(ci_ids), onset, tags, text)
        report = likely_culprits(
            snapshot.topology, symptom, snapshot.events, snapshot.statuses, CulpritOptions(limit=limit)
        )
        cis = store.get_cis([culprit.ci_id for culprit in report.culprits])
    except (ValueError, FaultgraphError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()

    if as_json:
        click.echo(json.dumps(culprits_document(symptom, report, cis), indent=2, ensure_ascii=False))
        return
    click.echo(culprits_text(report, cis))


@cli.command("review-change")
@click.argument("change_id", metavar="CHANGE_ID")
@click.option(
    "--limit", type=click.IntRange(min=0), default=20, show_default=True, help="List at most this many impacted CIs."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def review_change_command(context: click.Context, change_id: str, limit: int, as_json: bool) -> None:
    """Review the stored change CHANGE_ID: blast radius, collisions, past incidents, risk and reviewers."""
    store = _open(context, must_exist=True)
    try:
        snapshot = SnapshotCache(store).snapshot()
        change = snapshot.events.changes_by_id.get(change_id)
        if change is None:
            raise click.ClickException(f"change {change_id!r} not found; check the id or import the change first")
        review = review_change(snapshot.topology, change, snapshot.events)
        cis = store.get_cis(review.reviewer_ci_ids)
    except (ValueError, FaultgraphError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()

    if as_json:
        click.echo(json.dumps(review_document(review, snapshot.topology, cis), indent=2, ensure_ascii=False))
        return
    click.echo(review_text(review, snapshot.topology, cis, limit))


@cli.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL (kept in schema/schema.graphql)."""
    from service.api.schema import schema

    click.echo(schema.as_str())


cli.add_command(eval_group)
cli.add_command(plan_command)
cli.add_command(plan_gaps_command)
cli.add_command(procedure_command)


def main() -> None:
    cli(prog_name="faultgraph")
