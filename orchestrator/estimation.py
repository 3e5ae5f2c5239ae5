"""Block-value estimators (which networks to evaluate) and predictors (how block values predict a network).

Networks are selections: one block index per slot. Every estimator is the swap-in design of MathNAS over
a set of context networks ``C_k``: block ``j`` at slot ``i`` is valued by
``v_ij = mean_k [f(C_k with b_ij at i) - f(C_k)]``, which is ``-bA_ij`` of the paper's Eq. 3 up to a
per-slot constant (no ranking depends on it). The estimators differ only in the contexts:

- ``base``: the base network ``N~`` (the space's base block at every slot), Eq. 3 with one N;
- ``avg_context``: ``N_avg``, at each slot the block whose FLOPs are nearest the slot's mean (Algorithm 1);
- ``sampled``: random valid networks, as many as fit ``sample_fraction`` of the space's networks (the
  paper's full average of Eq. 3, estimated on a sample; the paper uses 5 %).

The same function turns whole-network costs (latency, energy) into per-block costs by substitution.
The predictor's intercept is the least-squares one: the mean residual over the evaluated networks. With
one context it makes the prediction exact on every evaluated network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from blocknas.workers.registry import Registry, RegistryError, did_you_mean, looks_like_import_path

if TYPE_CHECKING:
    from blocknas.solvers.fractional import FractionalAccuracy

# An estimator is ``contexts(settings, sizes, base, flops, is_valid) -> selections`` (third-party ones
# register, or load by entry point or import path); predictors are ``blocknas.orchestrator.predictors``.
ESTIMATOR_REGISTRY: Registry = Registry("estimator")

Selection = tuple[int, ...]
PerSlot = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class EstimatorSettings:
    kind: str = "avg_context"
    sample_fraction: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ESTIMATOR_REGISTRY and not looks_like_import_path(self.kind):
            raise ValueError(
                f"estimator must be one of {tuple(ESTIMATORS)}{did_you_mean(self.kind, ESTIMATORS)} "
                f"or an import path, got {self.kind!r}"
            )
        try:  # an import path is resolved now, before anything is written, not when the first plan needs it
            ESTIMATOR_REGISTRY.get(self.kind)
        except RegistryError as exc:
            raise ValueError(f"estimator: {exc}") from None
        if not 0 < self.sample_fraction <= 1:
            raise ValueError(f"sample_fraction must be in (0, 1], got {self.sample_fraction}")


def evaluations_per_context(sizes: Sequence[int]) -> int:
    return 1 + sum(n - 1 for n in sizes)


def choose_contexts(
    settings: EstimatorSettings,
    sizes: Sequence[int],
    base: Selection,
    flops: PerSlot,
    is_valid: Callable[[Selection], bool] = lambda s: True,
) -> tuple[Selection, ...]:
    """The context networks of the estimator (see the module docstring)."""
    return tuple(ESTIMATOR_REGISTRY.get(settings.kind)(settings, sizes, base, flops, is_valid))


@ESTIMATOR_REGISTRY.register("base")
def base_context(settings, sizes, base, flops, is_valid) -> tuple[Selection, ...]:
    return (tuple(base),)


@ESTIMATOR_REGISTRY.register("avg_context")
def avg_context(settings, sizes, base, flops, is_valid) -> tuple[Selection, ...]:
    return (tuple(int(np.argmin(np.abs(f - f.mean()))) for f in flops),)


@ESTIMATOR_REGISTRY.register("sampled")
def sampled_contexts(settings, sizes, base, flops, is_valid) -> tuple[Selection, ...]:
    total = int(np.prod(sizes, dtype=float))
    wanted = max(1, round(settings.sample_fraction * total / evaluations_per_context(sizes)))
    rng = np.random.default_rng(settings.seed)
    contexts: dict[Selection, None] = {}
    for _ in range(1000 * wanted):
        if len(contexts) == wanted:
            break
        candidate = tuple(int(rng.integers(n)) for n in sizes)
        if candidate not in contexts and is_valid(candidate):
            contexts[candidate] = None
    if len(contexts) < wanted:
        raise ValueError(f"could only sample {len(contexts)} of {wanted} distinct valid context networks")
    return tuple(contexts)


ESTIMATORS = tuple(ESTIMATOR_REGISTRY.names())


def swap_networks(contexts: Sequence[Selection], sizes: Sequence[int]) -> list[Selection]:
    """Every network the estimator evaluates, each once, in a stable order."""
    networks: dict[Selection, None] = {}
    for context in contexts:
        networks[tuple(context)] = None
        for i, n in enumerate(sizes):
            for j in range(n):
                networks[tuple(context[:i]) + (j,) + tuple(context[i + 1 :])] = None
    return list(networks)


def block_values(
    contexts: Sequence[Selection], sizes: Sequence[int], value: Mapping[Selection, float]
) -> tuple[PerSlot, float]:
    """``(v, offset)`` with ``f(N) ~ offset + sum_i v[i][N_i]`` (module docstring)."""
    values = tuple(np.zeros(n) for n in sizes)
    for context in contexts:
        at_context = value[tuple(context)]
        for i, n in enumerate(sizes):
            for j in range(n):
                swapped = tuple(context[:i]) + (j,) + tuple(context[i + 1 :])
                values[i][j] += (value[swapped] - at_context) / len(contexts)
    networks = swap_networks(contexts, sizes)
    residuals = [value[s] - sum(values[i][j] for i, j in enumerate(s)) for s in networks]
    return values, float(np.mean(residuals))


def flops_accuracy(
    values: PerSlot,
    base: Selection,
    flops: PerSlot,
    flops_fixed: float,
    measured: Mapping[Selection, float],
) -> FractionalAccuracy:
    """MathNAS Eq. 5: ``Acc(N) = Acc(N~) - sum_i bA_iJ(i) * Fbar_iJ(i) / F(N)``.

    ``bA_ij = v_i,base - v_ij`` (positive when ``b_ij`` is worse than the base block) and ``Fbar_ij`` is
    the mean FLOPs of all networks holding ``b_ij``: ``F0 + f_ij + sum_{k != i} mean_j f_kj``. The intercept
    is fitted to the ``measured`` networks (least squares), as for the linear predictor.
    """
    from blocknas.solvers.fractional import FractionalAccuracy

    means = [float(f.mean()) for f in flops]
    numerator = tuple(
        (values[i][base[i]] - values[i]) * (flops_fixed + flops[i] + sum(means) - means[i]) for i in range(len(values))
    )
    shape = FractionalAccuracy(0.0, numerator, tuple(np.asarray(f, float) for f in flops), float(flops_fixed))
    selections = np.array(list(measured), dtype=int)
    residual = np.array(list(measured.values())) - shape.predict_all(selections)
    return FractionalAccuracy(float(residual.mean()), numerator, shape.denominator, shape.denominator_offset)
