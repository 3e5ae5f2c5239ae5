"""Block-value estimators: which networks they evaluate, how many, and what the predictors make of them."""

import itertools

import numpy as np
import pytest

from blocknas.orchestrator.estimation import (
    EstimatorSettings,
    block_values,
    choose_contexts,
    flops_accuracy,
    swap_networks,
)
from blocknas.workers.tabular import CountingOracle

SIZES = [5] * 6  # the NAS-Bench-201 shape: 15,625 networks
FLOPS = tuple(np.array([0.0, 0.0, 3.9, 35.4, 0.0]) for _ in SIZES)
BASE = (3,) * 6


def evaluate_all(contexts, sizes, f):
    """Evaluate the estimator's networks through a counting oracle, as the benchmark does."""
    oracle = CountingOracle({",".join(map(str, s)): f(s) for s in itertools.product(*map(range, sizes))})
    measured = {s: oracle.evaluate(",".join(map(str, s))) for s in swap_networks(contexts, sizes)}
    return measured, oracle.evaluations


@pytest.mark.parametrize("kind", ["base", "avg_context"])
def test_one_context_estimators_evaluate_m_times_n_minus_1_plus_1_networks(kind):
    contexts = choose_contexts(EstimatorSettings(kind), SIZES, BASE, FLOPS)
    _, evaluations = evaluate_all(contexts, SIZES, lambda s: float(sum(s)))
    assert len(contexts) == 1 and evaluations == 6 * 4 + 1
    # avg_context: the block nearest the slot's mean FLOPs (7.86) is nor_conv_1x1 (index 2) everywhere
    assert contexts[0] == (BASE if kind == "base" else (2,) * 6)


def test_sampled_estimator_evaluates_about_the_configured_fraction_of_valid_contexts():
    valid = lambda s: s[0] != 0  # noqa: E731
    settings = EstimatorSettings("sampled", sample_fraction=0.05, seed=3)
    contexts = choose_contexts(settings, SIZES, BASE, FLOPS, is_valid=valid)
    assert len(contexts) == round(0.05 * 15625 / 25) == 31
    assert len(set(contexts)) == 31 and all(valid(c) for c in contexts)
    _, evaluations = evaluate_all(contexts, SIZES, lambda s: 0.0)
    assert 0.8 * 0.05 * 15625 < evaluations <= 31 * 25  # overlapping swaps are evaluated once
    assert contexts != choose_contexts(EstimatorSettings("sampled", 0.05, seed=4), SIZES, BASE, FLOPS, valid)


@pytest.mark.parametrize("kind", ["base", "avg_context", "sampled"])
def test_block_values_recover_an_additive_function_exactly(kind):
    rng = np.random.default_rng(0)
    sizes = [3, 4, 2, 5]
    truth = [rng.normal(size=n) for n in sizes]
    f = lambda s: 50.0 + sum(truth[i][j] for i, j in enumerate(s))  # noqa: E731
    contexts = choose_contexts(
        EstimatorSettings(kind, 0.3, 1), sizes, (0, 0, 0, 0), tuple(np.arange(n, dtype=float) for n in sizes)
    )
    measured, _ = evaluate_all(contexts, sizes, f)
    values, offset = block_values(contexts, sizes, measured)
    for s in itertools.product(*map(range, sizes)):
        assert offset + sum(values[i][j] for i, j in enumerate(s)) == pytest.approx(f(s))


def test_one_context_prediction_is_exact_on_every_evaluated_network_even_if_not_additive():
    f = lambda s: float(np.prod([j + 1 for j in s]))  # noqa: E731
    contexts = choose_contexts(EstimatorSettings("base"), SIZES, BASE, FLOPS)
    measured, _ = evaluate_all(contexts, SIZES, f)
    values, offset = block_values(contexts, SIZES, measured)
    for s, value in measured.items():
        assert offset + sum(values[i][j] for i, j in enumerate(s)) == pytest.approx(value)
    assert offset + sum(v[0] for v in values) != pytest.approx(f((0,) * 6))  # unevaluated: additive guess


def test_flops_predictor_equals_linear_when_every_block_has_the_same_flops():
    rng = np.random.default_rng(1)
    sizes = [3, 3, 3]
    f = lambda s: 70.0 + sum(s) + rng.normal()  # noqa: E731
    contexts = choose_contexts(EstimatorSettings("base"), sizes, (1, 1, 1), ())
    measured, _ = evaluate_all(contexts, sizes, f)
    values, offset = block_values(contexts, sizes, measured)
    flat = tuple(np.full(3, 2.0) for _ in sizes)
    fractional = flops_accuracy(values, (1, 1, 1), flat, 4.0, measured)
    selections = np.array(list(itertools.product(range(3), repeat=3)))
    linear = offset + sum(values[i][selections[:, i]] for i in range(3))
    np.testing.assert_allclose(fractional.predict_all(selections), linear, atol=1e-9)


def test_flops_predictor_weights_block_values_by_mean_flops_over_network_flops():
    flops = (np.array([1.0, 3.0]), np.array([0.0, 2.0]))
    values = (np.array([0.0, -1.0]), np.array([0.0, -2.0]))
    measured = {(0, 0): 10.0}
    fractional = flops_accuracy(values, (0, 0), flops, 1.0, measured)
    # Fbar[0][1] = F0 + f_01 + mean(f_1) = 1 + 3 + 1 = 5; Fbar[1][1] = 1 + 2 + mean(f_0) = 5
    # Acc(1, 1) = Acc(N~) - (1 * 5 + 2 * 5) / F(1, 1) = 10 - 15 / 6
    assert fractional.predict((0, 0)) == pytest.approx(10.0)
    assert fractional.predict((1, 1)) == pytest.approx(10.0 - 15.0 / 6.0)


def test_estimator_settings_reject_unknown_kinds_and_fractions():
    with pytest.raises(ValueError, match="estimator must be one of"):
        EstimatorSettings("bayes")
    with pytest.raises(ValueError, match="sample_fraction"):
        EstimatorSettings("sampled", sample_fraction=0.0)
