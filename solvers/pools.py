"""Solution pools: the K best distinct networks of a block table, exactly, by no-good cuts.

After each solution ``s`` the model gets ``sum_i x[i, s_i] <= m - d``: the next network differs from
``s`` in at least ``d`` slots (Hamming distance over slots). With ``d = 1`` the pool is exactly the K
networks of highest predicted accuracy; with ``d > 1`` it is the greedy diverse pool Puzzle uses: each
next network is the best one at distance ``>= d`` from every network already in the pool. A block
library (``pareto.uses_cores``) is solved on Lagrangian cores, the cuts joining the LP bound and the core.
"""

from __future__ import annotations

import pyomo.environ as pyo

from blocknas.solvers.formulations.additive_mip import create_model, solve_exactly
from blocknas.solvers.highs import new_solver
from blocknas.solvers.lagrangian_core import CoreSolver
from blocknas.solvers.pareto import InfeasibleBudgetError, ParetoPoint, check_budgets, uses_cores
from blocknas.solvers.pruning import within_caps
from blocknas.solvers.table import BlockTable


def solution_pool(
    table: BlockTable,
    k: int,
    budgets: dict[str, float] | None = None,
    min_distance: int = 1,
    exclude: list[tuple[int, ...]] | tuple = (),
) -> list[ParetoPoint]:
    """Up to ``k`` networks in order of predicted accuracy, pairwise ``min_distance`` slots apart.

    ``exclude``: selections (block index per slot) never returned, e.g. networks already verified; they
    are cut with distance 1 and do not constrain the diversity of the pool.
    """
    if k < 1:
        raise ValueError(f"the pool size must be >= 1, got {k}")
    if not 1 <= min_distance <= len(table.slots):
        raise ValueError(f"min_distance must be between 1 and the {len(table.slots)} slots, got {min_distance}")
    budgets = dict(budgets or {})
    check_budgets(table, budgets)
    metric = next(iter(budgets), None) or next(iter(table.costs), None)
    if metric is None:
        raise ValueError("the table has no cost metric")
    # Candidates no network within the budgets can use are dropped first (a sentinel cost of 1e12 must not
    # set the scale of the model's budget rows); the networks to exclude are carried over by block name.
    fitting = within_caps(table, budgets) if budgets else table
    if fitting is None:
        raise InfeasibleBudgetError(f"no network satisfies the budgets {budgets}")
    names = [[table.choices[i][j] for i, j in enumerate(selection)] for selection in exclude]
    exclude = [
        tuple(fitting.choices[i].index(n) for i, n in enumerate(blocks))
        for blocks in names
        if all(n in fitting.choices[i] for i, n in enumerate(blocks))
    ]
    table = fitting
    if uses_cores(table):  # a block library: each solve on a core, the cuts in its LP bound and its MIP
        cores = CoreSolver(table, metric, budgets)
        cut, best = cores.add_cut, cores.most_accurate
    else:
        model = create_model(table, metric, budgets)
        model.no_good = pyo.ConstraintList()
        solver, slots = new_solver(), len(table.slots)

        def cut(selection: tuple[int, ...], distance: int) -> None:
            model.no_good.add(sum(model.x[i, j] for i, j in enumerate(selection)) <= slots - distance)

        def best() -> tuple[int, ...] | None:
            return solve_exactly(solver, model, table)

    for excluded in exclude:
        cut(tuple(excluded), 1)
    pool: list[ParetoPoint] = []
    while len(pool) < k and (selection := best()) is not None:
        pool.append(
            ParetoPoint(
                blocks=tuple(table.choices[i][j] for i, j in enumerate(selection)),
                predicted_accuracy=table.predict_accuracy(selection),
                cost=table.predict_cost(metric, selection),
                costs={name: table.predict_cost(name, selection) for name in table.costs},
            )
        )
        cut(selection, min_distance)
    if not pool and not exclude:
        raise InfeasibleBudgetError(f"no network satisfies the budgets {budgets} and the structural rules")
    return pool
