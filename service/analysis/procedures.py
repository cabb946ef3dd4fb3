"""Which emergency-plan procedures apply to a CI, and why.

A procedure applies to a CI that it names in ``applies_to`` and to every CI
that one of its selectors picks. A selector's type, environment and tag
conditions are read from the CI itself. Its ``related_to`` condition ("every
CI that RUNS_ON cluster-1") is resolved once per snapshot on the topology: it
is the set of CIs that are the source of such a relationship to the anchor
CI, or that reach it through a chain of them when the selector is transitive.

Procedures that apply are ordered most specific first: a direct link, then
selectors by the number of conditions they set (a relationship counts two),
then by the order in which a plan uses their level, then by id. Each carries
every reason it applies, the most specific first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from service.analysis.topology import RELATIONSHIP_TYPES, Topology
from service.model import CI, Procedure, ProcedureLevel, RelatedTo, Selector, selector_matches_attributes

DIRECT_SPECIFICITY = 100
"""The specificity of a direct link, above any selector's."""

ROLLBACK_SPECIFICITY = 1000
"""The specificity of the rollback procedure of a suspect change, above a direct link."""

LEVEL_ORDER: dict[ProcedureLevel, int] = {level: position for position, level in enumerate(ProcedureLevel)}


@dataclass(frozen=True)
class AppliedProcedure:
    """A procedure that applies to one CI, with every reason it applies, the most specific first."""

    procedure: Procedure
    ci_id: str
    reasons: tuple[str, ...]
    specificity: int

    @property
    def direct(self) -> bool:
        return self.specificity >= DIRECT_SPECIFICITY

    def sort_key(self) -> tuple[int, int, str]:
        return (-self.specificity, LEVEL_ORDER[self.procedure.level], self.procedure.id)


class ProcedureIndex:
    """The procedures of one snapshot, indexed to find those that apply to a CI quickly.

    Attribute-only selectors are filed under one of their conditions (type,
    then environment, then first tag), so a CI is compared only with the
    selectors that could match it.
    """

    def __init__(self, procedures: Sequence[Procedure], topology: Topology) -> None:
        self.procedures: dict[str, Procedure] = {procedure.id: procedure for procedure in procedures}
        self._direct: dict[str, list[Procedure]] = defaultdict(list)
        self._by_type: dict[str, list[tuple[Procedure, int, Selector]]] = defaultdict(list)
        self._by_environment: dict[str, list[tuple[Procedure, int, Selector]]] = defaultdict(list)
        self._by_tag: dict[str, list[tuple[Procedure, int, Selector]]] = defaultdict(list)
        self._related: dict[str, list[tuple[Procedure, int, Selector]]] = defaultdict(list)
        self.related_matches: dict[RelatedTo, frozenset[str]] = {}
        for procedure in procedures:
            for ci_id in dict.fromkeys(procedure.applies_to):
                self._direct[ci_id].append(procedure)
            for position, selector in enumerate(procedure.selectors):
                entry = (procedure, position, selector)
                if selector.related_to is not None:
                    related = selector.related_to
                    if related not in self.related_matches:
                        self.related_matches[related] = frozenset(related_sources(topology, related))
                    for ci_id in self.related_matches[related]:
                        self._related[ci_id].append(entry)
                elif selector.type is not None:
                    self._by_type[selector.type].append(entry)
                elif selector.environment is not None:
                    self._by_environment[selector.environment].append(entry)
                else:
                    self._by_tag[selector.tags[0]].append(entry)

    def __len__(self) -> int:
        return len(self.procedures)

    def applicable(self, ci: CI) -> list[AppliedProcedure]:
        """Return the procedures that apply to the CI, most specific first."""
        reasons: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for procedure in self._direct.get(ci.id, ()):
            reasons[procedure.id].append((DIRECT_SPECIFICITY, f"linked to {ci.id} directly"))
        candidates: list[tuple[Procedure, int, Selector]] = [
            *self._related.get(ci.id, ()),
            *self._by_type.get(ci.type, ()),
            *(self._by_environment.get(ci.environment, ()) if ci.environment is not None else ()),
            *(entry for tag in dict.fromkeys(ci.tags) for entry in self._by_tag.get(tag, ())),
        ]
        for procedure, position, selector in candidates:
            if selector_matches_attributes(selector, ci):
                reasons[procedure.id].append(
                    (selector.specificity, f"selector {position + 1} matches: {selector.describe()}")
                )
        applied = []
        for procedure_id, found in reasons.items():
            found.sort(key=lambda item: -item[0])
            applied.append(
                AppliedProcedure(
                    procedure=self.procedures[procedure_id],
                    ci_id=ci.id,
                    reasons=tuple(dict.fromkeys(reason for _, reason in found)),
                    specificity=found[0][0],
                )
            )
        applied.sort(key=AppliedProcedure.sort_key)
        return applied

    def matches_any(self, cis: Iterable[CI]) -> set[str]:
        """Return the ids of the procedures that apply to at least one of the CIs."""
        return {applied.procedure.id for ci in cis for applied in self.applicable(ci)}


def related_sources(topology: Topology, related: RelatedTo) -> list[str]:
    """Return the ids of the CIs that are the source of a ``related.relationship`` to ``related.ci``.

    With ``related.transitive``, CIs that reach the anchor through a chain of
    such relationships count too. The anchor itself never does. Returns an
    empty list when the anchor is not in the topology.
    """
    anchor = topology.index.get(related.ci)
    if anchor is None:
        return []
    code = RELATIONSHIP_TYPES.index(related.relationship.value)
    provider_is_source = related.relationship.provider_is_source
    seen = {anchor}
    frontier = [anchor]
    found: list[int] = []
    while frontier:
        following = []
        for node in frontier:
            # A source of this relationship to ``node`` is its consumer, unless
            # the type's provider is the source (PART_OF), where it is its provider.
            if provider_is_source:
                start, end = topology.reverse_indptr[node], topology.reverse_indptr[node + 1]
                edges = topology.reverse_edge[start:end]
                neighbours = topology.reverse_provider[start:end][topology.edge_type[edges] == code]
            else:
                start, end = topology.indptr[node], topology.indptr[node + 1]
                neighbours = topology.consumer[start:end][topology.edge_type[start:end] == code]
            for neighbour in np.unique(neighbours).tolist():
                if neighbour not in seen:
                    seen.add(neighbour)
                    found.append(neighbour)
                    following.append(neighbour)
        frontier = following if related.transitive else []
    return sorted(topology.ids[node] for node in found)
