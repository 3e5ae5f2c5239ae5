"""LayerNAS: layer by layer over cost buckets; never the same network twice, at most ``per_bucket`` kept
per bucket, never a network that is not allowed, and evaluations left unspent only once it has converged."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from blocknas.orchestrator.search.layernas import LayerNasSettings, layernas

SIZES = (4, 4, 4, 4, 4)
RNG = np.random.default_rng(0)
COST = RNG.uniform(0, 3, (len(SIZES), 4))
VALUE = RNG.normal(0, 1, (len(SIZES), 4))


def cost(s):
    return float(sum(COST[i, j] for i, j in enumerate(s)))


def accuracy(s):
    return float(sum(VALUE[i, j] for i, j in enumerate(s)) + 0.3 * np.sin(sum(s)))  # not quite additive


@pytest.mark.parametrize("buckets,per_bucket", [(1, 1), (3, 1), (4, 2), (8, 3)])
def test_layernas_evaluates_each_allowed_network_once_and_keeps_at_most_per_bucket(buckets, per_bucket):
    budget = 7.0
    calls: list[list] = []

    def evaluate(batch):
        calls.append(list(batch))
        return {s: accuracy(s) for s in batch}

    networks = list(itertools.product(*(range(n) for n in SIZES)))
    start = min((s for s in networks if cost(s) <= budget), key=cost)
    settings = LayerNasSettings(buckets, per_bucket)
    result = layernas(SIZES, cost, lambda s: cost(s) <= budget, evaluate, budget, 60, start, settings)
    evaluated = [s for batch in calls for s in batch]
    assert len(evaluated) == len(set(evaluated)) == len(result.evaluated) <= 60  # never twice
    if len(evaluated) < 60:  # stopped early only when converged: every neighbour of what it keeps is known
        neighbours = {k[:i] + (o,) + k[i + 1 :] for k in result.kept[-1] for i, n in enumerate(SIZES) for o in range(n)}
        assert all(n in result.accuracy for n in neighbours if cost(n) <= budget)
    assert all(cost(s) <= budget for s in evaluated)
    width = (budget - cost(start)) / buckets
    for kept in result.kept:
        per = {}
        for s in kept:
            b = min(buckets - 1, int((cost(s) - cost(start)) / width))
            per[b] = per.get(b, 0) + 1
        assert max(per.values()) <= per_bucket and len(kept) <= buckets * per_bucket
    assert result.pick == max(evaluated, key=accuracy)
    again = layernas(SIZES, cost, lambda s: cost(s) <= budget, evaluate, budget, 60, start, settings)
    assert again.evaluated == result.evaluated  # deterministic


def test_a_small_space_stops_when_nothing_new_is_left():
    sizes = (2, 2)
    result = layernas(
        sizes,
        lambda s: float(sum(s)),
        lambda s: True,
        lambda b: {s: -float(sum(s)) for s in b},
        budget=2.0,
        evaluations=60,
        start=(0, 0),
    )
    assert sorted(result.evaluated) == [(0, 0), (0, 1), (1, 0), (1, 1)] and result.sweeps <= 3


def test_bad_settings_and_a_start_that_is_not_allowed_are_refused():
    with pytest.raises(ValueError, match="layernas.buckets must be an integer >= 1"):
        LayerNasSettings(buckets=0)
    with pytest.raises(ValueError, match="unknown keys"):
        LayerNasSettings.from_dict({"bucket": 3})
    with pytest.raises(ValueError, match="start network"):
        layernas((2,), lambda s: 5.0, lambda s: False, dict, 1.0, 5, (0,))
