"""``blocknas pick`` on a Puzzle library as it ships: Puzzle's dotted names, ranges, diverse solutions, JSON
output that stays JSON when the solver runs cores (a library of 1,000 candidates), answers equal to an
independent MIP."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from blocknas.orchestrator.deploy.fronts import library_accuracy, with_target
from blocknas.orchestrator.storage import PerformanceStore
from blocknas.orchestrator.targets import registry
from tests.conftest import run_cli
from tests.solvers.test_puzzle_shaped import ATTENTION, FFN, oracle


def library_file(path, layers: int = 40, seed: int = 0):
    """A library in Puzzle's shipped shape: layers x (attention x FFN) variants with sub-block stats."""
    rng = np.random.default_rng(seed)
    data = {}
    for i in range(layers):
        sensitivity, noop = rng.lognormal(0, 0.8), rng.uniform(100, 500)
        variants = {}
        for a_share, a_kl in ATTENTION:
            for f_share, f_kl in FFN:
                attention, ffn = 760 * a_share + rng.uniform(0, 3), 670 * f_share + rng.uniform(0, 3)
                variants[f"attention = {a_share:.0%}\t&&\tffn = {f_share:.0%}"] = {
                    "stats": {
                        "memory_mib": attention + ffn,
                        "runtime_ms": 0.46 * attention + 0.69 * ffn + 8,
                        "num_params": int(1.2e6 * (attention + ffn)),
                        "attention_memory_mib": attention,
                        "ffn_memory_mib": ffn,
                    },
                    "metrics": {
                        "kl_div": sum(
                            noop if k is None else sensitivity * k * rng.uniform(0.7, 1.3) for k in (a_kl, f_kl)
                        )
                    },
                }
        data[f"layer_{i}"] = variants
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def library(home, tmp_path):
    path = library_file(tmp_path / "block_library.json")
    assert run_cli(home, "targets", "add", "h100", "--file", str(path)).returncode == 0
    entry = registry.find(PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db"), "h100")
    table = with_target(library_accuracy(entry), entry)
    parent = {m: sum(float(c.max()) for c in table.costs[m]) for m in ("memory_mib", "runtime_ms", "num_params")}
    return home, table, parent


def _flat(per_slot) -> np.ndarray:
    return np.concatenate(per_slot)


def test_pick_equals_an_independent_mip_and_its_json_is_json(library):
    home, table, parent = library
    memory, runtime = 0.7 * parent["memory_mib"], 0.6 * parent["runtime_ms"]
    # a process of its own: HiGHS's banner, printed when a process first creates a solver, would go to stdout
    result = run_cli(
        home,
        "pick",
        "h100",
        f"--budget=stats.memory_mib={memory}",
        f"--budget=stats.runtime_ms={runtime}",
        "--json",
        subprocess_=True,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    (solution,) = out["solutions"]
    assert out["objective"] == "metrics.kl_div" and set(solution["blocks"]) == set(table.slots)
    assert solution["costs"]["memory_mib"] <= memory and solution["costs"]["runtime_ms"] <= runtime
    kl = -_flat(table.accuracy)
    best = oracle(table, kl, [(_flat(table.costs["memory_mib"]), memory), (_flat(table.costs["runtime_ms"]), runtime)])
    assert solution["objective_value"] == pytest.approx(kl[best].sum(), rel=1e-9)


def test_diverse_solutions_and_ranges(library):
    home, table, parent = library
    budgets = [
        f"--budget=stats.memory_mib={0.8 * parent['memory_mib']}",
        f"--budget=stats.runtime_ms={0.8 * parent['runtime_ms']}",
    ]
    one = json.loads(run_cli(home, "pick", "h100", *budgets, "--json").stdout)["solutions"][0]
    many = run_cli(home, "pick", "h100", *budgets, "--num-solutions", "3", "--minimal-diversity", "10", "--json")
    assert many.returncode == 0, many.stderr
    solutions = json.loads(many.stdout)["solutions"]
    assert len(solutions) == 3 and solutions[0]["objective_value"] == pytest.approx(one["objective_value"], rel=1e-9)
    values = [s["objective_value"] for s in solutions]
    assert values == sorted(values)  # each the best of what is left: never better than an earlier one
    for a in range(3):
        for b in range(a + 1, 3):
            differ = sum(solutions[a]["blocks"][s] != solutions[b]["blocks"][s] for s in table.slots)
            assert differ >= 10, (a, b, differ)
    # A range (Puzzle's (min, max)): keep at least 90 % of the parent's attention memory
    attention = _flat(table.costs["attention_memory_mib"])
    floor = 0.9 * sum(float(c.max()) for c in table.costs["attention_memory_mib"])
    ranged = run_cli(home, "pick", "h100", *budgets, f"--budget=stats.attention_memory_mib={floor}:", "--json")
    assert ranged.returncode == 0, ranged.stderr
    solution = json.loads(ranged.stdout)["solutions"][0]
    assert solution["costs"]["attention_memory_mib"] >= floor
    memory, runtime = (float(b.split("=")[-1]) for b in budgets)
    kl = -_flat(table.accuracy)
    best = oracle(
        table,
        kl,
        [(_flat(table.costs["memory_mib"]), memory), (_flat(table.costs["runtime_ms"]), runtime), (-attention, -floor)],
    )
    assert solution["objective_value"] == pytest.approx(kl[best].sum(), rel=1e-9)
    assert solution["objective_value"] >= one["objective_value"] * (1 - 1e-12)  # a bound never helps


def test_ctrl_c_stops_a_long_library_front_at_once(home, tmp_path):
    """A 100-point front of a 2,000-candidate library within a budget takes minutes here; SIGINT (Ctrl-C)
    must stop HiGHS mid-solve, not when the solve would have ended."""
    import signal
    import time

    def _cpu_seconds(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    from tests.conftest import kill_session, start_cli, wait_for

    path = library_file(tmp_path / "block_library.json", layers=80, seed=1)
    layers = json.loads(path.read_text()).values()
    parent = sum(max(v["stats"]["memory_mib"] for v in layer.values()) for layer in layers)
    added = run_cli(home, "targets", "add", "big", "--file", str(path), f"--budget=stats.memory_mib={0.7 * parent}")
    assert added.returncode == 0, added.stderr
    proc = start_cli(home, "fronts", "show", "big")
    try:
        # CPU time, not wall time (a busy machine): start-up takes about 2 s of it, then the solves begin
        wait_for(lambda: _cpu_seconds(proc.pid) > 8, 300, "the front's solves to be under way", proc)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=120)
        assert time.monotonic() - sent < 30, "Ctrl-C waited for the solve to end (it takes minutes)"
        assert proc.returncode == 130 and "interrupted; nothing was stored" in err, err
    finally:
        kill_session(proc.pid)


def test_pick_switch_and_fronts_show_answer_one_network_with_one_object(library):
    """The answer schema (docs/answers.md): the same network is the same JSON object in every command."""
    home, table, parent = library
    shown = run_cli(home, "fronts", "show", "h100", "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    metric = json.loads(shown.stdout)["metric"]  # the primary metric: what `switch --budget` bounds
    budget = 0.7 * parent[metric]
    picked = run_cli(home, "pick", "h100", f"--budget=stats.{metric}={budget}", "--json")
    switched = run_cli(home, "switch", "h100", "--budget", str(budget), "--json")
    for result in (picked, switched):
        assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(picked.stdout)["solutions"][0]["answer"]
    assert json.loads(switched.stdout)["answer"] == answer
    front = json.loads(shown.stdout)
    fitting = [p for p in front["points"] if p["cost"] <= budget]
    assert max(fitting, key=lambda p: p["predicted_accuracy"])["answer"] == answer
    assert answer["objective"]["name"] == "metrics.kl_div" and answer["objective"]["direction"] == "minimize"
    assert answer["objective"]["predicted"] == pytest.approx(
        json.loads(picked.stdout)["solutions"][0]["objective_value"]
    )
    assert answer["costs"]["memory_mib"]["unit"] == "MiB" and answer["costs"]["runtime_ms"]["unit"] == "ms"
    assert len(answer["choices"]) == 40
    assert front["cap"] == {"points": len(front["points"]), "max_points": 2000, "capped": len(front["points"]) >= 2000}


def test_a_bigger_is_better_library_is_maximised_as_brute_force_finds(home, tmp_path):
    """A library whose score is an accuracy (Puzzle's bigger_is_better, or --maximize) is maximised; the same
    file registered as a loss (the default) is minimised. Both against every network of the library."""
    import itertools

    from tests.orchestrator.test_switching import library as small_library

    data = small_library(4, 3, seed=2)
    budget = 0.6 * sum(max(v["stats"]["latency_ms"] for v in layer["variants"]) for layer in data["layers"])
    path = tmp_path / "accuracy.json"
    path.write_text(json.dumps({**data, "bigger_is_better": True}))
    plain = tmp_path / "loss.json"
    plain.write_text(json.dumps(data))
    for name, file, flags in (("acc", path, []), ("flag", plain, ["--maximize"]), ("loss", plain, [])):
        added = run_cli(home, "targets", "add", name, "--file", str(file), *flags)
        assert added.returncode == 0, added.stderr

    networks = []
    for picks in itertools.product(*(layer["variants"] for layer in data["layers"])):
        latency = sum(v["stats"]["latency_ms"] for v in picks)
        if latency <= budget:
            networks.append((sum(v["metrics"]["kl_div"] for v in picks), [v["name"] for v in picks]))
    for name, best in (("acc", max(networks)), ("flag", max(networks)), ("loss", min(networks))):
        result = run_cli(home, "pick", name, f"--budget=stats.latency_ms={budget}", "--json")
        assert result.returncode == 0, result.stderr
        (solution,) = json.loads(result.stdout)["solutions"]
        assert solution["objective_value"] == pytest.approx(best[0], rel=1e-9), name
        assert list(solution["blocks"].values()) == best[1], name
        assert solution["answer"]["objective"]["direction"] == ("minimize" if name == "loss" else "maximize")
    shown = json.loads(run_cli(home, "targets", "show", "acc", "--json").stdout)
    assert shown["direction"] == "maximize"
    wrong = run_cli(home, "targets", "add", "x", "--file", str(plain), "--maximize", "--minimize")
    assert wrong.returncode == 2


def test_one_network_within_the_fronts_metric_is_read_off_the_stored_front(library, monkeypatch):
    """``pick`` with the store: a budget on the front's metric alone is answered from the stored front (no
    solver loaded), with the network the MIP finds; a budget on another metric is still solved."""
    from blocknas.orchestrator.deploy.picking import pick
    from blocknas.solvers import pareto

    home, _, parent = library
    shown = run_cli(home, "fronts", "show", "h100", "--json")  # stores the front
    assert shown.returncode == 0, shown.stderr[-2000:]
    front = json.loads(shown.stdout)
    store = PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db")
    entry = registry.find(store, "h100")
    base, metric = library_accuracy(entry), front["metric"]
    low, high = front["points"][0]["cost"], front["points"][-1]["cost"]
    budgets = [{metric: low + share * (high - low)} for share in (0.1, 0.5, 0.9)]
    solved = [pick(base, entry, b)["solutions"] for b in budgets]

    def no_solver(*args, **kwargs):
        raise AssertionError("solver called")

    monkeypatch.setattr(pareto, "best_within_budgets", no_solver)
    for budget, expected in zip(budgets, solved, strict=True):
        (read,) = pick(base, entry, budget, store=store)["solutions"]
        assert read["blocks"] == expected[0]["blocks"]
        assert read["objective_value"] == pytest.approx(expected[0]["objective_value"], rel=1e-12)
    with pytest.raises(AssertionError, match="solver called"):  # memory is no budget of the stored front
        pick(base, entry, {**budgets[1], "memory_mib": 0.9 * parent["memory_mib"]}, store=store)
