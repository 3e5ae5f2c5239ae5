"""Budgets of registered targets: an upper limit (``memory_mib=80000``) or, as Puzzle's constraints allow,
a range (``num_params=2e10:4e10``; either side may be left open: ``:4e10``, ``2e10:``). Names may be
Puzzle's dotted paths (``stats.memory_mib``)."""

from __future__ import annotations

import math

from blocknas.orchestrator.targets.files import TargetFileError, library_name


class BudgetError(ValueError):
    """A budget given on the command line is malformed; the message shows the accepted forms."""


def parse_budget(text: str) -> tuple[str, float | list | None]:
    """``NAME=MAX`` or ``NAME=MIN:MAX`` as (name, max) or (name, [min, max]) (an open side is None). An
    infinite maximum (``inf``) or minimum (``-inf``) is an open side; a budget open on both sides is None: no
    budget (``parse_budgets`` drops it)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise BudgetError(f"budget {text!r}: expected NAME=MAX or NAME=MIN:MAX, e.g. stats.memory_mib=80000")
    parts = value.split(":")
    if len(parts) > 2:
        raise BudgetError(f"budget {text!r}: a range is MIN:MAX")
    try:
        numbers = [float(p) if p.strip() else None for p in parts]
    except ValueError:
        raise BudgetError(f"budget {text!r}: {value!r} is not a number or a MIN:MAX range") from None
    if any(n is not None and math.isnan(n) for n in numbers) or numbers == [None, None]:
        raise BudgetError(f"budget {text!r}: limits must be numbers (inf for no limit)")
    high = numbers[-1]
    low = numbers[0] if len(numbers) == 2 else None
    if (high is not None and high == -math.inf) or (low is not None and low == math.inf):
        raise BudgetError(f"budget {text!r}: no network fits it")
    high = None if high == math.inf else high
    low = None if low == -math.inf else low
    if len(numbers) == 1 or (low is None and high is None):
        return name.strip(), high
    if low is not None and high is not None and low > high:
        raise BudgetError(f"budget {text!r}: the minimum {low:g} exceeds the maximum {high:g}")
    return name.strip(), [low, high]


def parse_budgets(texts) -> dict:
    """Every ``--budget NAME=...`` of a command, those that limit nothing (``inf``) left out."""
    return {name: value for name, value in map(parse_budget, texts) if value is not None}


def resolve(where, budgets: dict, metrics) -> dict:
    """Budgets with their names checked against the target's metrics (dotted paths accepted)."""
    try:
        return {library_name(where, name, metrics, "stats"): value for name, value in budgets.items()}
    except TargetFileError as exc:
        raise BudgetError(str(exc)) from exc


def split(budgets: dict) -> tuple[dict[str, float], dict[str, float]]:
    """(upper limits, lower limits) of stored budgets, each {metric: value}."""
    upper, lower = {}, {}
    for name, value in budgets.items():
        low, high = value if isinstance(value, list) else (None, value)
        if high is not None:
            upper[name] = float(high)
        if low is not None:
            lower[name] = float(low)
    return upper, lower
