"""The solvers' time limit: ``BLOCKNAS_SOLVER_TIME_LIMIT`` seconds per solve, checked before any work (no
Pyomo or HiGHS is loaded to check it)."""

from __future__ import annotations

import math
import os

TIME_LIMIT_ENV = "BLOCKNAS_SOLVER_TIME_LIMIT"
TIME_LIMIT_S = 120.0


class SolverTimeLimitError(RuntimeError):
    """A MIP did not finish within the time limit; nothing was returned from it."""


class SolverSettingError(ValueError):
    """``BLOCKNAS_SOLVER_TIME_LIMIT`` is not a number of seconds."""


def time_limit() -> float:
    value = os.environ.get(TIME_LIMIT_ENV)
    if not value:
        return TIME_LIMIT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise SolverSettingError(
            f"{TIME_LIMIT_ENV} must be a number of seconds > 0, got {value!r}; unset it for "
            f"the default {TIME_LIMIT_S:g} s"
        )
    return seconds
