"""Markdown for responders: the emergency plan and the plan-gaps report, as ``faultgraph plan`` prints them.

The GraphQL ``EmergencyPlan.markdown`` field returns the same text, so a chat
bot or a wiki page shows what the command line shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from service.analysis.plan import FOCUS_LIMIT, OWNER_LIMIT, EmergencyPlan, Notification, PlanAction, PlanGaps
from service.model import CI, Contact, Criticality, Procedure, ProcedureLevel, format_time
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


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def _step_text(title: str | None, text: str) -> str:
    """Return a step's Markdown after its number; a step that starts with a list starts it on a new line."""
    body = text.strip("\n")
    if title is None:
        return _indent(body, "   ")
    if body.lstrip().startswith(("- ", "* ", "+ ")) or body[:3].rstrip(".").isdigit():
        return f"**{title}**:\n" + "\n".join("   " + line if line.strip() else "" for line in body.splitlines())
    return f"**{title}**: {_indent(body, '   ')}"


def procedure_lines(
    procedure: Procedure,
    heading: str = "####",
    checkbox: bool = False,
    cautions: tuple[str, ...] = (),
    brief: bool = False,
) -> list[str]:
    """Return the Markdown lines of one procedure: heading, facts, cautions, steps, contacts and escalation.

    ``brief`` stops after the facts and cautions.
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
    if cautions:
        lines += [f"**Caution**: {'; '.join(cautions)}. Check the steps before you follow them.", ""]
    if brief:
        return lines
    if procedure.description:
        lines += [procedure.description.strip(), ""]
    for number, step in enumerate(procedure.steps, start=1):
        lines.append(f"{number}. {_step_text(step.title, step.text)}")
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


_NAMES_SHOWN = 6


def _action_lines(action: PlanAction, cis: Mapping[str, CI], checkbox: bool, brief: bool = False) -> list[str]:
    lines = procedure_lines(action.procedure, checkbox=checkbox, cautions=action.cautions, brief=brief)
    why = "; ".join(action.reasons[:_NAMES_SHOWN])
    # After the heading, its blank line and the facts line.
    lines[3:3] = ["", f"Applies here to {_names(list(action.ci_ids), cis, _NAMES_SHOWN)}. Why: {why}"]
    return lines


def _first_steps(plan: EmergencyPlan, cis: Mapping[str, CI]) -> list[str]:
    """Return the few lines to read first: whom to call, what to check, what to do at each level."""
    steps = []
    if plan.notify:
        # The team that owns the first CI to check acts first, so it leads the list.
        suspect = next(iter(plan.situation.known_causes), plan.check_first[0].ci_id if plan.check_first else None)
        first_owner = cis[suspect].owner if suspect in cis else None
        owners = list(dict.fromkeys([*([first_owner] if first_owner else []), *(n.owner for n in plan.notify)]))
        more = f" and {_count(len(owners) - 3, 'more owner')}" if len(owners) > 3 else ""
        steps.append(f"Notify {', '.join(owners[:3])}{more}.")
    known = plan.situation.known_causes
    if known:
        steps.append(f"The incident records the root cause: {_names(list(known), cis, 3)}. Start there.")
    elif plan.check_first:
        top = plan.check_first[0]
        evidence = next((line for line in top.evidence if "before onset" in line), top.evidence[0] if top.evidence else "")
        ci = cis.get(top.ci_id)
        owner = f" (owner {ci.owner})" if ci is not None and ci.owner else ""
        steps.append(f"Check {_name(top.ci_id, cis)}{owner} first: {evidence}.")
    for action in plan.first_actions:
        level = action.procedure.level.value.capitalize()
        steps.append(f"{level} level: {action.procedure.id}, {action.procedure.title}.")
    if not plan.first_actions and plan.actions:
        steps.append("No procedure targets the likely culprits or the observed CIs; see section 3.")
    return [f"{number}. {step}" for number, step in enumerate(steps, start=1)]


def _notification_line(notification: Notification, suspects: set[str], cis: Mapping[str, CI]) -> str:
    business = [ci_id for ci_id in notification.ci_ids if ci_id in cis and cis[ci_id].is_business]
    suspected = [ci_id for ci_id in notification.ci_ids if ci_id in suspects and ci_id not in business]
    others = [ci_id for ci_id in notification.ci_ids if ci_id not in business and ci_id not in suspected]
    parts = []
    if business:
        parts.append(f"owner of business services and transactions {_names(business, cis)}")
    if suspected:
        parts.append(f"owner of CIs to check first {_names(suspected, cis)}")
    if others:
        parts.append(f"owner of impacted CIs {_names(others, cis)}")
    return f"- **{notification.owner}**, {' and '.join(parts)}"


def plan_markdown(plan: EmergencyPlan, cis: Mapping[str, CI], *, brief: bool = False) -> str:
    """Return the emergency plan as one Markdown document, in the order a responder uses it.

    ``brief`` leaves out the steps, contacts and escalation of each procedure,
    for a first overview; ``faultgraph procedure ID`` prints one in full.
    """
    situation = plan.situation
    observed = set(situation.observed)
    beyond = [entry for entry in plan.impacted if entry.ci_id not in observed]
    impacts = Counter(entry.impact for entry in beyond)
    counted = ", ".join(
        f"{impacts[name]:,} {name.lower().replace('_', ' ')}" for name in ("DOWN", "DEGRADED", "AT_RISK") if impacts[name]
    )
    state = "down" if situation.down else "degraded (no symptom tag says down)"
    lines = [
        f"# Emergency plan: {_names(list(situation.observed), cis, 3)}",
        "",
        f"Situation: {situation.describe()}.",
        f"Generated {format_time(plan.generated_at.replace(microsecond=0))} by faultgraph.",
        "",
        f"Impact: the observed CIs count as {state}; they hurt {_count(len(beyond), 'more CI')}"
        + (f" ({counted})." if counted else "."),
    ]
    if plan.business_services:
        lines.append(f"Business services and transactions hit: {_names(plan.business_services, cis, 10)}.")
    lines += ["", "## First steps", "", *_first_steps(plan, cis), ""]
    if brief:
        lines += ["Brief plan: `faultgraph procedure ID` prints the steps, contacts and escalation of a procedure.", ""]

    lines += ["## 1. Notify", ""]
    if len(plan.impacted) > OWNER_LIMIT:
        lines += [
            f"Owners of the {OWNER_LIMIT:,} most affected of {len(plan.impacted):,} impacted CIs; "
            "blastRadius lists them all.",
            "",
        ]
    if plan.notify:
        suspects = {*plan.situation.known_causes, *(culprit.ci_id for culprit in plan.check_first[:3])}
        lines += [_notification_line(notification, suspects, cis) for notification in plan.notify]
    else:
        lines.append("- No impacted CI records an owner; find the owners and add them to the CMDB.")
    lines.append("")
    for action in plan.communication:
        lines += _action_lines(action, cis, checkbox=True, brief=brief)

    lines += ["## 2. Check first", ""]
    if situation.known_causes:
        lines += [f"The incident records the root cause: {_names(list(situation.known_causes), cis)}.", ""]
    if not plan.check_first:
        lines += [f"No likely culprit: {plan.culprit_reason or 'no candidate'}.", ""]
    for number, culprit in enumerate(plan.check_first, start=1):
        ci = cis.get(culprit.ci_id)
        owner = f", owner {ci.owner}" if ci is not None and ci.owner else ""
        recorded = ", the recorded root cause" if culprit.ci_id in situation.known_causes else ""
        lines.append(f"{number}. **{_name(culprit.ci_id, cis)}**{recorded}, score {culprit.score:.2f}{owner}")
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
    if plan.uncovered:
        lines += [
            f"**No procedure** covers {_names(plan.uncovered, cis, 10)}: decide on the spot, and add one afterwards.",
            "",
        ]
    if not plan.actions:
        lines += ["No procedure of the plan applies to these CIs.", ""]
    for level in _LEVEL_HEADINGS:
        actions = plan.actions_at(level)
        if actions:
            lines += [f"### {_LEVEL_HEADINGS[level]}", ""]
            for action in actions:
                lines += _action_lines(action, cis, checkbox=True, brief=brief)

    if plan.tooling:
        lines += ["## 4. Tooling notes", ""]
        for action in plan.tooling:
            lines += _action_lines(action, cis, checkbox=False, brief=brief)
    return "\n".join(lines).rstrip() + "\n"


def gaps_markdown(gaps: PlanGaps, cis: Mapping[str, CI]) -> str:
    """Return the plan-gaps report as Markdown."""
    options = gaps.options
    lines = [
        "# Emergency plan upkeep",
        "",
        f"As of {format_time(gaps.as_of.replace(microsecond=0))}: {gaps.procedure_count} procedures, "
        f"{gaps.important_count} important CIs, {gaps.gap_count} gaps. Reviews are due every "
        f"{options.review_within.days} days and drills every {options.drill_within.days} days. CIs count as "
        f"important from criticality {options.min_criticality.value}.",
    ]

    lines += ["", f"## Important CIs without a procedure ({len(gaps.uncovered)})", ""]
    lines += [f"- {_name(item.ci_id, cis)}: {'; '.join(item.reasons[:3])}" for item in gaps.uncovered] or ["- none"]
    if gaps.important_count == 0:
        lower = "" if options.min_criticality == Criticality.LOW else ", or lower the minimum criticality"
        lines += [
            "",
            f"No CI counts as important: none has criticality {options.min_criticality.value} or higher, and no "
            "business service or transaction of that criticality depends on one. Set the criticality of your "
            f"CIs and business services{lower}.",
        ]

    lines += ["", f"## Procedures overdue for review or drill ({len(gaps.stale)})", ""]
    stale = [f"- {item.procedure.id} ({item.procedure.title}): {'; '.join(item.reasons)}" for item in gaps.stale]
    lines += stale or ["- none"]

    lines += ["", f"## Links to CIs that are gone, and selectors that match nothing ({len(gaps.broken_links)})", ""]
    lines += [f"- {link.procedure.id} {link.field}: {link.reason}" for link in gaps.broken_links] or ["- none"]

    lines += ["", f"## Procedures named but not in the plan ({len(gaps.missing_procedures)})", ""]
    missing = [
        f"- {item.referenced_by} {item.field}: {item.procedure_id} is not in the plan; import it or correct the id"
        for item in gaps.missing_procedures
    ]
    lines += missing or ["- none"]
    return "\n".join(lines) + "\n"


def _action_document(action: PlanAction) -> dict[str, object]:
    return {
        "procedure": procedure_to_record(action.procedure),
        "ci_ids": list(action.ci_ids),
        "reasons": list(action.reasons),
        "culprit_rank": action.culprit_rank,
        "cautions": list(action.cautions),
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
