"""The verify-and-refit loop on a synthetic space with known interactions (real HiGHS, no Ray)."""

import itertools

import numpy as np
import pytest

from blocknas.orchestrator.pipeline.refine import RefineSettings, Verified, refine
from blocknas.solvers import BlockTable
from blocknas.solvers.surrogate import SurrogateModel

SIZES = (4, 4, 4, 4, 4)
EVERY = np.array(list(itertools.product(*(range(n) for n in SIZES))))


def _world(seed=0):
    rng = np.random.default_rng(seed)
    truth = SurrogateModel(
        50.0,
        tuple(rng.normal(size=n) * 3 for n in SIZES),
        {(0, 1): rng.normal(size=(4, 4)) * 3, (2, 3): rng.normal(size=(4, 4)) * 3},
    )
    latency = SurrogateModel(
        5.0, tuple(rng.uniform(0.5, 2, size=n) for n in SIZES), {(1, 2): rng.uniform(0, 1, size=(4, 4))}
    )
    table = BlockTable(
        slots=tuple(f"s{i}" for i in range(len(SIZES))),
        choices=tuple(tuple(f"b{j}" for j in range(n)) for n in SIZES),
        accuracy=truth.unary,
        accuracy_offset=truth.offset,
        costs={"latency": latency.unary},
        cost_offsets={"latency": latency.offset},
    )
    return truth, latency, table


def _run(settings, budget, verified=None, log=None):
    truth, latency, table = _world()
    verified = verified or Verified()
    calls = log if log is not None else {"evaluated": [], "measured": []}

    def evaluate(candidates):
        calls["evaluated"] += [c.selection for c in candidates]
        return {c.selection: truth.predict(c.selection) for c in candidates}

    def measure(candidates):
        calls["measured"] += [c.selection for c in candidates]
        return {c.selection: {"latency": latency.predict(c.selection)} for c in candidates}

    result = refine(
        settings,
        table,
        SurrogateModel.additive(table.accuracy_offset, table.accuracy),
        {"latency": SurrogateModel.additive(table.cost_offsets["latency"], table.costs["latency"])},
        {"latency"},
        [{"latency": budget}],
        verified,
        len(verified.accuracy),
        evaluate,
        measure,
    )
    return result, calls, truth, latency


def test_loop_never_re_evaluates_and_keeps_to_the_evaluation_budget():
    truth, latency, _ = _world()
    budget = float(np.quantile(latency.predict_all(EVERY), 0.5))
    already = [tuple(s) for s in EVERY[:: len(EVERY) // 10][:10]]
    verified = Verified({s: truth.predict(s) for s in already}, {s: {"latency": latency.predict(s)} for s in already})
    result, calls, _, _ = _run(RefineSettings(rounds=30, k=3, max_evaluations=40, patience=30), budget, verified)
    evaluated = calls["evaluated"]
    assert len(evaluated) == len(set(evaluated)) == result.evaluations == 30  # 40 in total, 10 known before
    assert not set(evaluated) & set(already)
    assert result.stopped == "max_evaluations"
    # Every evaluated network was measured within its budget first; rejected ones were never evaluated.
    assert all(latency.predict(s) <= budget for s in evaluated)
    assert not {c.selection for c in result.rejected} & set(evaluated)


def test_loop_pick_is_verified_within_budget_and_beats_the_one_shot_pick():
    _, latency, table = _world()
    lat = latency.predict_all(EVERY)
    budget = float(np.quantile(lat, 0.3))
    result, calls, truth, _ = _run(RefineSettings(rounds=25, k=2, max_evaluations=50, patience=25), budget)
    pick = result.points[0]
    assert pick.pick in calls["evaluated"]
    assert latency.predict(pick.pick) <= budget and pick.costs["latency"] == pytest.approx(latency.predict(pick.pick))
    fits = lat <= budget
    best = truth.predict_all(EVERY)[fits].max()
    additive = table.accuracy_offset + sum(table.accuracy[i][EVERY[:, i]] for i in range(len(SIZES)))
    additive_latency = table.cost_offsets["latency"] + sum(
        table.costs["latency"][i][EVERY[:, i]] for i in range(len(SIZES))
    )
    one_shot = EVERY[np.argmax(np.where(additive_latency <= budget, additive, -np.inf))]
    one_shot_regret = best - truth.predict(tuple(one_shot)) if latency.predict(tuple(one_shot)) <= budget else np.inf
    assert best - pick.accuracy < one_shot_regret
    assert best - pick.accuracy < 0.5


def test_patience_stops_a_loop_that_cannot_improve():
    _, latency, _ = _world()
    budget = float(latency.predict_all(EVERY).max())  # everything fits: the additive optimum is found at once
    result, _, _, _ = _run(RefineSettings(rounds=50, k=2, max_evaluations=500, patience=2), budget)
    assert result.stopped == "patience" and result.rounds < 50


def test_settings_are_validated():
    with pytest.raises(ValueError, match="refine.k must be an integer >= 1"):
        RefineSettings(k=0)
    with pytest.raises(ValueError, match=r"unknown config key .refine.round. \(did you mean .rounds.\?\)"):
        RefineSettings.from_dict({"round": 3})
    with pytest.raises(ValueError, match="interactions"):
        RefineSettings(interactions="triples")
