"""Exact MIPs on large block libraries by Lagrangian reduced-cost fixing: only a small core is solved.

Write one solve as: minimise ``f(N)`` over networks ``N`` (one candidate per slot) subject to rows
``G N <= b`` (the objective cost's cap, the accuracy floor, the budgets). For any multipliers
``lam >= 0`` and any network that satisfies the rows,

    f(N) >= f(N) + lam . (G N - b) = LB + sum_i pen_i[N_i],

with ``r = f + lam G`` per candidate, ``LB = sum_i min_j r_i[j] - lam . b`` and
``pen_i[j] = r_i[j] - min_j r_i[j] >= 0``. So once a network of value ``z`` is known, a candidate with
``pen > z - LB`` is in no network as good as ``z``. Each solve takes ``lam`` from the LP relaxation (the
best multipliers), then solves the MIP (Pyomo, HiGHS, zero gap) on the candidates with ``pen <= delta``
only. If that core's optimum ``z`` has ``z - LB <= delta`` it is optimal for the whole table; otherwise
the core is widened to ``z - LB`` once, which is then sure to be enough. The bound holds for every
``lam >= 0``, so exactness does not depend on the LP, only the core's size does.

The tie-break on cost after each most-accurate network needs no wide core: by the accuracy's own bound, a
network that ties with the optimum uses only candidates with accuracy penalty <= the optimum's gap, about one
per slot (``_in_ties``). Cores are solved on one persistent model of the whole table, the candidates outside
the core bounded to 0, so no core rebuilds a model.

Block libraries have tiny integrality gaps (a basic LP optimum splits at most one slot per relaxed row),
so a core holds a few candidates per slot: on 80 x 125 libraries 2-4 % of them, and a 20-point front
takes about 2 s instead of 26 s (``benchmarks/targets.py --check``: the same networks).
"""

from __future__ import annotations

import math
from dataclasses import replace

import highspy
import numpy as np
import pyomo.environ as pyo

from blocknas.solvers.formulations.additive_mip import (
    NO_CAP,
    ROW_TOLERANCE,
    STEP,
    TIGHTENINGS,
    ScaledTerm,
    create_model,
)
from blocknas.solvers.highs import new_highs, new_solver, run_highs, solve_model
from blocknas.solvers.table import BlockTable

CORE_PER_SLOT = 1  # the first core: about this many candidates per slot beyond each slot's cheapest
# Cores are small and their LP bound is already tight: HiGHS's restarts and sub-MIP heuristics cost more
# than they find there (measured: 80 x 125 fronts 35 % faster). Search options only; the gap stays zero.
_INTEGRALITY = 1e-6  # a by-type model's relaxed x this close to 0 or 1 counts as integral
_BOUND_SLACK = 1e-9  # added to bounds computed in floating point before they exclude a candidate
_CORE_OPTIONS = {
    "mip_allow_restart": False,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_feasibility_jump": False,
}


class CoreSolver:
    """Lexicographic steps on a rule-free table, in the scaled units of ``create_model(table, ...)``:
    ``step(cap)`` is the most accurate network with scaled cost <= ``cap`` and, among the networks that
    tie with it (``additive_mip.TIE``), the cheapest; ``cheapest()`` the cheapest network within the budgets. Every
    answer meets every row in exact arithmetic (``ROW_TOLERANCE``), not only within the solver's tolerance."""

    def __init__(self, table: BlockTable, metric: str, budgets: dict[str, float]) -> None:
        if table.rules:
            raise ValueError("the core solver needs a table without structural rules; use create_model")
        self.table, self.metric, self.budgets = table, metric, dict(budgets)
        sizes = np.array([len(names) for names in table.choices])
        self.slot_of = np.repeat(np.arange(len(sizes)), sizes)
        self.starts = np.r_[0, np.cumsum(sizes)[:-1]]
        self.accuracy_term = ScaledTerm.of(table.accuracy_offset, table.accuracy)
        self.cost_term = ScaledTerm.of(table.cost_offsets.get(metric, 0.0), table.costs[metric])
        self.accuracy = np.concatenate(self.accuracy_term.scaled)
        self.cost = np.concatenate(self.cost_term.scaled)
        self.budget_terms = [ScaledTerm.of(table.cost_offsets.get(n, 0.0), table.costs[n]) for n in sorted(budgets)]
        # rows G N <= b: cost cap, accuracy floor (as -accuracy <= -floor), budgets (as create_model has them)
        self.rows = np.vstack([self.cost, -self.accuracy, *[np.concatenate(t.scaled) for t in self.budget_terms]])
        self.budget_limits = np.array(
            [t.to_scaled(budgets[n]) + 1e-9 for t, n in zip(self.budget_terms, sorted(budgets), strict=True)]
        )
        self.cut_limits = np.zeros(0)  # rows after the budgets: no-good cuts (add_cut)
        self._cuts: list[tuple[tuple[int, ...], float]] = []
        self._models: dict[bool, tuple] = {}  # by_type -> persistent model, solver, its x in flat order
        self.relaxation = self._relaxation()

    def add_cut(self, selection: tuple[int, ...], distance: int) -> None:
        """From now on, every network differs from ``selection`` in at least ``distance`` slots."""
        chosen = (self.starts + np.asarray(selection)).astype(np.int32)
        row = np.zeros(len(self.cost))
        row[chosen] = 1.0
        limit = float(len(self.starts) - distance)
        self.rows = np.vstack([self.rows, row])
        self.cut_limits = np.r_[self.cut_limits, limit]
        self.relaxation.addRow(-highspy.kHighsInf, limit, len(chosen), chosen, np.ones(len(chosen)))
        self._cuts.append((tuple(selection), limit))
        for model, _, _ in {id(m[0]): m for m in self._models.values()}.values():
            model.no_good.add(sum(model.x[i, j] for i, j in enumerate(selection)) <= limit)

    def scaled_cost(self, selection: tuple[int, ...]) -> float:
        return float(self.cost[self.starts + np.asarray(selection)].sum())

    def step(self, cost_cap: float = math.inf) -> tuple[int, ...] | None:
        best = self._minimise(False, cost_cap, -math.inf)
        if best is None:
            return None
        floor = self.accuracy_term.tie_floor(float(self.accuracy[best].sum()))
        cheapest = self._minimise(True, cost_cap, floor, incumbent=best, allowed=self._in_ties(cost_cap, floor))
        if cheapest is None or self.cost[cheapest].sum() > self.cost[best].sum():
            cheapest = best  # the floor could not be met more cheaply in exact arithmetic
        return self._selection(cheapest)

    def most_accurate(self) -> tuple[int, ...] | None:
        """The most accurate network within the budgets and cuts (one MIP: no tie-break on cost)."""
        chosen = self._minimise(False, math.inf, -math.inf)
        return None if chosen is None else self._selection(chosen)

    def cheapest(self) -> tuple[int, ...] | None:
        chosen = self._minimise(True, math.inf, -math.inf)
        return None if chosen is None else self._selection(chosen)

    def _selection(self, chosen: np.ndarray) -> tuple[int, ...]:
        return tuple(int(k) for k in chosen - self.starts)

    def _relaxation(self) -> highspy.Highs:
        """The LP relaxation, kept between solves: only its objective and two row bounds change."""
        lp = new_highs()
        n, m = len(self.cost), len(self.starts)
        lp.addVars(n, np.zeros(n), np.ones(n))
        lp.addRows(m, np.ones(m), np.ones(m), n, self.starts.astype(np.int32), np.arange(n, dtype=np.int32), np.ones(n))
        k = len(self.rows)
        lower = np.full(k, -highspy.kHighsInf)
        upper = np.r_[highspy.kHighsInf, highspy.kHighsInf, self.budget_limits]
        lp.addRows(
            k,
            lower,
            upper,
            k * n,
            np.arange(0, k * n, n, dtype=np.int32),
            np.tile(np.arange(n, dtype=np.int32), k),
            self.rows.ravel(),
        )
        return lp

    def _in_ties(self, cost_cap: float, floor: float) -> np.ndarray:
        """The candidates that can be in a network of accuracy >= ``floor`` within the cap, budgets and cuts:
        by the accuracy's own Lagrangian bound, ``-accuracy(N) >= bound + sum_i pen_i[N_i]``, none with
        ``pen > -floor - bound``. Just below the optimum that leaves about one candidate per slot, so the
        tie-break on cost is a MIP of a few candidates (or none, when one network is left)."""
        limits = np.r_[cost_cap, math.inf, self.budget_limits, self.cut_limits]
        penalties = self._penalties(-self.accuracy, limits)
        if penalties is None:  # even the LP is infeasible: no candidate can be in such a network
            return np.zeros(self.accuracy.shape, dtype=bool)
        penalty, bound = penalties
        return penalty <= -floor - bound + _BOUND_SLACK

    def _penalties(self, objective: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Each candidate's ``pen`` and the bound ``LB`` (module docstring) from the LP's multipliers;
        None if even the LP is infeasible."""
        multipliers = self._multipliers(objective, limits)
        if multipliers is None:
            return None
        active = np.isfinite(limits)
        reduced = objective + multipliers[active] @ self.rows[active]
        best = np.minimum.reduceat(reduced, self.starts)
        return reduced - best[self.slot_of], float(best.sum() - multipliers[active] @ limits[active])

    def _minimise(
        self,
        cost: bool,
        cost_cap: float,
        accuracy_floor: float,
        incumbent: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Flat indices of the candidates of a network of least cost (``cost``) or else of greatest
        accuracy within the cap, floor and budgets, every row met exactly; None if no network is.
        ``incumbent``: a network known to meet every row, kept in every core (so no core is infeasible).
        ``allowed``: a mask of the candidates that can be in a network meeting the rows (the rest is left
        out of every core)."""
        limits = np.r_[cost_cap, -accuracy_floor, self.budget_limits, self.cut_limits]
        for _ in range(TIGHTENINGS):
            chosen = self._minimise_within(cost, limits, incumbent, allowed)
            if chosen is None:
                return None
            excess = self.rows[:, chosen].sum(axis=1) - limits
            if not np.any(excess > ROW_TOLERANCE):
                return chosen
            # within the solver's tolerance but not exactly: ask again with the violated rows tightened
            limits = np.where(excess > ROW_TOLERANCE, limits - excess - ROW_TOLERANCE, limits)
        if incumbent is not None:
            return incumbent
        raise RuntimeError(
            f"HiGHS kept returning networks that exceed a budget by more than {ROW_TOLERANCE:g} "
            f"(scaled) after {TIGHTENINGS} tightenings; numerical trouble in this table"
        )

    def _minimise_within(
        self, cost: bool, limits: np.ndarray, incumbent: np.ndarray | None, allowed: np.ndarray | None
    ) -> np.ndarray | None:
        objective = self.cost if cost else -self.accuracy
        slots = len(self.starts)
        if incumbent is not None and allowed is not None and allowed.sum() == slots == allowed[incumbent].sum():
            return incumbent  # one candidate left per slot: the incumbent is the only network
        penalties = self._penalties(objective, limits)
        if penalties is None:
            return None
        penalty, bound = penalties
        if allowed is not None:
            penalty[~allowed] = math.inf
        widest = float(penalty[np.isfinite(penalty)].max())
        # The first core: the candidates of least penalty, about CORE_PER_SLOT more per slot than the
        # cheapest ones (a gap relative to the objective's range keeps most of a library whose range is set
        # by a few huge values, e.g. no-op layers' KL). Any first gap is exact: the loop widens as needed.
        positive = np.sort(penalty[(penalty > 0) & (penalty <= widest)])
        extra = min(len(positive), int(CORE_PER_SLOT * len(self.starts)))
        gap = float(positive[extra - 1]) if extra else 0.0
        if incumbent is not None:
            gap = max(0.0, min(gap, float(objective[incumbent].sum()) - bound))
            penalty[incumbent] = 0.0  # always in the core; its value is what the bound is checked against
        while True:
            core = np.flatnonzero(penalty <= gap)
            chosen = self._solve_core(core, cost, limits)
            if gap >= widest:  # the core was the whole table
                return chosen
            if chosen is None:  # the LP is feasible but this core is not: widen it
                gap = min(max(16 * gap, STEP), widest)
                continue
            value = float(objective[chosen].sum())
            if value - bound <= gap:  # every candidate left out has penalty > gap >= value - bound
                return chosen
            gap = value - bound  # > gap: the next core holds every candidate of a network better than this

    def _multipliers(self, objective: np.ndarray, limits: np.ndarray) -> np.ndarray | None:
        lp, m, n = self.relaxation, len(self.starts), len(self.cost)
        lp.changeColsCost(n, np.arange(n, dtype=np.int32), objective)
        for row in (0, 1):
            lp.changeRowBounds(
                m + row, -highspy.kHighsInf, limits[row] if math.isfinite(limits[row]) else highspy.kHighsInf
            )
        status = run_highs(lp)
        if status == highspy.HighsModelStatus.kInfeasible:
            return None
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"HiGHS stopped the LP relaxation with {lp.modelStatusToString(status)}")
        # a <= row's dual is <= 0 when minimising; any lam >= 0 gives a valid bound, so clip the noise
        return np.maximum(0.0, -np.asarray(lp.getSolution().row_dual)[m:])

    def _solve_core(self, core: np.ndarray, minimise_cost: bool, limits: np.ndarray) -> np.ndarray | None:
        # By cost type when a library's variants cost the same in every layer (a far easier MIP: 20-point
        # fronts of the real Llama-70B library 2.4 s instead of 6.2 s by binaries). An accuracy floor or cuts
        # can make its optimum fractional: then the binary model decides.
        selection = self._core_model_solve(core, limits, minimise_cost, True)
        if selection is False:
            selection = self._core_model_solve(core, limits, minimise_cost, False)
        return selection

    def _persistent(self, by_type: bool) -> tuple[pyo.ConcreteModel, dict, list]:
        """The whole table's model (by cost type or binary), built once, with a persistent solver per
        objective: a core is this model with every candidate outside it bounded to 0 (HiGHS's presolve
        drops them), so a core solve rebuilds nothing."""
        if by_type not in self._models:
            table = self.table
            kept = replace(table, costs={n: c for n, c in table.costs.items() if n == self.metric or n in self.budgets})
            model = create_model(kept, self.metric, self.budgets, by_type=by_type)
            if by_type and not hasattr(model, "count"):  # no cost types: the binary model serves both
                self._models[True] = self._persistent(False)
                return self._models[True]
            model.no_good = pyo.ConstraintList()
            for selection, limit in self._cuts:
                model.no_good.add(sum(model.x[i, j] for i, j in enumerate(selection)) <= limit)
            variables = [model.x[i, j] for i, names in enumerate(table.choices) for j in range(len(names))]
            self._models[by_type] = (model, {False: _core_solver(), True: _core_solver()}, variables)
        return self._models[by_type]

    def _core_model_solve(self, core: np.ndarray, limits: np.ndarray, minimise_cost: bool, by_type: bool):
        """The core's MIP: flat indices of its optimum, None if infeasible, False if a by-type model's
        optimum was not integral."""
        model, solvers, variables = self._persistent(by_type)
        solver = solvers[minimise_cost]  # one per objective: Pyomo rewrites a solver's objective on a switch
        in_core = np.zeros(len(variables), dtype=bool)
        in_core[core] = True
        for variable, keep in zip(variables, in_core.tolist(), strict=True):
            variable.setub(1 if keep else 0)  # a bound, not fix(): Pyomo rewrites the rows of fixed variables
        cost_cap, floor = limits[0], -limits[1]
        model.cost_cap_value = cost_cap if math.isfinite(cost_cap) else NO_CAP
        if math.isfinite(floor):
            absolute = self.accuracy_term.offset + self.accuracy_term.scale * floor
            model.accuracy_floor_value = model.accuracy_term.to_scaled(absolute)
        else:
            model.accuracy_floor_value = model.no_floor
        for name, limit in zip(sorted(self.budgets), limits[2 : 2 + len(self.budgets)], strict=True):
            model.budget_limit[name] = float(limit)  # tightened ones, after an exact check, included
        (model.min_cost if minimise_cost else model.max_accuracy).activate()
        (model.max_accuracy if minimise_cost else model.min_cost).deactivate()
        members = [variables[k] for k in core]
        if not solve_model(solver, model, members):
            return None
        values = np.array([variable.value for variable in members])
        if by_type and hasattr(model, "count") and np.any(np.minimum(values, 1 - values) > _INTEGRALITY):
            return False
        # every slot has a candidate in the core (its least penalty is 0): take the chosen one of each
        slot_bounds = np.searchsorted(core, self.starts[1:])
        return np.array(
            [
                members[np.argmax(chosen)]
                for members, chosen in zip(np.split(core, slot_bounds), np.split(values, slot_bounds), strict=True)
            ]
        )


def _core_solver():
    """A persistent solver for ``CoreSolver._persistent``'s models: between core solves only variable
    bounds, mutable parameters and added cuts change, so Pyomo is told to look for nothing else."""
    solver = new_solver()
    solver.highs_options = {**solver.highs_options, **_CORE_OPTIONS}
    config = solver.update_config
    config.check_for_new_objective = config.update_objective = False
    config.update_constraints = config.update_named_expressions = config.check_for_new_or_removed_vars = False
    return solver
