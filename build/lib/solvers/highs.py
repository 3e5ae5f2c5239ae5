"""The HiGHS MIP solver behind every Pyomo model: one configuration, one solve helper."""

from __future__ import annotations

from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs

SOLVER_NAME = "appsi_highs"
FEASIBILITY_TOLERANCE = 1e-9  # in the models' scaled units (each objective's range is about 1)


def new_solver():
    """An exact (zero-gap), single-threaded, deterministic HiGHS; persistent, so a model solved again
    after a parameter change is updated in place instead of rewritten."""
    solver = Highs()
    if not solver.available():
        raise RuntimeError(f"the MIP solver {SOLVER_NAME!r} is not available: pip install highspy")
    solver.config.mip_gap = 0.0
    solver.config.load_solution = False
    solver.highs_options = {
        "mip_abs_gap": 0.0,
        "mip_rel_gap": 0.0,
        "primal_feasibility_tolerance": FEASIBILITY_TOLERANCE,
        "mip_feasibility_tolerance": FEASIBILITY_TOLERANCE,
        "threads": 1,
        "random_seed": 0,
    }
    return solver


def solve_model(solver, model) -> bool:
    """Solve and load the solution: True if optimal, False if infeasible; anything else is an error."""
    results = solver.solve(model)
    if results.termination_condition == TerminationCondition.optimal:
        results.solution_loader.load_vars()
        return True
    if results.termination_condition in (TerminationCondition.infeasible,):
        return False
    raise RuntimeError(f"HiGHS stopped with {results.termination_condition}; the model may be malformed")
