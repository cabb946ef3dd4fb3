"""Markdown for responders: the emergency plan and the plan-gaps report, as ``faultgraph plan`` prints them.

The GraphQL ``EmergencyPlan.markdown`` field returns the same text, so a chat
bot or a wiki page shows what the command line shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from datetime import datetime

from service.analysis.plan import FOCUS_LIMIT, OWNER_LIMIT, EmergencyPlan, PlanAction, PlanGaps, PlanGapsOptions, staleness
from service.model import CI, Contact, Procedure, ProcedureLevel, format_time
from service.records import procedure_to_record

_LEVEL_HEADINGS = {
    ProcedureLevel.TRANSACTION: "Transaction level: restore what customers and agents do",
    ProcedureLevel.SERVICE: "Service level",
    ProcedureLevel.SYSTEM: "System level",
}


def _name(ci_id: str, cis: Mapping[str, CI]) -> str:
    ci = cis.get(ci_id)
    if ci is None or ci.name == ci_id:
        return ci_id
    return f"{ci_id} ({ci.name})"


def _names(ci_ids: tuple[str, ...] | list[str], cis: Mapping[str, CI], limit: int = 6) -> str:
    shown = [_name(ci_id, cis) for ci_id in ci_ids[:limit]]
    more = f" and {len(ci_ids) - limit} more" if len(ci_ids) > limit else ""
    return ", ".join(shown) + more


def _contact(contact: Contact) -> str:
    text = contact.name
    if contact.role:
        text += f" ({contact.role})"
    if contact.reach:
        text += f": {contact.reach}"
    return text


def _indent(text: str, prefix: str) -> str:
    """Indent every line after the first, so multi-line step text stays inside its list item."""
    lines = text.strip("\n").splitlines() or [""]
    return "\n".join([lines[0], *(prefix + line if line.strip() else "" for line in lines[1:])])


def procedure_lines(
    procedure: Procedure, heading: str = "####", checkbox: bool = False, as_of: datetime | None = None
) -> list[str]:
    """Return the Markdown lines of one procedure: heading, facts, steps, contacts and escalation.

    With ``as_of``, a procedure overdue for review or drill (by the default
    periods of the upkeep report) gets a caution line, because its steps may
    be out of date.
    """
    facts = [procedure.level.value, procedure.action.value.replace("_", " ")]
    if procedure.expected_minutes is not None:
        facts.append(f"about {procedure.expected_minutes} min")
    if procedure.risk is not None:
        facts.append(f"risk {procedure.risk.value}")
    if procedure.owner:
        facts.append(f"owner {procedure.owner}")
    box = "[ ] " if checkbox else ""
    lines = [f"{heading} {box}{procedure.id}: {procedure.title}", "", f"*{', '.join(facts)}*", ""]
    overdue = staleness(procedure, as_of, PlanGapsOptions()) if as_of is not None else []
    if overdue:
        lines += [f"Caution: {'; '.join(overdue)}. Check the steps before you follow them.", ""]
    if procedure.description:
        lines += [procedure.description.strip(), ""]
    for number, step in enumerate(procedure.steps, start=1):
        title = f"**{step.title}**: " if step.title else ""
        lines.append(f"{number}. {title}{_indent(step.text, '   ')}")
    if procedure.steps:
        lines.append("")
    if procedure.contacts:
        lines.append("Contacts: " + "; ".join(_contact(contact) for contact in procedure.contacts))
    if procedure.escalation:
        lines.append(
            "Escalate: "
            + "; ".join(f"after {step.after_minutes} min to {_contact(step.contact)}" for step in procedure.escalation)
        )
    if procedure.contacts or procedure.escalation:
        lines.append("")
    return lines


def _action_lines(action: PlanAction, cis: Mapping[str, CI], checkbox: bool, as_of: datetime) -> list[str]:
    lines = procedure_lines(action.procedure, checkbox=checkbox, as_of=as_of)
    # After the heading, its blank line and the facts line.
    lines[3:3] = ["", f"Applies here to {_names(list(action.ci_ids), cis)}. Why: {'; '.join(action.reasons[:3])}"]
    return lines


def plan_markdown(plan: EmergencyPlan, cis: Mapping[str, CI]) -> str:
    """Return the emergency plan as one Markdown document, in the order a responder uses it."""
    situation = plan.situation
    impacts = Counter(entry.impact for entry in plan.impacted)
    counted = ", ".join(f"{impacts[name]} {name.lower().replace('_', ' ')}" for name in ("DOWN", "DEGRADED", "AT_RISK") if impacts[name])
    lines = [
        f"# Emergency plan: {_names(list(situation.observed), cis, 3)}",
        "",
        f"Situation: {situation.describe()}.",
        f"Generated {format_time(plan.generated_at.replace(microsecond=0))} by faultgraph.",
        "",
        f"Impact: {len(plan.impacted):,} CIs ({counted or 'none'}).",
    ]
    if plan.business_services:
        lines.append(f"Business services and transactions hit: {_names(plan.business_services, cis, 10)}.")
    lines.append("")

    lines += ["## 1. Notify", ""]
    if len(plan.impacted) > OWNER_LIMIT:
        lines += [
            f"Owners of the {OWNER_LIMIT:,} most affected of {len(plan.impacted):,} impacted CIs; "
            "blastRadius lists them all.",
            "",
        ]
    if plan.notify:
        for notification in plan.notify:
            role = "owner of business services" if notification.business else "owner of impacted CIs"
            lines.append(f"- **{notification.owner}**, {role}: {_names(list(notification.ci_ids), cis)}")
    else:
        lines.append("- No impacted CI records an owner; find the owners and add them to the CMDB.")
    lines.append("")
    for action in plan.communication:
        lines += _action_lines(action, cis, checkbox=True, as_of=plan.generated_at)

    lines += ["## 2. Check first", ""]
    if not plan.check_first:
        lines += [f"No likely culprit: {plan.culprit_reason or 'no candidate'}.", ""]
    for culprit in plan.check_first:
        lines.append(f"{culprit.rank}. **{_name(culprit.ci_id, cis)}**, score {culprit.score:.2f}")
        lines += [f"   - {evidence}" for evidence in culprit.evidence]
    if plan.check_first:
        lines.append("")
    if plan.rollback_first:
        lines.append("Changes to consider rolling back first:")
        for change in plan.rollback_first:
            rollback = f", rollback procedure {change.rollback_procedure}" if change.rollback_procedure else ""
            lines.append(f"- {change.id}: {change.title} ({change.kind.value}, {change.status.value}{rollback})")
        lines.append("")

    lines += ["## 3. Act", ""]
    if len(plan.impacted) > FOCUS_LIMIT:
        lines += [
            f"For the likely culprits, the business services and transactions hit, and the {FOCUS_LIMIT} most "
            f"affected of {len(plan.impacted):,} impacted CIs.",
            "",
        ]
    if not plan.actions:
        lines += ["No procedure of the plan applies to these CIs; see the gaps below.", ""]
    for level in _LEVEL_HEADINGS:
        actions = plan.actions_at(level)
        if actions:
            lines += [f"### {_LEVEL_HEADINGS[level]}", ""]
            for action in actions:
                lines += _action_lines(action, cis, checkbox=True, as_of=plan.generated_at)

    if plan.tooling:
        lines += ["## 4. Tooling notes", ""]
        for action in plan.tooling:
            lines += _action_lines(action, cis, checkbox=False, as_of=plan.generated_at)

    if plan.uncovered:
        lines += ["## Not covered by the plan", ""]
        lines += [
            f"- {_name(ci_id, cis)} is important and has no procedure; decide on the spot and add one afterwards."
            for ci_id in plan.uncovered
        ]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def gaps_markdown(gaps: PlanGaps, cis: Mapping[str, CI]) -> str:
    """Return the plan-gaps report as Markdown."""
    options = gaps.options
    lines = [
        "# Emergency plan upkeep",
        "",
        f"As of {format_time(gaps.as_of)}: {gaps.procedure_count} procedures, {gaps.important_count} important CIs, "
        f"{gaps.gap_count} gaps. Reviews are due every {options.review_within.days} days and drills every "
        f"{options.drill_within.days} days; CIs count as important from criticality {options.min_criticality.value}.",
        "",
        f"## Important CIs without a procedure ({len(gaps.uncovered)})",
        "",
    ]
    lines += [f"- {_name(item.ci_id, cis)}: {'; '.join(item.reasons[:3])}" for item in gaps.uncovered] or ["- none"]
    lines += ["", f"## Procedures overdue for review or drill ({len(gaps.stale)})", ""]
    lines += [f"- {item.procedure.id} ({item.procedure.title}): {'; '.join(item.reasons)}" for item in gaps.stale] or [
        "- none"
    ]
    lines += ["", f"## Links to CIs that are gone ({len(gaps.broken_links)})", ""]
    lines += [f"- {link.procedure.id} {link.field}: {link.reason}" for link in gaps.broken_links] or ["- none"]
    lines += ["", f"## Procedures named but not in the plan ({len(gaps.missing_procedures)})", ""]
    lines += [
        f"- {item.referenced_by} {item.field}: {item.procedure_id} is not in the plan; import it or correct the id"
        for item in gaps.missing_procedures
    ] or ["- none"]
    return "\n".join(lines) + "\n"


def _action_document(action: PlanAction) -> dict[str, object]:
    return {
        "procedure": procedure_to_record(action.procedure),
        "ci_ids": list(action.ci_ids),
        "reasons": list(action.reasons),
        "culprit_rank": action.culprit_rank,
    }


def plan_document(plan: EmergencyPlan) -> dict[str, object]:
    """Return the emergency plan as plain JSON-ready data, in the same order as the Markdown."""
    situation = plan.situation
    return {
        "situation": {
            "observed": list(situation.observed),
            "started_at": format_time(situation.started_at),
            "tags": list(situation.tags),
            "text": situation.text,
            "incident": situation.incident.id if situation.incident else None,
            "description": situation.describe(),
        },
        "generated_at": format_time(plan.generated_at),
        "impacted": [{"id": e.ci_id, "impact": e.impact, "distance": e.distance} for e in plan.impacted],
        "business_services": plan.business_services,
        "notify": [{"owner": n.owner, "business": n.business, "ci_ids": list(n.ci_ids)} for n in plan.notify],
        "communication": [_action_document(action) for action in plan.communication],
        "check_first": [
            {
                "rank": culprit.rank,
                "id": culprit.ci_id,
                "score": culprit.score,
                "evidence": culprit.evidence,
                "changes": [change.id for change in culprit.changes],
            }
            for culprit in plan.check_first
        ],
        "no_culprit_reason": plan.culprit_reason,
        "rollback_first": [change.id for change in plan.rollback_first],
        "actions": [_action_document(action) for action in plan.actions],
        "tooling": [_action_document(action) for action in plan.tooling],
        "uncovered": plan.uncovered,
    }


def gaps_document(gaps: PlanGaps) -> dict[str, object]:
    """Return the plan-gaps report as plain JSON-ready data."""
    return {
        "as_of": format_time(gaps.as_of),
        "review_within_days": gaps.options.review_within.days,
        "drill_within_days": gaps.options.drill_within.days,
        "min_criticality": gaps.options.min_criticality.value,
        "procedure_count": gaps.procedure_count,
        "important_count": gaps.important_count,
        "gap_count": gaps.gap_count,
        "uncovered": [{"id": item.ci_id, "reasons": list(item.reasons)} for item in gaps.uncovered],
        "stale": [{"id": item.procedure.id, "reasons": list(item.reasons)} for item in gaps.stale],
        "broken_links": [
            {"procedure": link.procedure.id, "field": link.field, "ci_id": link.ci_id, "reason": link.reason}
            for link in gaps.broken_links
        ],
        "missing_procedures": [
            {"referenced_by": item.referenced_by, "field": item.field, "procedure_id": item.procedure_id}
            for item in gaps.missing_procedures
        ],
    }
