"""Emergency plans and plan upkeep on a store: the part that the GraphQL API and the CLI share.

The analysis itself is pure (``service.analysis.plan``). This module turns a
request (a symptom, an incident id or a CI id) into a ``Situation`` and reads
the CI records the plan names. It checks the input with errors that name the
field and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from service.analysis.culprits import Symptom
from service.analysis.plan import (
    OWNER_LIMIT,
    EmergencyPlan,
    PlanGaps,
    PlanGapsOptions,
    Situation,
    emergency_plan,
    plan_gaps,
    plan_scope,
)
from service.errors import InvalidInputError, NotFoundError
from service.model import CI, Status
from service.snapshot import Snapshot
from service.store.base import CIFilter, GraphStore

_PAGE = 1000


def situation_for(
    store: GraphStore,
    snapshot: Snapshot,
    *,
    symptom: Symptom | None = None,
    incident_id: str | None = None,
    ci_id: str | None = None,
    now: datetime,
) -> Situation:
    """Combine a symptom, an incident and a failing CI into one situation.

    The observed CIs are the symptom's, the incident's impacted CIs (or its
    root causes when it lists none) and the CI. Onset, tags and text come from
    the symptom, else from the incident; a plan for a CI alone starts now.

    Raises:
        InvalidInputError: none of the three is given.
        NotFoundError: the incident or a CI does not exist.
    """
    if symptom is None and incident_id is None and ci_id is None:
        raise InvalidInputError(
            "emergencyPlan needs a symptom, an incidentId or a ciId; pass at least one",
            field="symptom",
        )
    incident = None
    if incident_id is not None:
        incident = store.get_incidents([incident_id]).get(incident_id)
        if incident is None:
            raise NotFoundError(
                f"incident {incident_id!r} not found; check the id with the incidents query",
                field="incidentId",
            )
    observed: list[str] = []
    if symptom is not None:
        observed += symptom.ci_ids
    if incident is not None:
        observed += incident.impacted or incident.root_causes
    if ci_id is not None:
        observed.append(ci_id)
    observed = list(dict.fromkeys(observed))
    if not observed:
        raise InvalidInputError(
            f"incident {incident_id!r} lists no impacted or root-cause CI; pass a symptom or a ciId as well",
            field="incidentId",
        )
    unknown = [item for item in observed if item not in snapshot.topology.index]
    if unknown:
        field = "ciId" if unknown == [ci_id] else "symptom.ciIds"
        raise NotFoundError(f"CI(s) not found: {', '.join(unknown)}; check the ids with the cis query", field=field)

    if symptom is not None:
        started_at, tags, text = symptom.started_at, symptom.tags, symptom.text
    elif incident is not None:
        started_at, tags, text = incident.started_at, incident.symptom_tags, incident.symptom_text
    else:
        # A plan for a CI alone is for a CI that fails now.
        started_at, tags, text = now.replace(microsecond=0), ("down",), None
    if symptom is not None and incident is not None:
        tags = tags or incident.symptom_tags
        text = text or incident.symptom_text
    return Situation(tuple(observed), started_at, tuple(tags), text, incident)


def build_emergency_plan(
    store: GraphStore, snapshot: Snapshot, situation: Situation, now: datetime
) -> tuple[EmergencyPlan, dict[str, CI]]:
    """Return the emergency plan for the situation and the records of the CIs it names."""
    report, impacted, business = plan_scope(snapshot.topology, situation, snapshot.events, snapshot.statuses)
    # The owners of the most affected CIs are enough to notify; reading every
    # record of a radius of fifty thousand CIs takes seconds.
    wanted = [
        *situation.known_causes,
        *(c.ci_id for c in report.culprits),
        *(e.ci_id for e in impacted[:OWNER_LIMIT]),
        *business,
    ]
    cis = store.get_cis(list(dict.fromkeys(wanted)))
    plan = emergency_plan(
        situation, report, impacted, business, cis, snapshot.plan, now, gone=gone_links(snapshot, now)
    )
    return plan, cis


def gone_links(snapshot: Snapshot, now: datetime) -> dict[str, str]:
    """Map each CI that a procedure names directly but that is gone or retired to why."""
    topology = snapshot.topology
    moment = now.timestamp()
    gone: dict[str, str] = {}
    for procedure in snapshot.plan.procedures.values():
        for ci_id in procedure.applies_to:
            node = topology.index.get(ci_id)
            if node is None:
                gone[ci_id] = "is not in the CMDB"
            elif snapshot.statuses.get(ci_id) == Status.RETIRED:
                gone[ci_id] = "is retired"
            elif topology.node_valid_until[node] <= moment:
                gone[ci_id] = "is no longer valid"
    return gone


def all_cis(store: GraphStore) -> list[CI]:
    """Return every stored CI, reading page after page."""
    found: list[CI] = []
    after = None
    while True:
        page = store.list_cis(CIFilter(), _PAGE, after)
        found.extend(page.items)
        if not page.has_next_page:
            return found
        after = page.end_cursor


def build_plan_gaps(
    store: GraphStore, snapshot: Snapshot, now: datetime, options: PlanGapsOptions
) -> tuple[PlanGaps, dict[str, CI]]:
    """Return the upkeep report of the whole plan and the CI records it names."""
    cis: Sequence[CI] = all_cis(store)
    gaps = plan_gaps(snapshot.topology, cis, snapshot.plan, snapshot.events, now, options)
    return gaps, {ci.id: ci for ci in cis}
