"""Whether a per-block target covers a space: every block missing from it and every row it has that names no
block of the space, listed at once, each unknown row with its near misses (a misspelt block is both)."""

from __future__ import annotations

from blocknas.workers.registry import did_you_mean

SHOWN = 12  # blocks named in a message; the rest are counted


def _listed(items: list[str]) -> str:
    more = len(items) - SHOWN
    return ", ".join(items[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def _count(items, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def coverage_problems(slots: tuple[str, ...], choices: tuple[tuple[str, ...], ...], costs: dict) -> list[str]:
    """What keeps a target's per-block ``costs`` ({metric: {"blocks": {slot: {block: value}}}}) from covering
    the space of ``slots`` and their ``choices``: one line per metric with blocks missing, and one for rows
    that are no block of the space. Empty: it covers the space."""
    space = dict(zip(slots, choices, strict=True))
    problems, unknown = [], {}
    for metric, table in costs.items():
        given = table.get("blocks", {})
        missing = [f"{slot}:{c}" for slot, names in space.items() for c in names if c not in given.get(slot, {})]
        if missing:
            problems.append(f"no {metric} for {_count(missing, 'block')}: {_listed(missing)}")
        for slot, rows in given.items():
            for block in rows:
                if slot not in space:
                    unknown.setdefault(f"{slot}:{block}", f" (no slot {slot!r}{did_you_mean(slot, slots)})")
                elif block not in space[slot]:
                    unknown.setdefault(f"{slot}:{block}", did_you_mean(block, space[slot]))
    if unknown:
        rows = _listed([k + v for k, v in unknown.items()])
        problems.append(f"{_count(unknown, 'row')} of the file name no block of the space: {rows}")
    return problems
