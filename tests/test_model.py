"""Model rules that the analysis and both stores rely on."""

from __future__ import annotations

import pytest

from service.model import Redundancy, RelationshipType, parse_time


@pytest.mark.parametrize(
    ("redundancy", "group_size", "required"),
    [
        pytest.param(Redundancy("g", min_available=1), 2, 1, id="count"),
        pytest.param(Redundancy("g", min_available_percent=50), 4, 2, id="half-of-four"),
        pytest.param(Redundancy("g", min_available_percent=50), 3, 2, id="half-of-three-rounds-up"),
        pytest.param(Redundancy("g", min_available_percent=66.67), 3, 2, id="two-thirds-written-66.67"),
        pytest.param(Redundancy("g", min_available_percent=33.33), 3, 1, id="one-third-written-33.33"),
        pytest.param(Redundancy("g", min_available_percent=67), 3, 3, id="67-percent-of-three"),
        pytest.param(Redundancy("g", min_available_percent=100), 5, 5, id="all"),
    ],
)
def test_redundancy_required_providers(redundancy: Redundancy, group_size: int, required: int) -> None:
    assert redundancy.required(group_size) == required


def test_relationship_type_provider_direction() -> None:
    assert RelationshipType.PART_OF.provider_is_source
    for other in (RelationshipType.DEPENDS_ON, RelationshipType.RUNS_ON, RelationshipType.HOSTED_ON, RelationshipType.CONNECTS_TO):
        assert not other.provider_is_source


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("2026-03-01T14:05:00", "no time zone", id="naive"),
        pytest.param("yesterday", "not an ISO 8601 time", id="not-iso"),
        pytest.param("2026-13-01T00:00:00Z", "not an ISO 8601 time", id="bad-month"),
    ],
)
def test_parse_time_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_time(text, field_name="started_at")


def test_parse_time_converts_offset_to_utc() -> None:
    parsed = parse_time("2026-03-01T15:05:00+01:00", field_name="started_at")

    assert parsed.isoformat() == "2026-03-01T14:05:00+00:00"
