"""The search methods every run and bench share: each one, built from its defaults, spends exactly its
evaluations on distinct allowed networks, and each is found by name, entry point or import path."""

from __future__ import annotations

import itertools
from dataclasses import asdict, replace

import numpy as np
import pytest

from blocknas.orchestrator.search.methods import SEARCH_METHODS
from blocknas.orchestrator.search.problem import NetworkProblem

SIZES = (4, 4, 4, 4, 4)
EVERY = np.array(list(itertools.product(*(range(n) for n in SIZES))))


def _problem(evaluations: int, seed: int = 0) -> tuple[NetworkProblem, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    allowed = rng.random(len(EVERY)) < 0.3
    accuracy = rng.normal(size=len(EVERY))
    return (
        NetworkProblem.from_arrays(EVERY, allowed, accuracy, evaluations, {"flops": EVERY.sum(axis=1) * 1.0}),
        allowed,
        accuracy,
    )


@pytest.mark.parametrize("name", [n for n in SEARCH_METHODS.names() if SEARCH_METHODS.get(n).whole_networks])
def test_every_whole_network_method_spends_its_evaluations_on_distinct_allowed_networks(name):
    method = SEARCH_METHODS.get(name)
    if name == "tpe":
        pytest.importorskip("optuna")
    settings = method.settings({})  # every method's defaults are valid
    assert asdict(settings) == asdict(method.Settings())
    problem, allowed, _ = _problem(40)
    method.search(problem, replace(settings, evaluations=40), seed=0)
    rows = [problem.rows[s] for s in problem.accuracy]
    assert 0 < len(rows) == len(set(rows)) <= 40 and allowed[rows].all()
    if name != "layernas":  # LayerNAS may converge before it spends them all
        assert len(rows) == 40
    again, _, _ = _problem(40)
    method.search(again, replace(settings, evaluations=40), seed=0)
    assert list(again.accuracy) == list(problem.accuracy)  # seeded: the same networks in the same order


def test_rea_children_are_one_slot_mutations():
    problem, _, _ = _problem(40)
    rea = SEARCH_METHODS.get("rea")
    rea.search(problem, rea.Settings(evaluations=40, population=10, sample=3), seed=1)
    order = list(problem.accuracy)
    for k in range(10, 40):
        assert min(sum(a != b for a, b in zip(order[k], order[j], strict=True)) for j in range(k)) == 1


def test_tpe_finds_a_planted_best():
    pytest.importorskip("optuna")
    selections = np.array(list(itertools.product(range(4), repeat=4)))
    allowed = selections[:, 0] != 3  # a quarter is over the budget: proposals there cost nothing
    accuracy = -np.abs(selections - np.array([2, 1, 3, 0])).sum(axis=1).astype(float)  # one peak, smooth
    tpe = SEARCH_METHODS.get("tpe")
    for seed in range(3):
        problem = NetworkProblem.from_arrays(selections, allowed, accuracy, 40)
        tpe.search(problem, tpe.Settings(evaluations=40), seed)
        assert len(problem.accuracy) == 40 and all(allowed[problem.rows[s]] for s in problem.accuracy)
        assert max(problem.accuracy.values()) >= -1  # at or next to the peak in 40 of 192 allowed networks


def test_networks_known_from_an_earlier_run_are_read_back_and_counted():
    problem, allowed, accuracy = _problem(10)
    first = [tuple(int(j) for j in EVERY[i]) for i in np.flatnonzero(allowed)[:3]]
    problem.known = {s: 123.0 for s in first}
    measured = []
    measure = problem.measure
    problem.measure = lambda batch: measured.extend(batch) or measure(batch)
    assert problem.evaluate(first + first) == dict.fromkeys(first, 123.0)
    assert measured == [] and problem.remaining == 7


def test_an_unknown_method_names_the_valid_ones():
    with pytest.raises(LookupError, match="valid: blocks, layernas, random, rea, tpe"):
        SEARCH_METHODS.get("raandom")
