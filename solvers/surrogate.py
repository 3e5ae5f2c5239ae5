"""A predictor that learns from verified networks: block values plus pairwise slot interactions.

``f(N) = offset + sum_i unary[i][N_i] + sum_{(a, b) in pairs} pairs[a, b][N_a, N_b]``

``fit_surrogate`` starts from a block-additive prior (the block table) and learns corrections from
networks measured whole: a Bayesian linear model over one-hot unary and pairwise features, each weight
``~ N(0, s^2)`` (one scale for unary, one for pairwise terms), noise ``sigma``, all three chosen by
maximising the evidence over a grid (empirical Bayes). With no verified network it is the prior itself;
with few, the pairwise terms stay near zero, so the block table dominates until the data says otherwise.

The model is linear in the products ``x[a, j] * x[b, l]``, so the MIP stays exact:
``blocknas.solvers.formulations.surrogate_mip`` linearises them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Selection = tuple[int, ...]
Pair = tuple[int, int]

_SCALES = (0.03, 0.1, 0.3, 1.0, 3.0)  # prior std of the unary and pairwise weights, times the residual std
_NOISES = (0.01, 0.03, 0.1, 0.3, 1.0)  # noise std, times the residual std


@dataclass(frozen=True)
class SurrogateModel:
    offset: float
    unary: tuple[np.ndarray, ...]
    pairs: dict[Pair, np.ndarray]
    fitted_on: int = 0  # how many verified networks it learned from
    noise: float = 0.0  # the evidence-chosen noise std (same unit as the values)

    @classmethod
    def additive(cls, offset: float, per_slot: Sequence[np.ndarray]) -> SurrogateModel:
        return cls(float(offset), tuple(np.asarray(v, dtype=float) for v in per_slot), {})

    def predict_all(self, selections: np.ndarray) -> np.ndarray:
        selections = np.atleast_2d(selections)
        out = np.full(len(selections), self.offset)
        for i, values in enumerate(self.unary):
            out += values[selections[:, i]]
        for (a, b), values in self.pairs.items():
            out += values[selections[:, a], selections[:, b]]
        return out

    def predict(self, selection: Selection) -> float:
        return float(self.predict_all(np.array([selection]))[0])


def interaction_pairs(num_slots: int, kind: str) -> tuple[Pair, ...]:
    """``all`` slot pairs, ``adjacent`` ones (chains of layers), or ``none``."""
    if kind == "all":
        return tuple(itertools.combinations(range(num_slots), 2))
    if kind == "adjacent":
        return tuple((i, i + 1) for i in range(num_slots - 1))
    if kind == "none":
        return ()
    raise ValueError(f"interactions must be 'all', 'adjacent' or 'none', got {kind!r}")


def _features(selections: np.ndarray, sizes: Sequence[int], pairs: Sequence[Pair]) -> tuple[np.ndarray, int]:
    """One-hot unary then pairwise features; returns them and the number of unary columns."""
    n = len(selections)
    unary_width = int(sum(sizes))
    width = unary_width + sum(sizes[a] * sizes[b] for a, b in pairs)
    phi = np.zeros((n, width))
    rows = np.arange(n)
    start = 0
    for i, size in enumerate(sizes):
        phi[rows, start + selections[:, i]] = 1.0
        start += size
    for a, b in pairs:
        phi[rows, start + selections[:, a] * sizes[b] + selections[:, b]] = 1.0
        start += sizes[a] * sizes[b]
    return phi, unary_width


def _log_evidence(
    gram_unary: np.ndarray, gram_pairs: np.ndarray, r: np.ndarray, su: float, sp: float, noise: float
) -> float:
    cov = su**2 * gram_unary + sp**2 * gram_pairs + noise**2 * np.eye(len(r))
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return -np.inf
    alpha = np.linalg.solve(chol, r)
    return float(-0.5 * alpha @ alpha - np.log(np.diag(chol)).sum())


def fit_surrogate(
    prior: SurrogateModel, selections: Sequence[Selection], values: Sequence[float], pairs: Sequence[Pair] = ()
) -> SurrogateModel:
    """The prior plus the posterior-mean corrections learned from ``values`` measured at ``selections``."""
    if len(selections) != len(values):
        raise ValueError(f"{len(selections)} selections but {len(values)} values")
    if not len(selections):
        return prior
    sizes = [len(v) for v in prior.unary]
    x = np.asarray(selections, dtype=int)
    r = np.asarray(values, dtype=float) - prior.predict_all(x)
    phi, unary_width = _features(x, sizes, pairs)
    gram_unary = phi[:, :unary_width] @ phi[:, :unary_width].T
    gram_pairs = phi[:, unary_width:] @ phi[:, unary_width:].T
    spread = float(np.sqrt(np.mean(r**2))) or 1.0
    grid = [
        (su * spread, sp * spread, nz * spread)
        for su in _SCALES
        for sp in (_SCALES if pairs else (0.0,))
        for nz in _NOISES
    ]
    su, sp, noise = max(grid, key=lambda h: _log_evidence(gram_unary, gram_pairs, r, *h))
    cov = su**2 * gram_unary + sp**2 * gram_pairs + noise**2 * np.eye(len(r))
    prior_var = np.r_[np.full(unary_width, su**2), np.full(phi.shape[1] - unary_width, sp**2)]
    weights = prior_var * (phi.T @ np.linalg.solve(cov, r))

    unary, start = [], 0
    for i, size in enumerate(sizes):
        unary.append(prior.unary[i] + weights[start : start + size])
        start += size
    learned = {k: v.copy() for k, v in prior.pairs.items()}
    for a, b in pairs:
        block = weights[start : start + sizes[a] * sizes[b]].reshape(sizes[a], sizes[b])
        learned[(a, b)] = learned.get((a, b), 0.0) + block
        start += sizes[a] * sizes[b]
    return SurrogateModel(prior.offset, tuple(unary), learned, fitted_on=len(r), noise=noise)
