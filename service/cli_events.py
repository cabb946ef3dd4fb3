"""Text and JSON output of the ``culprits`` and ``review-change`` commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

from service.analysis.blast_radius import Impact
from service.analysis.change_review import ChangeReview
from service.analysis.culprits import CulpritReport, Symptom
from service.analysis.topology import Topology
from service.model import CI, Change, Incident, format_time


def _change_summary(change: Change) -> dict[str, Any]:
    return {
        "id": change.id,
        "title": change.title,
        "kind": change.kind.value,
        "status": change.status.value,
        "risk": change.risk.value,
        "start": format_time(change.actual_start or change.planned_start),
        "end": format_time(change.actual_end or change.planned_end),
        "affected": list(change.affected),
    }


def _incident_summary(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "started_at": format_time(incident.started_at),
        "root_causes": list(incident.root_causes),
        "caused_by_change": incident.caused_by_change,
    }


def culprits_document(symptom: Symptom, report: CulpritReport, cis: Mapping[str, CI]) -> dict[str, Any]:
    """Return a likely-culprits report as plain JSON-ready data."""
    culprits = []
    for culprit in report.culprits:
        ci = cis.get(culprit.ci_id)
        culprits.append(
            {
                "rank": culprit.rank,
                "id": culprit.ci_id,
                "name": ci.name if ci else culprit.ci_id,
                "type": ci.type if ci else None,
                "owner": ci.owner if ci else None,
                "score": culprit.score,
                "distance": culprit.distance,
                "explains": culprit.explained,
                "evidence": culprit.evidence,
                "changes": [_change_summary(change) for change in culprit.changes],
                "incidents": [_incident_summary(incident) for incident in culprit.incidents],
            }
        )
    return {
        "symptom": {
            "ci_ids": list(symptom.ci_ids),
            "started_at": format_time(symptom.started_at),
            "tags": list(symptom.tags),
            "text": symptom.text,
        },
        "culprits": culprits,
        "rollback_first": [_change_summary(change) for change in report.rollback_first],
        "reason": report.reason,
        "candidate_count": report.candidate_count,
        "unknown_ci_ids": report.unknown_ci_ids,
    }


def culprits_text(report: CulpritReport, cis: Mapping[str, CI]) -> str:
    """Return a likely-culprits report as a table with one evidence line per row line, and a summary."""
    if report.reason is not None:
        return f"no likely culprit: {report.reason}"
    rows = []
    for culprit in report.culprits:
        ci = cis.get(culprit.ci_id)
        rows.append(
            (
                culprit.rank,
                f"{culprit.score:.2f}",
                culprit.ci_id,
                ci.type if ci else "",
                culprit.distance,
                "\n".join(culprit.evidence),
            )
        )
    lines = [tabulate(rows, headers=["rank", "score", "CI", "type", "dist", "evidence"])]
    if report.rollback_first:
        lines.append("")
        lines.append("roll back first:")
        lines.extend(
            f"  {change.id} '{change.title}' on {', '.join(change.affected)}" for change in report.rollback_first
        )
    if report.unknown_ci_ids:
        lines.append("")
        lines.append(f"ignored, not in the topology at onset: {', '.join(report.unknown_ci_ids)}")
    lines.append("")
    lines.append(f"{report.candidate_count} candidates; showing {len(report.culprits)}")
    return "\n".join(lines)


def _reviewers(review: ChangeReview, cis: Mapping[str, CI]) -> tuple[dict[str, list[str]], list[str]]:
    owners: dict[str, list[str]] = {}
    unowned: list[str] = []
    for ci_id in review.reviewer_ci_ids:
        ci = cis.get(ci_id)
        if ci is not None and ci.owner:
            owners.setdefault(ci.owner, []).append(ci_id)
        else:
            unowned.append(ci_id)
    return owners, unowned


def _impacted_rows(review: ChangeReview, topology: Topology) -> list[dict[str, Any]]:
    radius = review.radius
    if radius is None:
        return []
    return [
        {
            "id": topology.ids[node],
            "type": topology.type_names[topology.node_type[node]],
            "impact": Impact(level).name,
            "distance": int(distance),
        }
        for node, level, distance in zip(
            radius.impacted.tolist(), radius.impact.tolist(), radius.distance.tolist(), strict=True
        )
    ]


def review_document(review: ChangeReview, topology: Topology, cis: Mapping[str, CI]) -> dict[str, Any]:
    """Return a change review as plain JSON-ready data."""
    owners, unowned = _reviewers(review, cis)
    window = review.window
    summary = review.radius.summary if review.radius is not None else None
    return {
        "change": _change_summary(review.change),
        "window": None
        if window is None
        else {"start": format_time(window.start), "end": format_time(window.end), "assumed_end": window.assumed_end},
        "risk": review.risk.value,
        "risk_reason": review.risk_reason,
        "reasons": review.reasons,
        "affected": review.affected_ci_ids,
        "unknown_ci_ids": review.unknown_ci_ids,
        "impacted": _impacted_rows(review, topology),
        "impact_summary": None
        if summary is None
        else {"total": summary.total, "by_impact": {level.name: count for level, count in summary.by_impact.items()}},
        "business_impact": {ci_id: level.name for ci_id, level in review.business_impact.items()},
        "collisions": [
            {
                "change": _change_summary(item.change),
                "overlap_minutes": item.overlap_minutes,
                "shared_ci_ids": item.shared_ci_ids,
                "impacted_ci_ids": item.impacted_ci_ids,
                "reason": item.reason,
            }
            for item in review.collisions
        ],
        "past_incidents": [
            {
                "incident": _incident_summary(item.incident),
                "change_id": item.change_id,
                "ci_ids": item.ci_ids,
                "reason": item.reason,
            }
            for item in review.past_incidents
        ],
        "reviewers": [{"owner": owner, "ci_ids": ids} for owner, ids in owners.items()],
        "unowned_ci_ids": unowned,
    }


def review_text(review: ChangeReview, topology: Topology, cis: Mapping[str, CI], limit: int) -> str:
    """Return a change review as readable sections; the radius table lists at most ``limit`` CIs."""
    change = review.change
    lines = [f"{change.id} '{change.title}' ({change.kind.value}, {change.status.value}, risk {change.risk.value})"]
    window = review.window
    if window is None:
        lines.append("window: none, the change has no start time, so collisions were not checked")
    else:
        assumed = " (end assumed: the change has none)" if window.assumed_end else ""
        lines.append(f"window: {format_time(window.start)} to {format_time(window.end)}{assumed}")
    lines.append(f"affects: {', '.join(review.affected_ci_ids) or '-'}")
    if review.unknown_ci_ids:
        lines.append(f"not stored: {', '.join(review.unknown_ci_ids)}")
    lines.append("")
    lines.append(f"risk: {review.risk.value.upper()}")
    lines.extend(f"  - {reason}" for reason in review.reasons)

    rows = _impacted_rows(review, topology)
    lines.append("")
    if review.radius is None:
        lines.append("blast radius: none of the affected CIs is stored")
    else:
        counts = ", ".join(
            f"{count} {level.name}" for level, count in sorted(review.radius.summary.by_impact.items(), reverse=True)
        )
        lines.append(f"blast radius: {review.radius.summary.total} CIs ({counts})")
        if rows:
            shown = rows[:limit]
            lines.append(
                tabulate(
                    [(row["impact"], row["distance"], row["id"], row["type"]) for row in shown],
                    headers=["impact", "dist", "CI", "type"],
                )
            )
            if len(rows) > len(shown):
                lines.append(f"(showing {len(shown)} of {len(rows)}; raise --limit for more)")

    lines.append("")
    if review.collisions:
        lines.append("collisions:")
        lines.append(
            tabulate(
                [
                    (
                        item.change.id,
                        f"{format_time(item.window.start)} to {format_time(item.window.end)}",
                        ", ".join(item.shared_ci_ids + item.impacted_ci_ids),
                        item.reason,
                    )
                    for item in review.collisions
                ],
                headers=["change", "window", "CIs", "reason"],
            )
        )
    else:
        lines.append("collisions: none")

    lines.append("")
    if review.past_incidents:
        lines.append("past incidents caused by changes to these CIs:")
        lines.append(
            tabulate(
                [
                    (
                        item.incident.id,
                        item.incident.severity.value,
                        format_time(item.incident.started_at),
                        item.change_id,
                        item.incident.title,
                    )
                    for item in review.past_incidents
                ],
                headers=["incident", "severity", "started", "caused by", "title"],
            )
        )
    else:
        lines.append("past incidents caused by changes to these CIs: none")

    owners, unowned = _reviewers(review, cis)
    lines.append("")
    lines.append("reviewers:")
    lines.append(tabulate([(owner, ", ".join(ids)) for owner, ids in owners.items()], headers=["owner", "CIs"]))
    if unowned:
        lines.append(f"CIs without an owner: {', '.join(unowned)}")
    return "\n".join(lines)
