"""Aligned text tables for the commands that list things (agents, a chat's memory blocks, a timeline)."""

from __future__ import annotations

from collections.abc import Sequence


def lines(rows: Sequence[dict[str, str]], columns: Sequence[tuple[str, str]]) -> list[str]:
    """One header line (the titles of ``columns``, pairs of field and title), then one line per row."""
    widths = {field: max([len(title)] + [len(r.get(field, "")) for r in rows]) for field, title in columns}
    header = "  ".join(title.ljust(widths[field]) for field, title in columns).rstrip()
    return [header] + ["  ".join(r.get(field, "").ljust(widths[field]) for field, _ in columns).rstrip() for r in rows]


def short(text: object, width: int = 60) -> str:
    """``text`` on one line, cut to ``width`` characters."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
