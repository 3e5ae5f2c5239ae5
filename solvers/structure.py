"""Structural rules as linear constraints.

``ConnectivityRule``: a cell is valid only if at least one input-to-output path has every edge (slot)
holding a block other than ``inactive`` (NAS-Bench-201's ``none``). With ``y_i = 1 - x[i, inactive]`` the
edge is active; one continuous ``p_k`` per path with ``p_k <= y_i`` for every edge of path ``k`` and
``sum_k p_k >= 1`` is exact: ``p_k`` can be positive only if its whole path is active.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConnectivityRule:
    paths: tuple[tuple[int, ...], ...]  # each a tuple of slot indices from input to output
    inactive: str  # the block that cuts an edge

    def valid_mask(self, choices: tuple[tuple[str, ...], ...], selections: np.ndarray) -> np.ndarray:
        """Which rows of ``selections`` ([N, m] block indices) satisfy the rule."""
        active = np.ones_like(selections, dtype=bool)
        for i, names in enumerate(choices):
            if self.inactive in names:
                active[:, i] = selections[:, i] != names.index(self.inactive)
        return np.any([np.all(active[:, list(path)], axis=1) for path in self.paths], axis=0)
