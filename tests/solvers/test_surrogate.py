"""The learned predictor: pairwise refit reduces error; its MIP is exact against brute force."""

import itertools

import numpy as np
import pytest

from blocknas.solvers import BlockTable
from blocknas.solvers.formulations.surrogate_mip import surrogate_pool
from blocknas.solvers.structure import ConnectivityRule
from blocknas.solvers.surrogate import SurrogateModel, fit_surrogate, interaction_pairs

SIZES = (3, 4, 3, 3)


def _random_model(rng, sizes, pairs, scale=1.0) -> SurrogateModel:
    return SurrogateModel(
        float(rng.normal()),
        tuple(rng.normal(size=n) * scale for n in sizes),
        {(a, b): rng.normal(size=(sizes[a], sizes[b])) * scale for a, b in pairs},
    )


def _all(sizes):
    return np.array(list(itertools.product(*(range(n) for n in sizes))))


def _table(sizes, rules=()):
    return BlockTable(
        slots=tuple(f"s{i}" for i in range(len(sizes))),
        choices=tuple(tuple(f"b{j}" for j in range(n)) for n in sizes),
        accuracy=tuple(np.zeros(n) for n in sizes),
        rules=rules,
    )


def test_refit_recovers_known_interactions():
    rng = np.random.default_rng(0)
    sizes = (4,) * 5
    pairs = interaction_pairs(len(sizes), "all")
    truth = _random_model(rng, sizes, [(0, 1), (2, 4)], scale=1.0)
    # The prior knows the additive part only roughly (as a block table from swap-in differences would).
    prior = SurrogateModel.additive(truth.offset, [v + rng.normal(scale=0.3, size=len(v)) for v in truth.unary])
    every = _all(sizes)
    target = truth.predict_all(every)
    seen = every[rng.choice(len(every), size=120, replace=False)]
    fitted = fit_surrogate(prior, [tuple(s) for s in seen], truth.predict_all(seen), pairs)
    prior_rmse = np.sqrt(np.mean((prior.predict_all(every) - target) ** 2))
    fitted_rmse = np.sqrt(np.mean((fitted.predict_all(every) - target) ** 2))
    assert fitted.fitted_on == 120
    assert fitted_rmse < 0.5 * prior_rmse
    # the learned interaction sits where the truth has one
    strength = {p: np.ptp(v) for p, v in fitted.pairs.items()}
    assert min(strength[(0, 1)], strength[(2, 4)]) > max(v for p, v in strength.items() if p not in {(0, 1), (2, 4)})


def test_refit_without_interactions_stays_additive_and_exact_on_additive_truth():
    rng = np.random.default_rng(1)
    sizes = (3,) * 4
    truth = _random_model(rng, sizes, [])
    prior = SurrogateModel.additive(0.0, [np.zeros(n) for n in sizes])
    every = _all(sizes)
    seen = every[rng.choice(len(every), size=40, replace=False)]
    fitted = fit_surrogate(prior, [tuple(s) for s in seen], truth.predict_all(seen))
    assert fitted.pairs == {}
    assert np.max(np.abs(fitted.predict_all(every) - truth.predict_all(every))) < 0.05
    assert fit_surrogate(prior, [], []) is prior
    with pytest.raises(ValueError, match="2 selections but 1 values"):
        fit_surrogate(prior, [(0,) * 4, (1,) * 4], [1.0])


@pytest.mark.parametrize("seed", range(4))
def test_pool_is_exact_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    pairs = interaction_pairs(len(SIZES), "all")
    accuracy = _random_model(rng, SIZES, pairs)
    latency = _random_model(rng, SIZES, [(0, 2)])
    latency = SurrogateModel(latency.offset + 10, latency.unary, latency.pairs)
    every = _all(SIZES)
    acc, lat = accuracy.predict_all(every), latency.predict_all(every)
    budget = float(np.quantile(lat, 0.4))
    exclude = [tuple(s) for s in every[np.argsort(-acc)[:3]]]
    center = tuple(every[rng.integers(len(every))])
    for kwargs in ({}, {"center": center, "radius": 2}):
        pool = surrogate_pool(
            _table(SIZES), accuracy, 5, {"latency": latency}, {"latency": budget}, exclude=exclude, **kwargs
        )
        ok = (lat <= budget + 1e-9) & ~np.isin(np.arange(len(every)), [np.ravel_multi_index(s, SIZES) for s in exclude])
        if kwargs:
            ok &= (every != np.array(center)).sum(axis=1) <= 2
        expected = np.sort(acc[ok])[::-1][:5]
        got = accuracy.predict_all(np.array(pool))
        assert len(set(pool)) == len(pool) == 5
        np.testing.assert_allclose(got, expected, atol=1e-7)
        assert not set(pool) & set(exclude)


def test_pool_respects_connectivity_rules_and_reports_exhaustion():
    sizes = (2, 2, 2)
    rule = ConnectivityRule(paths=((0,), (1, 2)), inactive="b0")
    accuracy = SurrogateModel.additive(0.0, [np.array([5.0, 0.0])] * 3)  # prefers the inactive block
    pool = surrogate_pool(_table(sizes, (rule,)), accuracy, 10)
    valid = [s for s in itertools.product(range(2), repeat=3) if s[0] == 1 or (s[1] == 1 and s[2] == 1)]
    assert sorted(pool) == sorted(valid)  # every valid network once, then the model is infeasible
    with pytest.raises(ValueError, match="no cost model"):
        surrogate_pool(_table(sizes), accuracy, 1, budgets={"latency": 1.0})
