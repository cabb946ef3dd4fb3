"""Which emergency-plan procedures apply to a CI, and why.

A procedure applies to a CI that it names in ``applies_to`` and to every CI
that one of its selectors picks. A selector's type, environment and tag
conditions are read from the CI itself. Its ``related_to`` condition ("every
CI that RUNS_ON cluster-1") is resolved once per snapshot on the topology. It
matches the CIs that are the source of such a relationship to the anchor CI.
A transitive selector also matches those that reach it through a chain.

Procedures that apply are ordered most specific first: a direct link, then
selectors by the number of conditions they set (a relationship counts two),
then by the order in which a plan uses their level, then by id. Each carries
every reason it applies, the most specific first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from service.analysis.topology import RELATIONSHIP_TYPES, Topology, edge_positions
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


@dataclass(frozen=True)
class _Entry:
    """A selector of a procedure, with its specificity and reason computed once per snapshot."""

    procedure: Procedure
    selector: Selector
    specificity: int
    reason: str


class ProcedureIndex:
    """The procedures of one snapshot, indexed to find those that apply to a CI quickly.

    Attribute-only selectors are filed under one of their conditions (type,
    then environment, then first tag), so a CI is compared only with the
    selectors that could match it. ``related_to`` selectors are resolved to
    the set of CIs they match when the index is built.
    """

    def __init__(self, procedures: Sequence[Procedure], topology: Topology) -> None:
        self.procedures: dict[str, Procedure] = {procedure.id: procedure for procedure in procedures}
        self._direct: dict[str, list[Procedure]] = defaultdict(list)
        self._by_type: dict[str, list[_Entry]] = defaultdict(list)
        self._by_environment: dict[str, list[_Entry]] = defaultdict(list)
        self._by_tag: dict[str, list[_Entry]] = defaultdict(list)
        self._related: dict[str, list[_Entry]] = defaultdict(list)
        self.related_matches: dict[RelatedTo, frozenset[str]] = {}
        for procedure in procedures:
            for ci_id in dict.fromkeys(procedure.applies_to):
                self._direct[ci_id].append(procedure)
            for position, selector in enumerate(procedure.selectors):
                entry = _Entry(
                    procedure, selector, selector.specificity, f"selector {position + 1} matches: {selector.describe()}"
                )
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

    def _candidates(self, ci: CI) -> Iterator[_Entry]:
        yield from self._related.get(ci.id, ())
        yield from self._by_type.get(ci.type, ())
        if ci.environment is not None:
            yield from self._by_environment.get(ci.environment, ())
        for tag in dict.fromkeys(ci.tags):
            yield from self._by_tag.get(tag, ())

    def applicable(self, ci: CI) -> list[AppliedProcedure]:
        """Return the procedures that apply to the CI, most specific first."""
        reasons: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for procedure in self._direct.get(ci.id, ()):
            reasons[procedure.id].append((DIRECT_SPECIFICITY, f"linked to {ci.id} directly"))
        for entry in self._candidates(ci):
            if selector_matches_attributes(entry.selector, ci):
                reasons[entry.procedure.id].append((entry.specificity, entry.reason))
        applied = []
        for procedure_id, found in reasons.items():
            if len(found) > 1:
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

    def covers(self, ci: CI) -> bool:
        """Return whether any procedure applies to the CI, stopping at the first one found."""
        if ci.id in self._direct:
            return True
        return any(selector_matches_attributes(entry.selector, ci) for entry in self._candidates(ci))


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
    # A source of this relationship to a node is its consumer, unless the
    # type's provider is the source (PART_OF), where it is its provider.
    if related.relationship.provider_is_source:
        indptr, neighbour_of = topology.reverse_indptr, topology.reverse_provider
        type_of = topology.edge_type[topology.reverse_edge]
    else:
        indptr, neighbour_of, type_of = topology.indptr, topology.consumer, topology.edge_type
    seen = np.zeros(topology.node_count, dtype=bool)
    seen[anchor] = True
    frontier = np.array([anchor], dtype=np.int64)
    found: list[np.ndarray] = []
    while len(frontier):
        positions = edge_positions(indptr, frontier)
        neighbours = np.unique(neighbour_of[positions[type_of[positions] == code]])
        frontier = neighbours[~seen[neighbours]]
        seen[frontier] = True
        found.append(frontier)
        if not related.transitive:
            break
    nodes = np.concatenate(found).tolist() if found else []
    return sorted(topology.ids[node] for node in nodes)
