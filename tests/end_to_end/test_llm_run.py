"""`blocknas run experiment=puzzle_tiny` (small): BLD + replace-one-block scoring as Ray block jobs, the real
table, MLflow and HiGHS, fronts of KL against parameters; a second run measures nothing."""

import itertools
import json

import pytest

from blocknas.orchestrator.storage import PerformanceStore
from blocknas.workers.llm.decoder import load_decoder
from blocknas.workers.llm.space import LlmSpace, sub_block_params
from tests.conftest import run_cli, summary_of

pytestmark = pytest.mark.slow

SMALL = (
    "experiment=puzzle_tiny",
    "cluster.num_cpus=2",
    "space.parent.layers=2",
    "space.parent.hidden=32",
    "space.parent.intermediate=64",
    "space.parent.steps=60",
    "space.parent.context=64",
    "scorer.steps=20",
    "scorer.context=64",
    "scorer.distill_windows=16",
    "scorer.score_windows=4",
    "space.attention=[attn_kv2,attn_kv1,attn_noop]",
    "space.ffn=[ffn_64,ffn_32,ffn_noop]",
    # two serving workloads, each a constraint of its own in the same solve
    "+targets.chat={kind: llm, metric: workload_ms, batch: 1, sequence: 32, generated: 8, repeats: 3}",
    "+targets.bulk={kind: llm, metric: workload_ms, batch: 4, sequence: 16, generated: 4, repeats: 3}",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    first = run_cli(home, "run", *SMALL)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli(home, "run", *SMALL)
    assert second.returncode == 0, second.stderr[-3000:]
    return home, first, second


def test_every_sub_block_is_distilled_and_scored_once(runs):
    home, first, second = runs
    summary = summary_of(first)
    assert (summary["blocks_total"], summary["blocks_trained"]) == (12, 12)
    assert (summary_of(second)["blocks_trained"], summary_of(second)["blocks_cached"]) == (0, 12)
    rows = {r.block: r for r in PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").block_scores()}
    assert len(rows) == 12 and all(r.status == "done" for r in rows.values())
    assert {r.device for r in rows.values()} == {"cpu"}  # scorer.device: where BLD and scoring ran
    for layer in range(2):
        attention, ffn = (f"layer_{layer}.attention:", f"layer_{layer}.ffn:")
        assert rows[attention + "attn_kv2"].accuracy == 0.0 and rows[ffn + "ffn_64"].accuracy == 0.0  # the parent
        # accuracy is minus the KL against the parent: a no-op loses most, a distilled half-width FFN less
        assert rows[ffn + "ffn_noop"].accuracy < rows[ffn + "ffn_32"].accuracy < 0
        assert rows[attention + "attn_noop"].accuracy < rows[attention + "attn_kv1"].accuracy < 0
        assert rows[ffn + "ffn_noop"].loss > rows[ffn + "ffn_64"].loss  # the swapped parent's LM loss


def test_the_params_front_is_exact_over_the_summed_block_kl(runs):
    home, first, _ = runs
    summary = summary_of(first)
    rows = {r.block: r.accuracy for r in PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").block_scores()}
    space = LlmSpace.from_dict(
        {
            "kind": "llm",
            "parent": {"layers": 2, "hidden": 32, "intermediate": 64},
            "attention": ["attn_kv2", "attn_kv1", "attn_noop"],
            "ffn": ["ffn_64", "ffn_32", "ffn_noop"],
        }
    )
    networks = []
    for choices in itertools.product(*(slot.choices for slot in space.slots)):
        kl = sum(rows[slot.key(c)] for slot, c in zip(space.slots, choices, strict=True))
        params = space.fixed_cost("params") + sum(sub_block_params(space.config, c) for c in choices)
        networks.append((params, kl))
    front = summary["targets"]["params"]["pareto"]
    assert front[-1]["predicted_accuracy"] == pytest.approx(0.0, abs=1e-12)  # the parent, on top
    for point in front:  # nothing cheaper is better: every point is non-dominated among all 3^4 networks
        assert not any(p <= point["cost"] and kl > point["predicted_accuracy"] + 1e-12 for p, kl in networks)
        assert point["cost"] in {p for p, _ in networks}


def test_the_experiments_blocks_export_as_a_puzzle_library_that_reads_back(runs):
    home, first, _ = runs
    path = home / "library.json"
    exported = run_cli(home, "export-library", str(path), *SMALL)
    assert exported.returncode == 0, exported.stderr[-2000:]
    library = json.loads(path.read_text())
    assert list(library) == ["layer_0", "layer_1"] and len(library["layer_0"]) == 9
    assert library["layer_1"]["attn_kv2+ffn_64"]["metrics"]["kl_div"] == 0.0  # the parent's own layer
    assert run_cli(home, "targets", "add", "tiny_lib", "--file", str(path)).returncode == 0
    front = summary_of(first)["targets"]["params"]["pareto"]
    fixed = front[0]["cost"] - sum(min(v["stats"]["params"] for v in layer.values()) for layer in library.values())
    budget = 0.6 * (front[-1]["cost"] - fixed)
    picked = run_cli(home, "pick", "tiny_lib", f"--budget=stats.params={budget}", "--json", subprocess_=True)
    assert picked.returncode == 0, picked.stderr[-2000:]
    (solution,) = json.loads(picked.stdout)["solutions"]
    best = max((p for p in front if p["cost"] - fixed <= budget), key=lambda p: p["predicted_accuracy"])
    assert solution["objective_value"] == pytest.approx(-best["predicted_accuracy"], rel=1e-9, abs=1e-12)
    assert [solution["blocks"][f"layer_{i}"] for i in range(2)] == [
        f"{best['blocks'][2 * i].split(':')[1]}+{best['blocks'][2 * i + 1].split(':')[1]}" for i in range(2)
    ]


def test_the_best_child_within_budgets_is_saved_and_loads_back(runs):
    home, first, _ = runs
    directory = home / "child"
    saved = run_cli(
        home,
        "export-child",
        str(directory),
        "--format",
        "blocknas",
        "--global-steps",
        "20",
        *SMALL,
        "solver.budgets.params=20000",
    )
    assert saved.returncode == 0, saved.stderr[-2000:]
    description = json.loads((directory / "blocknas.json").read_text())
    verified = description["verification"]  # held out: the eval split; the child saved is the distilled one
    assert verified["parent"]["kl_div"] == pytest.approx(0, abs=1e-6) and verified["assembled"]["kl_div"] > 0
    assert verified["globally_distilled"]["kl_div"] < verified["assembled"]["kl_div"]
    assert verified["assembled"]["params"] == verified["globally_distilled"]["params"] < verified["parent"]["params"]
    assert len(description["global_distillation"]["curve"]) == 20 and "global distillation" in saved.stderr
    front = summary_of(first)["targets"]["params"]["pareto"]
    best = max((p for p in front if p["cost"] <= 20000), key=lambda p: p["predicted_accuracy"])
    assert description["blocks"] == best["blocks"]
    assert description["predicted_kl"] == pytest.approx(-best["predicted_accuracy"], abs=1e-12)
    child = load_decoder(directory)
    assert sum(p.numel() for p in child.parameters()) == description["costs"]["params"] <= 20000
    again = run_cli(home, "export-child", str(directory), *SMALL, "solver.budgets.params=20000")
    assert again.returncode == 2 and "not empty" in again.stderr
    unbounded = run_cli(home, "export-child", str(home / "other"), *SMALL)
    assert unbounded.returncode == 2 and "solver.budgets" in unbounded.stderr and not (home / "other").exists()


def test_memory_with_the_kv_cache_and_measured_prefill_are_targets(runs):
    _, first, _ = runs
    targets = summary_of(first)["targets"]
    assert {"params", "flops", "memory", "prefill"} <= set(targets)
    parent_params = targets["params"]["pareto"][-1]["cost"]
    kv_cache = 2 * 2 * 128 * 2 * 8  # layers x (K and V) x sequence x KV heads x head dim, batch 1
    assert targets["memory"]["pareto"][-1]["cost"] == pytest.approx((parent_params + kv_cache) * 4 / 2**20)
    prefill = targets["prefill"]["pareto"]
    assert prefill[-1]["cost"] > prefill[0]["cost"] > 0  # timed here; the cheapest keeps only embeddings and head
    for workload in ("chat", "bulk"):  # a prefill and every generated token, timed here
        front = targets[workload]["pareto"]
        assert front[-1]["cost"] > front[0]["cost"] > 0 and front[-1]["predicted_accuracy"] == pytest.approx(0.0)


def test_the_refine_loop_verifies_children_assembled_from_the_stored_blocks(runs, monkeypatch):
    home, _, _ = runs
    refined = run_cli(home, "run", *SMALL, "refine.rounds=2", "solver.budgets.params=20000")
    assert refined.returncode == 0, refined.stderr[-3000:]
    summary = summary_of(refined)
    assert summary["blocks_trained"] == 0 and summary["refine"]["evaluations"] >= 2
    pick = summary["refine"]["picks"][0]
    assert pick["costs"]["params"] <= 20000 and pick["verified_accuracy"] < 0
    # the same child, assembled here from the blocks the run stored (safetensors), measures the same
    from blocknas.orchestrator.config import load_settings
    from blocknas.workers.llm.scorer import assemble_child, evaluate

    monkeypatch.setenv("BLOCKNAS_HOME", str(home))
    settings = load_settings(list(SMALL))
    stored = sorted((home / ".blocknas" / "llm_blocks").glob("*.safetensors"))
    assert len(stored) == 8  # every non-parent variant of both layers
    choices = tuple(block.split(":", 1)[1] for block in pick["blocks"])
    assert evaluate(settings.space, choices, settings.scorer.settings)["accuracy"] == pytest.approx(
        pick["verified_accuracy"], rel=1e-4
    )
    child = assemble_child(settings.space, choices, settings.scorer.settings)
    assert [v.name for v in child.variants] == [f"{a}+{f}" for a, f in zip(choices[::2], choices[1::2], strict=True)]
    assert sorted((home / ".blocknas" / "llm_blocks").glob("*.safetensors")) == stored  # nothing distilled again


def test_the_bld_scorer_needs_the_base_estimator_and_an_llm_space(home):
    wrong = run_cli(home, "run", *SMALL, "scorer.estimator=avg_context")
    assert wrong.returncode == 2 and "scorer.estimator=base" in wrong.stderr
    mismatched = run_cli(home, "run", "scorer=bld", "cluster.num_cpus=2")
    assert mismatched.returncode == 2 and "space.kind llm" in mismatched.stderr
    llm_target = run_cli(home, "run", "experiment=smoke", "+targets.mem={kind: llm, metric: memory_mib}")
    assert llm_target.returncode == 2 and "works on space.kind llm" in llm_target.stderr
    not_llm = run_cli(home, "export-library", str(home / "x.json"), "experiment=smoke")
    assert not_llm.returncode == 2 and "space.kind=llm" in not_llm.stderr and not (home / "x.json").exists()
    bad_variant = run_cli(home, "run", "experiment=puzzle_tiny", "space.attention=[attn_kv2,attn_kv3]")
    assert bad_variant.returncode == 2 and "do not split" in bad_variant.stderr
