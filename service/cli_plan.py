"""The ``plan``, ``plan-gaps`` and ``procedure`` commands: the emergency plan as Markdown, its upkeep report, and one procedure in full."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import click

from service.analysis.culprits import Symptom
from service.analysis.plan import PlanGapsOptions, staleness
from service.errors import FaultgraphError
from service.model import Criticality, parse_time, utc_now
from service.plan_report import gaps_document, gaps_markdown, plan_document, plan_markdown, procedure_lines
from service.planning import build_emergency_plan, build_plan_gaps, situation_for
from service.records import procedure_to_record
from service.snapshot import SnapshotCache


def _open_store(context: click.Context):  # type: ignore[no-untyped-def]
    # Imported here: service.cli registers these commands, so it imports this module first.
    from service.cli import _open

    return _open(context, must_exist=True)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}; choose another --output") from exc
    click.echo(f"wrote {output}", err=True)


@click.command("plan")
@click.option("--at", "ci_ids", multiple=True, metavar="CI_ID", help="CI where the symptom shows; repeatable.")
@click.option("--since", "started_at", metavar="TIME", help="Onset of the symptom: ISO 8601 with an offset.")
@click.option("--tag", "tags", multiple=True, help="Symptom tag, such as timeout or slow_response; repeatable.")
@click.option("--text", help="The symptom in words, compared with the texts of past incidents.")
@click.option("--incident", "incident_id", metavar="INCIDENT_ID", help="Plan for a stored incident.")
@click.option("--ci", "ci_id", metavar="CI_ID", help="Plan for a CI that is down now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of Markdown.")
@click.option("--brief", is_flag=True, help="Leave out the steps of each procedure, for a first overview.")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to this file instead.")
@click.pass_context
def plan_command(
    context: click.Context,
    ci_ids: tuple[str, ...],
    started_at: str | None,
    tags: tuple[str, ...],
    text: str | None,
    incident_id: str | None,
    ci_id: str | None,
    as_json: bool,
    brief: bool,
    output: Path | None,
) -> None:
    """Print the emergency plan for a symptom (--at and --since), an incident (--incident) or a CI (--ci).

    The plan is Markdown, in the order responders use it: whom to notify,
    what to check first, what to do at transaction, service and system
    level, and the tooling notes.
    """
    if not (ci_ids or incident_id or ci_id):
        raise click.UsageError("say what the plan is for: --at with --since, --incident, or --ci")
    if not ci_ids and (started_at or tags or text):
        given = ", ".join(
            name for name, value in (("--since", started_at), ("--tag", tags), ("--text", text)) if value
        )
        raise click.UsageError(
            f"{given} describe a symptom seen at --at CIs; give them with --at. With --ci the plan is for a CI "
            "that is down now, and with --incident the incident gives the onset, tags and text"
        )
    if ci_ids and not started_at:
        raise click.UsageError("a symptom needs --since as well as --at, such as --since 2026-03-09T09:05:00Z")
    symptom = None
    if ci_ids and started_at:
        try:
            onset = parse_time(started_at, field_name="--since")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from exc
        symptom = Symptom(tuple(ci_ids), onset, tags, text)
    store = _open_store(context)
    try:
        now = utc_now()
        snapshot = SnapshotCache(store).snapshot()
        situation = situation_for(store, snapshot, symptom=symptom, incident_id=incident_id, ci_id=ci_id, now=now)
        plan, cis = build_emergency_plan(store, snapshot, situation, now)
    except (ValueError, FaultgraphError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    if as_json:
        _emit(json.dumps(plan_document(plan), indent=2, ensure_ascii=False) + "\n", output)
    else:
        _emit(plan_markdown(plan, cis, brief=brief), output)


@click.command("plan-gaps")
@click.option(
    "--review-days", type=click.IntRange(min=1), default=365, show_default=True, help="Review period, in days."
)
@click.option("--drill-days", type=click.IntRange(min=1), default=365, show_default=True, help="Drill period, in days.")
@click.option(
    "--min-criticality",
    type=click.Choice([level.value for level in Criticality]),
    default=Criticality.HIGH.value,
    show_default=True,
    help="CIs of this criticality or higher need a procedure.",
)
@click.option("--as-of", metavar="TIME", help="ISO 8601 time with an offset; default now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of Markdown.")
@click.option("--fail-on-gaps", is_flag=True, help="Exit with 4 when the report lists any gap.")
@click.pass_context
def plan_gaps_command(
    context: click.Context,
    review_days: int,
    drill_days: int,
    min_criticality: str,
    as_of: str | None,
    as_json: bool,
    fail_on_gaps: bool,
) -> None:
    """Report what the emergency plan lacks.

    It lists important CIs (by criticality, or as providers of critical
    business services) with no procedure, and procedures not reviewed or
    drilled within the periods. It also lists links to CIs that are gone or
    retired, and procedures that changes or incidents name but the plan lacks.
    """
    store = _open_store(context)
    try:
        moment = parse_time(as_of, field_name="--as-of") if as_of else utc_now()
        options = PlanGapsOptions(
            review_within=timedelta(days=review_days),
            drill_within=timedelta(days=drill_days),
            min_criticality=Criticality(min_criticality),
        )
        snapshot = SnapshotCache(store).snapshot()
        gaps, cis = build_plan_gaps(store, snapshot, moment, options)
    except (ValueError, FaultgraphError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(gaps_document(gaps), indent=2, ensure_ascii=False))
    else:
        click.echo(gaps_markdown(gaps, cis), nl=False)
    if fail_on_gaps and gaps.gap_count:
        sys.exit(4)


@click.command("procedure")
@click.argument("procedure_id", metavar="PROCEDURE_ID")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle record as JSON instead of Markdown.")
@click.pass_context
def procedure_command(context: click.Context, procedure_id: str, as_json: bool) -> None:
    """Print one procedure of the emergency plan: its steps, contacts and escalation."""
    store = _open_store(context)
    try:
        procedure = store.get_procedures([procedure_id]).get(procedure_id)
    except FaultgraphError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        store.close()
    if procedure is None:
        raise click.ClickException(
            f"procedure {procedure_id!r} not found; 'faultgraph plan-gaps --json' lists the procedure ids"
        )
    if as_json:
        click.echo(json.dumps(procedure_to_record(procedure), indent=2, ensure_ascii=False))
        return
    lines = procedure_lines(procedure, heading="#", cautions=tuple(staleness(procedure, utc_now(), PlanGapsOptions())))
    if procedure.applies_to:
        lines += [f"Applies to: {', '.join(procedure.applies_to)}"]
    lines += [f"Selector: {selector.describe()}" for selector in procedure.selectors]
    click.echo("\n".join(lines).rstrip())
