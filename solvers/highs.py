"""HiGHS behind every model, Pyomo's and the direct LPs: one configuration, one way to run it.

- Exact: zero relative and absolute MIP gap. ``mip_feasibility_tolerance`` is 1e-8: at 1e-9 a core of a
  real Puzzle library never finished (ERGO-Code/HiGHS#2033 calls such values "asking for trouble"); at
  HiGHS's default 1e-6, equal to the sweep's cap step (``additive_mip.STEP``), presolve returned a
  sub-optimal "optimal" network next to a cap. Answers are checked in exact arithmetic by the callers
  (``additive_mip.solve_exactly``, ``lagrangian_core``), which tighten a row met only within tolerance.
- Bounded: every solve has a time limit (``TIME_LIMIT_S``, or ``BLOCKNAS_SOLVER_TIME_LIMIT`` seconds);
  reaching it raises ``SolverTimeLimitError``, naming the limit and how to raise it.
- Quiet: HiGHS prints its banner on stdout when a process creates its first instance; that is done here,
  once, with stdout pointed elsewhere, so ``--json`` output stays JSON.
- Interruptible: Ctrl-C during a solve stops HiGHS at its next check (its interrupt callbacks) and raises
  ``KeyboardInterrupt`` (HiGHS itself would not notice it until the solve ended).
- Single-threaded and deterministic. HiGHS keeps one thread scheduler per process: when another
  library in the process already started it with a different thread count, it is reset (once per run).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

import highspy
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs

from blocknas.solvers.limits import (  # noqa: F401 - their home for callers of highs
    TIME_LIMIT_ENV,
    TIME_LIMIT_S,
    SolverSettingError,
    SolverTimeLimitError,
    time_limit,
)

SOLVER_NAME = "appsi_highs"
OPTIONS = {"mip_abs_gap": 0.0, "mip_rel_gap": 0.0, "mip_feasibility_tolerance": 1e-8, "threads": 1, "random_seed": 0}


def _time_limit_error(seconds: float) -> SolverTimeLimitError:
    return SolverTimeLimitError(
        f"the MIP solver did not finish within {seconds:g} s; set {TIME_LIMIT_ENV}=SECONDS "
        "to allow more, or loosen the budgets"
    )


@contextlib.contextmanager
def _stdout_silenced():
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _first_instance() -> None:
    try:
        with _stdout_silenced():
            highspy.Highs()
    except OSError:  # no file descriptor 1 to redirect (an embedding host): the banner may show
        highspy.Highs()


_first_instance()
# An interrupted solve is ours to report (KeyboardInterrupt), not a warning about an unknown status.
logging.getLogger("pyomo.contrib.appsi.solvers.highs").addFilter(lambda record: "kInterrupt" not in record.getMessage())


def _interruptibly(work: Callable):
    """``work(watch)`` with Ctrl-C deferred: a HiGHS instance passed to ``watch`` stops at its next check,
    and ``KeyboardInterrupt`` is raised once ``work`` has returned (Pyomo turns an exception raised inside
    it into an error of its own)."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        return work(lambda highs: None)
    pressed: list[int] = []
    hooks: list = []

    def check(event) -> None:
        if pressed:
            event.interrupt()

    def watch(highs: highspy.Highs) -> None:
        for hook in (highs.cbMipInterrupt, highs.cbSimplexInterrupt, highs.cbIpmInterrupt):
            hook.subscribe(check)
            hooks.append(hook)

    previous = signal.signal(signal.SIGINT, lambda *_: pressed.append(True))
    try:
        result = work(watch)
    finally:
        for hook in hooks:
            hook.unsubscribe(check)
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt
    return result


def new_highs() -> highspy.Highs:
    """A silent direct HiGHS instance with the options above."""
    highs = highspy.Highs()
    highs.silent()
    for name, value in OPTIONS.items():
        highs.setOptionValue(name, value)
    highs.setOptionValue("time_limit", time_limit())
    return highs


def run_highs(highs: highspy.Highs) -> highspy.HighsModelStatus:
    """Run a direct instance; its model status (``SolverTimeLimitError`` at the time limit)."""

    def work(watch):
        watch(highs)
        if highs.run() == highspy.HighsStatus.kError and highs.getModelStatus() == highspy.HighsModelStatus.kNotset:
            highspy.Highs.resetGlobalScheduler(True)  # started by someone else with another thread count
            highs.run()

    _interruptibly(work)
    status = highs.getModelStatus()
    if status == highspy.HighsModelStatus.kTimeLimit:
        raise _time_limit_error(time_limit())
    return status


def new_solver():
    """An exact (zero-gap), single-threaded, deterministic HiGHS behind Pyomo; persistent, so a model
    solved again after a parameter change is updated in place instead of rewritten."""
    solver = Highs()
    if not solver.available():
        raise RuntimeError(f"the MIP solver {SOLVER_NAME!r} is not available: pip install highspy")
    solver.config.mip_gap = 0.0
    solver.config.load_solution = False
    solver.config.time_limit = time_limit()
    solver.highs_options = dict(OPTIONS)
    return solver


def solve_model(solver, model, variables: list | None = None) -> bool:
    """Solve and load the solution (of ``variables`` only, if given): True if optimal, False if
    infeasible; anything else is an error."""

    def work(watch):
        if solver._model is not model:  # Pyomo's persistent HiGHS: its highspy instance exists once set
            solver.set_instance(model)
        watch(solver._solver_model)
        results = solver.solve(model)
        if results.termination_condition == TerminationCondition.error:
            highspy.Highs.resetGlobalScheduler(True)
            results = solver.solve(model)
        return results

    results = _interruptibly(work)
    if results.termination_condition == TerminationCondition.optimal:
        results.solution_loader.load_vars(variables)
        return True
    if results.termination_condition == TerminationCondition.infeasible:
        return False
    if results.termination_condition == TerminationCondition.maxTimeLimit:
        raise _time_limit_error(solver.config.time_limit)
    raise RuntimeError(f"HiGHS stopped with {results.termination_condition}; the model may be malformed")
