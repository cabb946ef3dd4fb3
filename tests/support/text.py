"""Checks on text output, such as the order of the sections of a Markdown plan."""

from __future__ import annotations


def positions(text: str, parts: list[str]) -> list[int]:
    """Return where each part starts in the text, failing on a missing one."""
    found = []
    for part in parts:
        assert part in text, f"{part!r} missing from:\n{text}"
        found.append(text.index(part))
    return found
