"""Baselines the loop is measured against, with the same number of network evaluations.

Both work over an explicit space (every network's selection, and a mask of the networks allowed: connected
and within the budget) and return the indices they evaluated, in order, each once.

- ``random_search``: distinct networks drawn uniformly from the allowed ones;
- ``regularized_evolution``: REA (Real et al. 2019) as the NAS-Bench-201 paper runs it: a population of
  ``population`` random networks; then repeatedly sample ``sample`` members, mutate the most accurate in
  one slot (another block, uniformly), evaluate the child, add it and drop the oldest member. Children
  that are not allowed or already evaluated are re-drawn without spending an evaluation.
"""

from __future__ import annotations

from collections import deque

import numpy as np


def random_search(allowed: np.ndarray, evaluations: int, rng: np.random.Generator) -> list[int]:
    candidates = np.flatnonzero(allowed)
    return [int(i) for i in rng.choice(candidates, size=min(evaluations, len(candidates)), replace=False)]


def regularized_evolution(selections: np.ndarray, allowed: np.ndarray, accuracy: np.ndarray, evaluations: int,
                          rng: np.random.Generator, population: int = 10, sample: int = 3,
                          max_draws: int = 100_000) -> list[int]:
    """REA over ``selections`` (``[N, m]``, in C order of the per-slot sizes); see the module docstring."""
    sizes = selections.max(axis=0) + 1
    candidates = np.flatnonzero(allowed)
    evaluations = min(evaluations, len(candidates))
    evaluated: list[int] = [int(i) for i in rng.choice(candidates, size=min(population, evaluations), replace=False)]
    seen = set(evaluated)
    alive = deque(evaluated)
    for _ in range(max_draws):
        if len(evaluated) >= evaluations:
            break
        members = rng.choice(len(alive), size=min(sample, len(alive)), replace=False)
        parent = max((alive[k] for k in members), key=lambda i: accuracy[i])
        child = selections[parent].copy()
        slot = int(rng.integers(len(sizes)))
        child[slot] = rng.choice([j for j in range(sizes[slot]) if j != child[slot]])
        index = int(np.ravel_multi_index(tuple(child), tuple(sizes)))
        if not allowed[index] or index in seen:
            continue
        evaluated.append(index)
        seen.add(index)
        alive.append(index)
        alive.popleft()
    return evaluated
