"""The ``GraphStore`` contract, run against every store kind of ``FAULTGRAPH_TEST_STORES``."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.analysis.blast_radius import BlastRadiusOptions, Impact, blast_radius, path_to
from service.analysis.topology import RELATIONSHIP_TYPES, Topology, build_topology
from service.errors import ConflictError, InvalidInputError, NotFoundError
from service.model import CI, Criticality, Redundancy, Relationship, RelationshipType, Status, Strength
from service.store.base import CIFilter, DeleteResult, GraphStore, WriteResult
from service.store.embedded import EmbeddedStore
from tests.conftest import clear_neo4j

DEPENDS_ON = RelationshipType.DEPENDS_ON
RUNS_ON = RelationshipType.RUNS_ON
PART_OF = RelationshipType.PART_OF


def ci(ci_id: str, **fields: Any) -> CI:
    fields.setdefault("name", ci_id)
    fields.setdefault("type", "service")
    return CI(id=ci_id, **fields)


def relationship(source: str, type_: RelationshipType, target: str, **fields: Any) -> Relationship:
    return Relationship(source=source, target=target, type=type_, **fields)


FULL_CI = CI(
    id="payment-api",
    name="Payment API",
    type="service",
    environment="production",
    criticality=Criticality.CRITICAL,
    owner="team-payments",
    status=Status.DEGRADED,
    tags=("pci", "tier-1", "Zahlung"),
    attributes={
        "replicas": 3,
        "ports": [443, 8443],
        "labels": {"app": "pay", "nested": {"x": None}},
        "ratio": 0.25,
    },
    source="kubernetes",
    source_id="prod/payment-api",
    valid_from=datetime(2025, 3, 1, 14, 5, tzinfo=timezone(timedelta(hours=1))),
    valid_until=datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
)

FULL_RELATIONSHIP = Relationship(
    source="payment-api",
    target="db-1",
    type=DEPENDS_ON,
    strength=Strength.SOFT,
    redundancy=Redundancy(group="databases", min_available_percent=50.0),
    attributes={"port": 5432, "protocol": "postgres"},
    valid_from=datetime(2025, 3, 1, tzinfo=UTC),
    valid_until=datetime(2027, 3, 1, 12, 30, tzinfo=UTC),
)

# A small graph for listing, relationships and deletion tests.
LISTED = [
    ci("cart", name="Shopping Cart", environment="production", owner="team-checkout", tags=("web", "tier-1")),
    ci("checkout", name="Checkout", environment="production", owner="team-checkout", tags=("web",)),
    ci("db-1", name="Orders DB", type="database", environment="production", owner="team-dba", tags=("sql",)),
    ci("db-2", name="Orders Replica", type="database", environment="staging", owner="team-dba"),
    ci("node-7", name="Node 7", type="host", environment="production", tags=("bare-metal",)),
    ci("shop", name="Online Shop", type="business_service", owner="sales"),
]
LISTED_RELATIONSHIPS = [
    relationship("cart", DEPENDS_ON, "db-1", redundancy=Redundancy("orders", min_available=1)),
    relationship("cart", DEPENDS_ON, "db-2", redundancy=Redundancy("orders", min_available=1)),
    relationship("cart", RUNS_ON, "node-7"),
    relationship("checkout", DEPENDS_ON, "cart", strength=Strength.SOFT),
    relationship("cart", PART_OF, "shop", redundancy=Redundancy("front", min_available_percent=50.0)),
    relationship("checkout", PART_OF, "shop", redundancy=Redundancy("front", min_available_percent=50.0)),
]


@pytest.fixture
def listed_store(store: GraphStore) -> GraphStore:
    store.write(LISTED, LISTED_RELATIONSHIPS)
    return store


def listed_ids(store: GraphStore, filter: CIFilter, first: int = 100) -> list[str]:
    return [item.id for item in store.list_cis(filter, first, None).items]


def all_pages(store: GraphStore, filter: CIFilter, first: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    while True:
        page = store.list_cis(filter, first, after)
        pages.append([item.id for item in page.items])
        if not page.has_next_page:
            return pages
        after = page.end_cursor


# Round trips


def test_get_cis_round_trips_every_field(store: GraphStore) -> None:
    store.write([FULL_CI], [])

    stored = store.get_cis([FULL_CI.id])

    assert stored == {FULL_CI.id: FULL_CI}
    assert stored[FULL_CI.id].valid_from == datetime(2025, 3, 1, 13, 5, tzinfo=UTC)


def test_get_cis_round_trips_minimal_ci(store: GraphStore) -> None:
    minimal = ci("bare")
    store.write([minimal], [])

    assert store.get_cis(["bare"]) == {"bare": minimal}


def test_get_cis_omits_unknown_ids(store: GraphStore) -> None:
    store.write([ci("a"), ci("b")], [])

    assert set(store.get_cis(["b", "missing", "a", "b"])) == {"a", "b"}


def test_relationships_of_round_trips_every_field(store: GraphStore) -> None:
    store.write([FULL_CI, ci("db-1", type="database")], [FULL_RELATIONSHIP])

    assert store.relationships_of("payment-api", "outgoing") == [FULL_RELATIONSHIP]
    assert store.relationships_of("db-1", "incoming") == [FULL_RELATIONSHIP]


@pytest.mark.parametrize(
    "redundancy",
    [
        pytest.param(Redundancy("pool", min_available=2), id="min-available"),
        pytest.param(Redundancy("pool", min_available_percent=33.33), id="min-percent"),
        pytest.param(None, id="no-group"),
    ],
)
def test_relationships_of_round_trips_redundancy(store: GraphStore, redundancy: Redundancy | None) -> None:
    stored = relationship("app", DEPENDS_ON, "db", redundancy=redundancy)
    store.write([ci("app"), ci("db")], [stored])

    assert store.relationships_of("app", "outgoing") == [stored]


NON_ASCII_IDS = ["сервер-1", "数据库", "café ☕", "emoji-😀", "Ａpp", "ǅemo"]


def test_store_round_trips_non_ascii_ids(store: GraphStore) -> None:
    cis = [ci(ci_id, name=f"{ci_id} name", tags=(ci_id,)) for ci_id in NON_ASCII_IDS]
    relationships = [relationship(a, DEPENDS_ON, b) for a, b in pairwise(NON_ASCII_IDS)]
    store.write(cis, relationships)

    assert store.get_cis(NON_ASCII_IDS) == {c.id: c for c in cis}
    assert store.relationships_of("数据库", "incoming") == [relationships[0]]
    assert store.relationships_of("数据库", "outgoing") == [relationships[1]]
    assert store.existing_ids(["emoji-😀", "emoji-😁"]) == {"emoji-😀"}


# Listing, filters and pages


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        pytest.param(CIFilter(), ["cart", "checkout", "db-1", "db-2", "node-7", "shop"], id="no-filter"),
        pytest.param(CIFilter(name="orders"), ["db-1", "db-2"], id="name-substring"),
        pytest.param(CIFilter(name="SHOP"), ["cart", "shop"], id="name-ignores-case"),
        pytest.param(CIFilter(name="db-1"), [], id="name-not-id"),
        pytest.param(CIFilter(type="database"), ["db-1", "db-2"], id="type"),
        pytest.param(CIFilter(type="data"), [], id="type-exact"),
        pytest.param(CIFilter(tag="web"), ["cart", "checkout"], id="tag"),
        pytest.param(CIFilter(tag="we"), [], id="tag-exact"),
        pytest.param(CIFilter(environment="staging"), ["db-2"], id="environment"),
        pytest.param(CIFilter(text="DBA"), ["db-1", "db-2"], id="text-owner"),
        pytest.param(CIFilter(text="metal"), ["node-7"], id="text-tag"),
        pytest.param(CIFilter(text="node-"), ["node-7"], id="text-id"),
        pytest.param(CIFilter(text="replica"), ["db-2"], id="text-name"),
        pytest.param(
            CIFilter(type="service", tag="web", environment="production"), ["cart", "checkout"], id="all"
        ),
        pytest.param(CIFilter(type="database", environment="production"), ["db-1"], id="type-environment"),
        pytest.param(
            CIFilter(name="", text=""), ["cart", "checkout", "db-1", "db-2", "node-7", "shop"], id="empty"
        ),
    ],
)
def test_list_cis_filters(listed_store: GraphStore, filter: CIFilter, expected: list[str]) -> None:
    page = listed_store.list_cis(filter, 100, None)

    assert [item.id for item in page.items] == expected
    assert page.total_count == len(expected)
    assert page.has_next_page is False


def test_list_cis_name_ignores_non_ascii_case(store: GraphStore) -> None:
    store.write([ci("school", name="ÉCOLE Centrale"), ci("street", name="Straße")], [])

    assert listed_ids(store, CIFilter(name="école")) == ["school"]
    assert listed_ids(store, CIFilter(text="école")) == ["school"]


def test_list_cis_pages_cover_all_once(listed_store: GraphStore) -> None:
    pages = all_pages(listed_store, CIFilter(), 4)

    assert pages == [["cart", "checkout", "db-1", "db-2"], ["node-7", "shop"]]


def test_list_cis_pages_keep_filter(listed_store: GraphStore) -> None:
    pages = all_pages(listed_store, CIFilter(environment="production"), 2)

    assert pages == [["cart", "checkout"], ["db-1", "node-7"]]


def test_list_cis_total_count_ignores_cursor(listed_store: GraphStore) -> None:
    first_page = listed_store.list_cis(CIFilter(type="service"), 1, None)

    second_page = listed_store.list_cis(CIFilter(type="service"), 1, first_page.end_cursor)

    assert first_page.total_count == 2
    assert second_page.total_count == 2
    assert [item.id for item in second_page.items] == ["checkout"]
    assert second_page.has_next_page is False


def test_list_cis_last_page_has_no_next(listed_store: GraphStore) -> None:
    page = listed_store.list_cis(CIFilter(), 6, None)

    assert len(page.items) == 6
    assert page.has_next_page is False
    assert page.end_cursor is not None


def test_list_cis_first_zero_counts_only(listed_store: GraphStore) -> None:
    page = listed_store.list_cis(CIFilter(), 0, None)

    assert page.items == []
    assert page.end_cursor is None
    assert page.has_next_page is True
    assert page.total_count == 6


def test_list_cis_empty_store(store: GraphStore) -> None:
    page = store.list_cis(CIFilter(), 10, None)

    assert page.items == []
    assert page.has_next_page is False
    assert page.end_cursor is None
    assert page.total_count == 0


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not base64!", id="not-base64"),
        pytest.param("//79", id="not-utf8"),
        pytest.param("é", id="non-ascii"),
    ],
)
def test_list_cis_rejects_invalid_cursor(listed_store: GraphStore, cursor: str) -> None:
    with pytest.raises(InvalidInputError, match="cursor .* is invalid; pass the endCursor"):
        listed_store.list_cis(CIFilter(), 2, cursor)


@pytest.mark.parametrize("first", [pytest.param(-1, id="negative"), pytest.param(1001, id="above-maximum")])
def test_list_cis_rejects_page_size(listed_store: GraphStore, first: int) -> None:
    with pytest.raises(InvalidInputError, match=f"first={first} is out of range"):
        listed_store.list_cis(CIFilter(), first, None)


def test_list_cis_orders_ids_by_code_point(store: GraphStore) -> None:
    # Characters above U+FFFF sort after U+E000..U+FFFF by code point, but before them in UTF-16.
    ids = [*NON_ASCII_IDS, "\ue000x", "\uffef", "b", "B", "a-10", "a-9", "\U00010400", "\U0010fff0"]
    store.write([ci(ci_id) for ci_id in ids], [])

    pages = all_pages(store, CIFilter(), 1)

    assert [page[0] for page in pages] == sorted(ids)


def test_list_cis_random_unicode_ids_page_in_order(store: GraphStore) -> None:
    generator = random.Random(7)
    alphabet = ["a", "Z", "é", "中", "\ud7ff", "\ue000", "\uffee", "😀", "\U00020000", "\U0010ffff", "-"]
    ids = sorted({"".join(generator.choices(alphabet, k=generator.randint(1, 4))) for _ in range(80)})
    store.write([ci(ci_id) for ci_id in ids], [])

    pages = all_pages(store, CIFilter(), 7)

    assert [ci_id for page in pages for ci_id in page] == ids


# Relationships


def test_relationships_of_outgoing(listed_store: GraphStore) -> None:
    outgoing = listed_store.relationships_of("cart", "outgoing")

    assert [(r.target, r.type.value) for r in outgoing] == [
        ("db-1", "DEPENDS_ON"),
        ("db-2", "DEPENDS_ON"),
        ("node-7", "RUNS_ON"),
        ("shop", "PART_OF"),
    ]


def test_relationships_of_incoming(listed_store: GraphStore) -> None:
    incoming = listed_store.relationships_of("shop", "incoming")

    assert [(r.source, r.type.value) for r in incoming] == [("cart", "PART_OF"), ("checkout", "PART_OF")]


def test_relationships_of_unknown_ci_is_empty(listed_store: GraphStore) -> None:
    assert listed_store.relationships_of("missing", "outgoing") == []
    assert listed_store.relationships_of("missing", "incoming") == []


def test_relationships_of_keeps_types_apart(store: GraphStore) -> None:
    both = [relationship("app", DEPENDS_ON, "db"), relationship("app", RelationshipType.CONNECTS_TO, "db")]
    store.write([ci("app"), ci("db")], both)

    assert store.relationships_of("app", "outgoing") == sorted(both, key=lambda r: r.type.value)


def test_existing_ids_returns_stored_only(listed_store: GraphStore) -> None:
    assert listed_store.existing_ids(["cart", "nope", "shop", "cart"]) == {"cart", "shop"}
    assert listed_store.existing_ids([]) == set()


@pytest.mark.parametrize(
    ("consumers", "expected"),
    [
        pytest.param(["cart"], {("cart", "db-1"), ("cart", "db-2")}, id="consumer-is-source"),
        pytest.param(["shop"], {("cart", "shop"), ("checkout", "shop")}, id="part-of-consumer-is-target"),
        pytest.param(["checkout"], set(), id="no-group"),
        pytest.param(["db-1", "node-7"], set(), id="providers-only"),
        pytest.param(
            ["cart", "shop", "cart"],
            {("cart", "db-1"), ("cart", "db-2"), ("cart", "shop"), ("checkout", "shop")},
            id="several",
        ),
    ],
)
def test_redundancy_members_by_consumer(
    listed_store: GraphStore, consumers: list[str], expected: set[tuple[str, str]]
) -> None:
    members = listed_store.redundancy_members(consumers)

    assert sorted((r.source, r.target) for r in members) == sorted(expected)
    assert all(r.redundancy is not None for r in members)


def test_redundancy_members_round_trip(listed_store: GraphStore) -> None:
    members = listed_store.redundancy_members(["shop"])

    expected = [r for r in LISTED_RELATIONSHIPS if r.target == "shop"]
    assert sorted(members, key=lambda r: r.key) == expected


# Writes and the version counter


def test_version_starts_at_zero(store: GraphStore) -> None:
    assert store.version() == 0


def test_check_passes_on_open_store(store: GraphStore) -> None:
    store.check()


def test_write_counts_created(store: GraphStore) -> None:
    result = store.write(LISTED, LISTED_RELATIONSHIPS)

    assert result == WriteResult(cis_created=6, relationships_created=6)
    assert result.changed is True
    assert store.version() > 0


def test_write_identical_is_unchanged(listed_store: GraphStore) -> None:
    before = listed_store.version()

    result = listed_store.write(LISTED, LISTED_RELATIONSHIPS)

    assert result == WriteResult(cis_unchanged=6, relationships_unchanged=6)
    assert result.changed is False
    assert listed_store.version() == before


def test_write_identical_in_small_batches_is_unchanged(listed_store: GraphStore) -> None:
    before = listed_store.version()

    result = listed_store.write(LISTED, LISTED_RELATIONSHIPS, batch_size=2)

    assert result == WriteResult(cis_unchanged=6, relationships_unchanged=6)
    assert listed_store.version() == before


def test_write_equal_times_in_other_offset_is_unchanged(store: GraphStore) -> None:
    store.write([FULL_CI], [])
    shifted = CI(
        **{**FULL_CI.__dict__, "valid_from": FULL_CI.valid_from.astimezone(timezone(timedelta(hours=-5)))}
    )
    before = store.version()

    result = store.write([shifted], [])

    assert result.cis_unchanged == 1
    assert store.version() == before


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"name": "Payment API v2"}, id="name"),
        pytest.param({"type": "application"}, id="type"),
        pytest.param({"environment": None}, id="environment-removed"),
        pytest.param({"criticality": Criticality.LOW}, id="criticality"),
        pytest.param({"owner": "team-risk"}, id="owner"),
        pytest.param({"status": Status.OPERATIONAL}, id="status"),
        pytest.param({"tags": ("pci", "tier-1")}, id="tag-removed"),
        pytest.param({"tags": ()}, id="tags-emptied"),
        pytest.param({"attributes": {**FULL_CI.attributes, "replicas": 4}}, id="attribute-value"),
        pytest.param({"attributes": {}}, id="attributes-emptied"),
        pytest.param({"source_id": "prod/payment-api-2"}, id="source-id"),
        pytest.param({"valid_until": None}, id="valid-until-removed"),
        pytest.param(
            {"valid_from": datetime(2025, 3, 1, 13, 5, 0, 1, tzinfo=UTC)}, id="valid-from-microsecond"
        ),
    ],
)
def test_write_detects_ci_update(store: GraphStore, changes: dict[str, Any]) -> None:
    store.write([FULL_CI], [])
    before = store.version()
    changed = CI(**{**FULL_CI.__dict__, **changes})

    result = store.write([changed], [])

    assert result == WriteResult(cis_updated=1)
    assert store.version() > before
    assert store.get_cis([FULL_CI.id]) == {FULL_CI.id: changed}


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"strength": Strength.HARD}, id="strength"),
        pytest.param({"redundancy": None}, id="redundancy-removed"),
        pytest.param({"redundancy": Redundancy("databases", min_available=1)}, id="redundancy-minimum"),
        pytest.param({"redundancy": Redundancy("other", min_available_percent=50.0)}, id="redundancy-group"),
        pytest.param({"attributes": {"port": 5433, "protocol": "postgres"}}, id="attribute"),
        pytest.param({"valid_from": None}, id="valid-from-removed"),
    ],
)
def test_write_detects_relationship_update(store: GraphStore, changes: dict[str, Any]) -> None:
    db = ci("db-1", type="database")
    store.write([FULL_CI, db], [FULL_RELATIONSHIP])
    before = store.version()
    changed = Relationship(**{**FULL_RELATIONSHIP.__dict__, **changes})

    result = store.write([FULL_CI, db], [changed])

    assert result == WriteResult(cis_unchanged=2, relationships_updated=1)
    assert store.version() > before
    assert store.relationships_of("payment-api", "outgoing") == [changed]


def test_write_repeated_id_counts_like_sequential_writes(store: GraphStore) -> None:
    first, second = ci("a", name="first"), ci("a", name="second")

    result = store.write([first, second, second], [])

    assert result == WriteResult(cis_created=1, cis_updated=1, cis_unchanged=1)
    assert store.get_cis(["a"]) == {"a": second}


@pytest.mark.parametrize(
    "batch_size",
    [pytest.param(5000, id="one-mixed-batch"), pytest.param(2, id="new-batch-then-stored-batch")],
)
def test_write_counts_new_and_stored_cis(listed_store: GraphStore, batch_size: int) -> None:
    renamed = CI(**{**LISTED[3].__dict__, "name": "Orders Replica v2"})
    new = [ci("new-1"), ci("new-2", type="database")]
    before = listed_store.version()

    result = listed_store.write([*new, LISTED[0], renamed], [], batch_size=batch_size)

    assert result == WriteResult(cis_created=2, cis_updated=1, cis_unchanged=1)
    assert listed_store.version() > before
    stored = listed_store.get_cis(["new-1", "new-2", "cart", "db-2"])
    assert stored == {"new-1": new[0], "new-2": new[1], "cart": LISTED[0], "db-2": renamed}


def test_write_repeated_relationship_across_batches(store: GraphStore) -> None:
    hard = relationship("app", DEPENDS_ON, "db")
    soft = relationship("app", DEPENDS_ON, "db", strength=Strength.SOFT)

    result = store.write([ci("app"), ci("db", type="database")], [hard, soft, soft], batch_size=1)

    expected = WriteResult(
        cis_created=2, relationships_created=1, relationships_updated=1, relationships_unchanged=1
    )
    assert result == expected
    assert store.relationships_of("app", "outgoing") == [soft]


def test_write_relationships_to_stored_cis(listed_store: GraphStore) -> None:
    added = relationship("checkout", DEPENDS_ON, "db-1")

    result = listed_store.write([], [added])

    assert result == WriteResult(relationships_created=1)
    assert added in listed_store.relationships_of("checkout", "outgoing")


def test_write_rejects_relationship_to_unknown_ci(store: GraphStore) -> None:
    before = store.version()

    with pytest.raises(ConflictError, match="not stored.*import .* CIs first"):
        store.write([ci("app")], [relationship("app", DEPENDS_ON, "ghost")])

    assert store.get_cis(["app"]) == {}
    assert store.version() == before


def test_write_reports_progress_per_batch(store: GraphStore) -> None:
    calls: list[tuple[int, int]] = []

    store.write(
        LISTED, LISTED_RELATIONSHIPS, batch_size=4, progress=lambda done, total: calls.append((done, total))
    )

    assert calls == [(4, 12), (6, 12), (10, 12), (12, 12)]


# Deletion


def test_delete_ci_without_relationships(listed_store: GraphStore) -> None:
    listed_store.write([ci("lonely")], [])
    before = listed_store.version()

    result = listed_store.delete_ci("lonely", cascade=False)

    assert result == DeleteResult(cis_deleted=1, relationships_deleted=0)
    assert listed_store.get_cis(["lonely"]) == {}
    assert listed_store.version() > before


def test_delete_ci_with_relationships_needs_cascade(listed_store: GraphStore) -> None:
    before = listed_store.version()

    with pytest.raises(
        ConflictError, match="CI 'cart' has 5 relationship\\(s\\); delete them first or pass cascade"
    ):
        listed_store.delete_ci("cart", cascade=False)

    assert set(listed_store.get_cis(["cart"])) == {"cart"}
    assert len(listed_store.relationships_of("cart", "outgoing")) == 4
    assert listed_store.version() == before


def test_delete_ci_cascade_removes_relationships(listed_store: GraphStore) -> None:
    before = listed_store.version()

    result = listed_store.delete_ci("cart", cascade=True)

    assert result == DeleteResult(cis_deleted=1, relationships_deleted=5)
    assert listed_store.get_cis(["cart"]) == {}
    assert listed_store.relationships_of("db-1", "incoming") == []
    assert [r.source for r in listed_store.relationships_of("shop", "incoming")] == ["checkout"]
    assert listed_store.version() > before


def test_delete_ci_unknown_raises_not_found(listed_store: GraphStore) -> None:
    with pytest.raises(NotFoundError, match="CI 'ghost' not found; nothing was deleted"):
        listed_store.delete_ci("ghost", cascade=True)


def test_delete_relationship_once(listed_store: GraphStore) -> None:
    before = listed_store.version()

    deleted = listed_store.delete_relationship("cart", "node-7", "RUNS_ON")

    assert deleted is True
    assert ("node-7", "RUNS_ON") not in [
        (r.target, r.type.value) for r in listed_store.relationships_of("cart", "outgoing")
    ]
    assert listed_store.version() > before


@pytest.mark.parametrize(
    ("source", "target", "type_"),
    [
        pytest.param("cart", "node-7", "DEPENDS_ON", id="other-type"),
        pytest.param("node-7", "cart", "RUNS_ON", id="reversed"),
        pytest.param("cart", "ghost", "RUNS_ON", id="unknown-ci"),
        pytest.param("cart", "node-7", "OWNS", id="unknown-type"),
    ],
)
def test_delete_relationship_absent(listed_store: GraphStore, source: str, target: str, type_: str) -> None:
    before = listed_store.version()

    assert listed_store.delete_relationship(source, target, type_) is False
    assert len(listed_store.relationships_of("cart", "outgoing")) == 4
    assert listed_store.version() == before


# Bulk topology


def generated_graph(seed: int, size: int = 120) -> tuple[list[CI], list[Relationship]]:
    """Return a random graph with soft edges, redundancy groups, PART_OF, cycles and validity bounds."""
    generator = random.Random(seed)
    moment = datetime(2025, 6, 1, tzinfo=UTC)
    types = ["host", "database", "service", "application", "business_service"]
    cis = []
    for number in range(size):
        valid_from = moment - timedelta(days=30) if number % 17 == 0 else None
        valid_until = moment + timedelta(days=10) if number % 23 == 0 else None
        cis.append(
            ci(
                f"ci-{number:03d}-é",
                type=types[number * len(types) // size],
                valid_from=valid_from,
                valid_until=valid_until,
            )
        )
    relationships: dict[tuple[str, str, str], Relationship] = {}
    for consumer in range(size // 5, size):
        provider_count = generator.randint(1, 4)
        group = f"group-{consumer}" if provider_count > 1 and generator.random() < 0.4 else None
        soft = generator.random() < 0.15
        minimum = generator.randint(1, provider_count)
        for provider in generator.sample(range(size), provider_count):
            if provider == consumer:
                continue
            if cis[consumer].type == "business_service":
                source, target, type_ = cis[provider].id, cis[consumer].id, PART_OF
            else:
                type_ = DEPENDS_ON if provider >= size // 5 else generator.choice([RUNS_ON, DEPENDS_ON])
                source, target = cis[consumer].id, cis[provider].id
            redundancy = None
            if group is not None:
                redundancy = (
                    Redundancy(group, min_available=minimum)
                    if consumer % 2
                    else Redundancy(group, min_available_percent=60.0)
                )
            valid_until = moment - timedelta(days=1) if generator.random() < 0.05 else None
            found = Relationship(
                source,
                target,
                type_,
                strength=Strength.SOFT if soft else Strength.HARD,
                redundancy=redundancy,
                valid_until=valid_until,
            )
            relationships[found.key] = found
    return cis, list(relationships.values())


def radius_outcome(topology: Topology, failed: list[str], options: BlastRadiusOptions) -> dict[str, Any]:
    """Return what a blast radius must give on every store: impacts, distances, paths, order and summary.

    Snapshots number CIs in id order whatever the store, so even where several
    shortest paths exist, every store explains an impact by the same one.
    """
    radius = blast_radius(topology, failed, options)
    return {
        "impacted": [
            (topology.ids[node], Impact(level).name, int(distance))
            for node, level, distance in zip(radius.impacted, radius.impact, radius.distance, strict=True)
        ],
        "paths": [[topology.ids[step] for step in path_to(radius, int(node))] for node in radius.impacted],
        "summary": radius.summary,
        "truncated": radius.truncated,
    }


def path_problems(topology: Topology, failed: list[str], options: BlastRadiusOptions) -> list[str]:
    """Return why explaining paths are not shortest provider-to-consumer paths from a failed CI."""
    radius = blast_radius(topology, failed, options)
    edges = {
        (topology.ids[p], topology.ids[c]) for p, c in zip(topology.provider, topology.consumer, strict=True)
    }
    problems = []
    for node, distance in zip(radius.impacted, radius.distance, strict=True):
        path = [topology.ids[i] for i in path_to(radius, int(node))]
        if len(path) != distance + 1 or path[0] not in failed or path[-1] != topology.ids[node]:
            problems.append(f"path {path} does not lead from a failed CI in {distance} steps")
        problems.extend(
            f"path {path} uses a missing edge {step}" for step in pairwise(path) if step not in edges
        )
    return problems


@pytest.fixture
def reference_store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    reference = EmbeddedStore(tmp_path / "reference.db")
    yield reference
    reference.close()


@pytest.mark.parametrize("seed", [pytest.param(1, id="seed-1"), pytest.param(2, id="seed-2")])
def test_load_topology_matches_embedded_blast_radius(
    store: GraphStore, reference_store: EmbeddedStore, seed: int
) -> None:
    cis, relationships = generated_graph(seed)
    store.write(cis, relationships, batch_size=50)
    reference_store.write(cis, relationships)
    topology = build_topology(store.load_topology())
    reference = build_topology(reference_store.load_topology())
    cases = [
        (["ci-000-é"], BlastRadiusOptions()),
        (["ci-005-é", "ci-013-é"], BlastRadiusOptions()),
        (["ci-030-é"], BlastRadiusOptions(max_depth=2)),
        (["ci-002-é"], BlastRadiusOptions(relationship_types=["DEPENDS_ON", "PART_OF"])),
        (["ci-001-é"], BlastRadiusOptions(as_of=datetime(2025, 6, 1, tzinfo=UTC))),
        (["ci-003-é", "ci-004-é"], BlastRadiusOptions(limit=5)),
    ]

    outcomes = [radius_outcome(topology, failed, options) for failed, options in cases]

    assert outcomes == [radius_outcome(reference, failed, options) for failed, options in cases]
    assert sum(len(outcome["impacted"]) for outcome in outcomes) > 20
    assert [
        problem for failed, options in cases for problem in path_problems(topology, failed, options)
    ] == []


def test_load_topology_matches_embedded_arrays(store: GraphStore, reference_store: EmbeddedStore) -> None:
    cis, relationships = generated_graph(3, size=60)
    store.write(cis, relationships)
    reference_store.write(cis, relationships)

    data = store.load_topology()
    expected = reference_store.load_topology()

    def nodes(topology: Any) -> dict[str, tuple[str, float, float]]:
        return {
            ci_id: (type_, float(start), float(end))
            for ci_id, type_, start, end in zip(
                topology.ids, topology.types, topology.node_valid_from, topology.node_valid_until, strict=True
            )
        }

    def type_name(type_: Any) -> str:
        return type_ if isinstance(type_, str) else RELATIONSHIP_TYPES[int(type_)]

    def edges(topology: Any) -> set[tuple[Any, ...]]:
        return {
            (
                topology.ids[source], topology.ids[target], type_name(type_), bool(hard), group,
                float(minimum), float(percent), float(start), float(end),
            )
            for source, target, type_, hard, group, minimum, percent, start, end in zip(
                topology.edge_source, topology.edge_target, topology.edge_type, topology.edge_hard,
                topology.edge_group, topology.edge_min_available, topology.edge_min_percent,
                topology.edge_valid_from, topology.edge_valid_until, strict=True,
            )
        }  # fmt: skip

    assert data.version == store.version()
    assert nodes(data).keys() == nodes(expected).keys()
    for ci_id, values in nodes(expected).items():
        assert nodes(data)[ci_id] == pytest.approx(values, nan_ok=True)
    assert len(data.edge_source) == len(relationships)
    assert repr(sorted(edges(data), key=repr)) == repr(sorted(edges(expected), key=repr))


def test_load_topology_empty_store(store: GraphStore) -> None:
    data = store.load_topology()

    assert data.ids == []
    assert len(data.edge_source) == 0
    assert build_topology(data).node_count == 0


def test_load_topology_version_follows_writes(store: GraphStore) -> None:
    store.write(LISTED, LISTED_RELATIONSHIPS)
    first = store.load_topology().version

    store.delete_relationship("cart", "node-7", "RUNS_ON")
    second = store.load_topology()

    assert second.version > first
    assert second.version == store.version()
    assert len(second.edge_source) == len(LISTED_RELATIONSHIPS) - 1


def test_load_topology_node_order_keeps_impacts(store: GraphStore) -> None:
    cis, relationships = generated_graph(1)
    store.write(cis, relationships)
    data = store.load_topology()
    expected = [
        radius_outcome(build_topology(data), [failed], BlastRadiusOptions())
        for failed in ("ci-000-é", "ci-007-é")
    ]
    order = list(reversed(range(len(data.ids))))
    position = {old: new for new, old in enumerate(order)}
    data.ids = [data.ids[i] for i in order]
    data.types = [data.types[i] for i in order]
    data.node_valid_from = data.node_valid_from[order]
    data.node_valid_until = data.node_valid_until[order]
    data.edge_source = np.array([position[int(i)] for i in data.edge_source], dtype=np.int64)
    data.edge_target = np.array([position[int(i)] for i in data.edge_target], dtype=np.int64)

    reordered = build_topology(data)

    assert [
        radius_outcome(reordered, [failed], BlastRadiusOptions()) for failed in ("ci-000-é", "ci-007-é")
    ] == expected


@pytest.mark.neo4j
@pytest.mark.parametrize("chunk_size", [pytest.param(1, id="one-ci"), pytest.param(7, id="seven-cis")])
def test_neo4j_load_topology_chunks_match_embedded(
    neo4j_server: Any, reference_store: EmbeddedStore, chunk_size: int
) -> None:
    from service.store.neo4j import Neo4jStore

    clear_neo4j(neo4j_server)
    store = Neo4jStore(
        neo4j_server.uri, neo4j_server.user, neo4j_server.password, topology_chunk_size=chunk_size
    )
    cis, relationships = generated_graph(5, size=40)
    store.write(cis, relationships)
    reference_store.write(cis, relationships)

    topology = build_topology(store.load_topology())

    reference = build_topology(reference_store.load_topology())
    assert sorted(topology.ids) == sorted(reference.ids)
    assert topology.edge_count == reference.edge_count == len(relationships)
    for failed in ("ci-000-é", "ci-003-é", "ci-010-é"):
        expected = radius_outcome(reference, [failed], BlastRadiusOptions())
        assert radius_outcome(topology, [failed], BlastRadiusOptions()) == expected
    store.close()
