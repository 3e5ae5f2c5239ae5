"""Baselines the loop is measured against, with the same number of network evaluations.

Both work over an explicit space (every network's selection, and a mask of the networks allowed: connected
and within the budget) and return the indices they evaluated, in order, each once.

- ``random_search``: distinct networks drawn uniformly from the allowed ones;
- ``regularized_evolution``: REA (Real et al. 2019) as the NAS-Bench-201 paper runs it: a population of
  ``population`` random networks; then repeatedly sample ``sample`` members, mutate the most accurate in
  one slot (another block, uniformly), evaluate the child, add it and drop the oldest member. Children
  that are not allowed or already evaluated are re-drawn without spending an evaluation;
- ``tpe_search``: Optuna's multivariate TPE sampler, infeasible proposals told as constraint violations
  (optional: the ``tpe`` extra).
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


def tpe_search(selections: np.ndarray, allowed: np.ndarray, accuracy: np.ndarray, evaluations: int, seed: int,
               max_proposals_per_evaluation: int = 50) -> list[int]:
    """Optuna's TPE sampler (multivariate, one categorical per slot), what a user would pick instead.

    A proposal that is not allowed (disconnected or over the budget: known without training) is told to
    TPE as infeasible through its constraints and costs no evaluation; a proposal already evaluated is told
    its known value and costs none either. Needs the ``tpe`` extra (``pip install 'blocknas[tpe]'``).
    """
    try:
        import optuna
    except ImportError as exc:
        raise ImportError("bench peer tpe needs Optuna: pip install -e '.[tpe]'") from exc
    import warnings

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sizes = tuple(int(s) for s in selections.max(axis=0) + 1)
    evaluations = min(evaluations, int(allowed.sum()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # multivariate
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    index_of = {tuple(row): i for i, row in enumerate(selections.tolist())}
    evaluated: list[int] = []
    seen: set[int] = set()
    for _ in range(evaluations * max_proposals_per_evaluation):
        if len(evaluated) >= evaluations:
            break
        trial = study.ask()
        index = index_of.get(tuple(trial.suggest_categorical(f"s{i}", list(range(n))) for i, n in enumerate(sizes)))
        feasible = index is not None and bool(allowed[index])
        trial.set_constraint("allowed", 0.0 if feasible else 1.0)
        if feasible and index not in seen:
            evaluated.append(index)
            seen.add(index)
        study.tell(trial, float(accuracy[index]) if feasible else 0.0)
    return evaluated
