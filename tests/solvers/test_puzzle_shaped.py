"""Exact on libraries shaped like Puzzle's real one, against an independent MIP (HiGHS called directly on the
whole, unscaled table): attention and FFN sub-blocks whose costs add up, memory and runtime correlated,
no-op variants whose KL is hundreds of times the rest (what stretched the old cores and tie tolerance),
and KL rounded so that different variants tie exactly."""

from __future__ import annotations

import highspy
import numpy as np
import pytest

from blocknas.solvers import BlockTable, best_within_budgets, solution_pool
from blocknas.solvers.formulations.additive_mip import _cost_types
from blocknas.solvers.highs import SolverTimeLimitError, new_highs, run_highs
from blocknas.solvers.pareto import spread_front

ATTENTION = [(1.0, 0.0), (0.5, 0.02), (0.25, 0.05), (0.125, 0.1), (0.0, None)]  # (share of the parent, KL)
FFN = [(1.0, 0.0), (0.75, 0.03), (0.5, 0.06), (0.25, 0.12), (0.0, None)]


def puzzle_like(seed: int, layers: int = 40, typed: bool = False) -> BlockTable:
    """``layers`` x 25 variants (attention x FFN), 1,000 candidates: solved by cores, as a real library is.
    ``typed``: a variant costs the same in every layer, as in Puzzle's real Llama-70B library."""
    rng = np.random.default_rng(seed)
    kl, memory, runtime = [], [], []
    jitter = rng.uniform(0, 1, (2, len(ATTENTION) * len(FFN)))
    for _ in range(layers):
        sensitivity = rng.lognormal(0, 0.8)
        noop_kl = rng.uniform(100, 500)  # removing a whole layer's attention or FFN: a huge loss on some layers
        rows = []
        for k, (a_share, a_kl) in enumerate(ATTENTION):
            for f, (f_share, f_kl) in enumerate(FFN):
                loss = sum(noop_kl if v is None else sensitivity * v * rng.uniform(0.7, 1.3) for v in (a_kl, f_kl))
                noise = jitter[:, k * len(FFN) + f] if typed else rng.uniform(0, 1, 2)
                rows.append(
                    (
                        round(loss, 3),  # rounded: exact ties between variants
                        round(760 * a_share + 670 * f_share + 2 + 5 * noise[0], 2),
                        round(350 * a_share + 460 * f_share + 8 + 20 * noise[1], 1),
                    )
                )
        values = np.array(rows)
        kl.append(values[:, 0])
        memory.append(values[:, 1])
        runtime.append(values[:, 2])
    return BlockTable(
        slots=tuple(f"layer_{i}" for i in range(layers)),
        choices=tuple(tuple(f"a{a}_f{f}" for a in range(5) for f in range(5)) for _ in range(layers)),
        accuracy=tuple(-k for k in kl),
        costs={"memory_mib": tuple(memory), "runtime_ms": tuple(runtime)},
    )


def oracle(table: BlockTable, objective: np.ndarray, rows: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Flat indices of a network minimising ``objective`` subject to ``rows`` (coefficients <= limit)."""
    sizes = [len(c) for c in table.choices]
    n, starts = sum(sizes), np.r_[0, np.cumsum(sizes)[:-1]]
    highs = new_highs()
    highs.addVars(n, np.zeros(n), np.ones(n))
    highs.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * n))
    highs.changeColsCost(n, np.arange(n, dtype=np.int32), objective)
    for start, size in zip(starts, sizes, strict=True):
        highs.addRow(1, 1, size, np.arange(start, start + size, dtype=np.int32), np.ones(size))
    for coefficients, limit in rows:
        highs.addRow(-highspy.kHighsInf, limit, n, np.arange(n, dtype=np.int32), coefficients)
    assert run_highs(highs) == highspy.HighsModelStatus.kOptimal
    return np.flatnonzero(np.asarray(highs.getSolution().col_value) > 0.5)


def flat(per_slot: tuple[np.ndarray, ...]) -> np.ndarray:
    return np.concatenate(per_slot)


@pytest.mark.parametrize("typed", [False, True], ids=["per-layer costs", "per-type costs"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shares", [(0.7, 0.7), (0.85, 0.5), (0.5, 0.9)])
def test_best_within_two_budgets_equals_an_independent_mip_and_ties_go_to_the_cheapest(seed, shares, typed):
    table = puzzle_like(seed, typed=typed)
    assert (_cost_types(table, ["memory_mib", "runtime_ms"]) is not None) == typed  # by type only when it pays
    parent = {m: sum(float(c[0]) for c in table.costs[m]) for m in table.costs}
    budgets = {"memory_mib": shares[0] * parent["memory_mib"], "runtime_ms": shares[1] * parent["runtime_ms"]}
    point = best_within_budgets(table, budgets)
    chosen = table.index_of(point.blocks)
    for metric, limit in budgets.items():  # within every budget exactly, not within a solver tolerance
        assert table.predict_cost(metric, chosen) <= limit

    kl, memory, runtime = -flat(table.accuracy), flat(table.costs["memory_mib"]), flat(table.costs["runtime_ms"])
    best = oracle(table, kl, [(memory, budgets["memory_mib"]), (runtime, budgets["runtime_ms"])])
    if memory[best].sum() <= budgets["memory_mib"] and runtime[best].sum() <= budgets["runtime_ms"]:
        assert -point.predicted_accuracy <= kl[best].sum() * (1 + 1e-9), "worse than the independent MIP"
    # Ties: no network as good (to 1e-12) uses less memory (the first budget's metric) within the budgets.
    cheaper = oracle(
        table,
        memory,
        [(kl, -point.predicted_accuracy), (memory, budgets["memory_mib"]), (runtime, budgets["runtime_ms"])],
    )
    if kl[cheaper].sum() <= -point.predicted_accuracy * (1 + 1e-12) and runtime[cheaper].sum() <= budgets["runtime_ms"]:
        assert point.costs["memory_mib"] <= memory[cheaper].sum() + 1e-9 * parent["memory_mib"]


@pytest.mark.parametrize("typed", [False, True], ids=["per-layer costs", "per-type costs"])
def test_spread_front_points_and_diverse_pools_equal_an_independent_mip(typed):
    table = puzzle_like(7, typed=typed)
    kl, memory, runtime = -flat(table.accuracy), flat(table.costs["memory_mib"]), flat(table.costs["runtime_ms"])
    limit = 0.75 * sum(float(c[0]) for c in table.costs["memory_mib"])
    for point in spread_front(table, "runtime_ms", {"memory_mib": limit}, 6):
        best = oracle(table, kl, [(memory, limit), (runtime, point.cost)])
        assert -point.predicted_accuracy <= kl[best].sum() * (1 + 1e-9) and point.costs["memory_mib"] <= limit
    pool = solution_pool(table, 3, {"memory_mib": limit}, min_distance=8)
    first = oracle(table, kl, [(memory, limit)])
    assert -pool[0].predicted_accuracy <= kl[first].sum() * (1 + 1e-9)
    picked = [np.array(table.index_of(p.blocks)) for p in pool]
    assert all((a != b).sum() >= 8 for i, a in enumerate(picked) for b in picked[i + 1 :])
    assert [p.predicted_accuracy for p in pool] == sorted((p.predicted_accuracy for p in pool), reverse=True)


def test_a_solve_past_its_time_limit_stops_with_a_clear_error(monkeypatch):
    monkeypatch.setenv("BLOCKNAS_SOLVER_TIME_LIMIT", "1e-4")
    table = puzzle_like(0)
    with pytest.raises(SolverTimeLimitError, match="BLOCKNAS_SOLVER_TIME_LIMIT=SECONDS"):
        best_within_budgets(table, {"memory_mib": 0.6 * sum(float(c[0]) for c in table.costs["memory_mib"])})
