"""Fronts of registered targets, switching and correction: the same answers as a fresh solve."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blocknas.orchestrator.deploy import fronts, switching
from blocknas.orchestrator.deploy.fronts import best_by_solving, library_accuracy, solve_target, with_target
from blocknas.orchestrator.storage import PerformanceStore
from blocknas.orchestrator.targets import registry
from blocknas.solvers import brute_force_front
from tests.conftest import run_cli

CAP = 2000  # the default solver.max_points


def library(slots: int, variants: int, seed: int = 0) -> dict:
    """A Puzzle-format block library with random costs and KL scores (cheaper variants lose more)."""
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(slots):
        latency = rng.uniform(0.1, 2.0, variants)
        kl = np.maximum(0.0, 1.0 / (latency + 0.2) + rng.normal(0, 0.1, variants))
        layers.append(
            {
                "name": f"layer_{i}",
                "variants": [
                    {
                        "name": f"v{j}",
                        "stats": {
                            "latency_ms": round(float(latency[j]), 4),
                            "memory_mib": round(float(10 * latency[j] + 5), 3),
                        },
                        "metrics": {"kl_div": round(float(kl[j]), 4)},
                    }
                    for j in range(variants)
                ],
            }
        )
    return {"layers": layers}


@pytest.fixture
def phone(tmp_path, store_url):
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(library(5, 4)))
    store = PerformanceStore(store_url)
    registry.register(store, "phone", path, update=False)
    return store, registry.find(store, "phone")


def test_a_front_is_exact_and_solved_once_per_target_version(phone):
    store, entry = phone
    base = library_accuracy(entry)
    first = solve_target(store, base, entry, CAP)
    assert first.solved
    again = solve_target(store, base, entry, CAP)
    assert not again.solved and again.front.computed_at == first.front.computed_at
    table = with_target(base, entry)
    expected = brute_force_front(table, "latency_ms")
    assert [(round(p["cost"], 9), round(p["predicted_accuracy"], 9)) for p in first.front.points] == [
        (round(c, 9), round(a, 9)) for c, a in expected
    ]


def test_switch_answers_from_the_stored_front_as_a_fresh_solve_would(phone):
    store, entry = phone
    base = library_accuracy(entry)
    table = with_target(base, entry)
    solve_target(store, base, entry, CAP)
    for budget in np.linspace(table.min_cost("latency_ms"), 8.0, 9):
        result = switching.switch(store, base, "phone", float(budget), CAP)
        assert not result.solved
        fresh = best_by_solving(table, "latency_ms", float(budget))
        assert result.point["predicted_accuracy"] == pytest.approx(fresh["predicted_accuracy"], abs=1e-9)
        assert result.point["cost"] <= budget + 1e-9
    nothing = switching.switch(store, base, "phone", table.min_cost("latency_ms") - 0.01, CAP)
    assert nothing.point is None
    assert f"smallest feasible latency_ms cost is {table.min_cost('latency_ms'):g}" in nothing.infeasible


def test_a_front_stored_in_one_store_is_not_answered_from_for_another(tmp_path):
    """The in-process caches are per store: store B never sees a front that only store A holds."""
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(library(4, 3, seed=5)))
    a, b = (PerformanceStore(f"sqlite:///{tmp_path}/{n}.db") for n in ("a", "b"))
    for store in (a, b):
        registry.register(store, "phone", path, update=False)
    entry = registry.find(a, "phone")
    base = library_accuracy(entry)
    solve_target(a, base, entry, CAP)
    assert not switching.switch(a, base, "phone", 3.0, CAP).solved  # A answers from its stored front
    from_b = switching.switch(b, base, "phone", 3.0, CAP)
    assert from_b.solved and b.latest_front(base.experiment, "phone") is None


def test_correction_rescales_the_target_stores_a_new_version_and_resolves(phone):
    store, entry = phone
    base = library_accuracy(entry)
    before = switching.switch(store, base, "phone", 6.0, CAP)
    corrected = switching.correct(store, base, "phone", measured=3.0, predicted=1.5, budget=6.0, max_points=CAP)
    assert corrected.solved and corrected.version != before.version
    assert registry.find(store, "phone").version == corrected.version
    scaled = with_target(base, registry.find(store, "phone"))
    np.testing.assert_allclose(
        np.concatenate(scaled.costs["latency_ms"]), 2 * np.concatenate(with_target(base, entry).costs["latency_ms"])
    )
    fresh = best_by_solving(scaled, "latency_ms", 6.0)
    assert corrected.point["predicted_accuracy"] == pytest.approx(fresh["predicted_accuracy"], abs=1e-9)
    assert corrected.point["cost"] <= 6.0 + 1e-9


def test_a_library_within_budgets_gets_a_spread_front_that_switch_answers_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(fronts, "SPREAD_POINTS", 30)  # as the 100 stored by default, in a third of the time
    lib = library(20, 60, seed=3)  # 1,200 candidates: solved by cores; its complete front is too large to list
    memory = [max(v["stats"]["memory_mib"] for v in layer["variants"]) for layer in lib["layers"]]
    lib["budgets"] = {"memory_mib": round(0.5 * sum(memory), 3)}
    path = tmp_path / "llm.json"
    path.write_text(json.dumps(lib))
    store = PerformanceStore(f"sqlite:///{tmp_path}/perf.db")
    registry.register(store, "llm", path, update=False)
    entry = registry.find(store, "llm")
    assert entry.definition["budgets"] == lib["budgets"]
    base = library_accuracy(entry)
    points = solve_target(store, base, entry, CAP).front.points
    assert 10 <= len(points) <= 30 and all("optimal_up_to" in p for p in points)
    assert all(p["costs"]["memory_mib"] <= lib["budgets"]["memory_mib"] + 1e-9 for p in points)
    table = with_target(base, entry)
    inside = [(p["cost"] + p["optimal_up_to"]) / 2 for p in points[:-1:3]]  # each point's own range
    between = np.random.default_rng(1).uniform(points[0]["cost"], points[-1]["cost"], 6)
    for budget, covered in [*((b, True) for b in inside), *((b, None) for b in between)]:
        result = switching.switch(store, base, "llm", float(budget), CAP)
        fresh = best_by_solving(table, "latency_ms", float(budget), lib["budgets"])
        assert result.point["predicted_accuracy"] == pytest.approx(fresh["predicted_accuracy"], abs=1e-9)
        assert result.point["costs"]["memory_mib"] <= lib["budgets"]["memory_mib"] + 1e-9
        assert result.point["cost"] == result.point["costs"]["latency_ms"] <= budget + 1e-9  # solved or stored
        if covered:
            assert not result.solved, budget
        elif result.solved:  # what the solve proved answers every budget from the point's cost up to it
            below = (result.point["cost"] + budget) / 2
            again = switching.switch(store, base, "llm", below, CAP)
            assert not again.solved and again.point == result.point
            assert best_by_solving(table, "latency_ms", below, lib["budgets"])["predicted_accuracy"] == (
                pytest.approx(result.point["predicted_accuracy"], abs=1e-9)
            )
    below = switching.switch(store, base, "llm", points[0]["cost"] - 1e-3, CAP)
    assert below.point is None and not below.solved


def test_fronts_show_and_switch_cli(home, tmp_path):
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(library(4, 3, seed=1)))
    assert run_cli(home, "targets", "add", "edge", "--file", str(path)).returncode == 0
    shown = run_cli(home, "fronts", "show", "edge", "--json")
    assert shown.returncode == 0, shown.stderr
    front = json.loads(shown.stdout)
    assert front["solved_now"] and front["points"] and front["target_version"] and front["computed_at"]
    again = json.loads(run_cli(home, "fronts", "show", "edge", "--json").stdout)
    assert not again["solved_now"] and again["computed_at"] == front["computed_at"]
    budget = front["points"][len(front["points"]) // 2]["cost"]
    switched = json.loads(run_cli(home, "switch", "edge", "--budget", str(budget), "--json").stdout)
    assert switched["blocks"] == front["points"][len(front["points"]) // 2]["blocks"] and not switched["solved"]
    cheapest = front["points"][0]["cost"]
    nothing = run_cli(home, "switch", "edge", "--budget", str(cheapest / 2), "--json")
    assert nothing.returncode == 2 and nothing.stdout == "", nothing.stdout
    assert f"smallest feasible latency_ms cost is {cheapest:g}" in nothing.stderr, nothing.stderr
    bad = run_cli(home, "switch", "edge", "--budget", "1", "--measured", "2")
    assert bad.returncode == 2 and "needs both --measured and --predicted" in bad.stderr
    versions = run_cli(home, "targets", "show", "edge", "--json").stdout
    for measured, predicted, at in (("nan", "1", str(budget)), ("1", "inf", str(budget)), ("2", "1", "nan")):
        refused = run_cli(home, "switch", "edge", "--budget", at, "--measured", measured, "--predicted", predicted)
        assert refused.returncode == 2 and "finite" in refused.stderr, refused.stderr
    assert run_cli(home, "targets", "show", "edge", "--json").stdout == versions  # nothing stored
    corrected = json.loads(
        run_cli(
            home, "switch", "edge", "--budget", str(budget), "--measured", "1.1", "--predicted", "1.0", "--json"
        ).stdout
    )
    assert corrected["solved"] and corrected["target_version"] != switched["target_version"]


@pytest.mark.parametrize("seed", range(6))
def test_switch_answers_are_exact_with_costs_from_1e_minus_6_to_1e300(tmp_path, seed):
    """A registered library whose latencies span 1e-6 to 1e300 (sentinels of a device without an operator):
    every budget's answer, from the stored front, is the best network by enumeration."""
    import itertools
    import math

    rng = np.random.default_rng(seed)
    lib = library(3, 4, seed)
    for layer in lib["layers"]:
        for variant in layer["variants"]:
            exponent = rng.uniform(-6, 300) if rng.random() < 0.3 else rng.uniform(-1, 1)
            variant["stats"]["latency_ms"] = float(10.0**exponent)
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(lib))
    store = PerformanceStore(f"sqlite:///{tmp_path}/perf.db")
    registry.register(store, "wide", path, update=False)
    base = library_accuracy(registry.find(store, "wide"))
    networks = [
        (math.fsum(v["stats"]["latency_ms"] for v in chosen), -math.fsum(v["metrics"]["kl_div"] for v in chosen))
        for chosen in itertools.product(*(layer["variants"] for layer in lib["layers"]))
    ]
    for cost, _ in networks[:: max(1, len(networks) // 12)]:
        for budget in (cost, cost * 1.5):
            best = max(a for c, a in networks if c <= budget)
            answer = switching.switch(store, base, "wide", budget, CAP)
            assert answer.point is not None and answer.point["cost"] <= budget * (1 + 1e-9)
            assert answer.point["predicted_accuracy"] == pytest.approx(best, rel=1e-9, abs=1e-9), budget


def test_table_hashes_tell_apart_huge_costs_without_overflow():
    import warnings

    from blocknas.orchestrator.front_service import table_hash_of
    from blocknas.solvers import BlockTable

    def table(cost: float) -> BlockTable:
        return BlockTable(("s0",), (("a", "b"),), (np.array([0.1, 0.2]),), costs={"lat": (np.array([0.5, cost]),)})

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow in rounding 1e300 to 9 decimals was a warning
        hashes = {table_hash_of(table(c)) for c in (1e300, 2e300, 1.7e308, 0.7, 0.7 + 1e-12)}
    assert len(hashes) == 4  # 0.7 and 0.7 + 1e-12 round to one table; the huge costs stay apart
