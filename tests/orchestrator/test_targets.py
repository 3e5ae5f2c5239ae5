"""The hardware-target registry: every file format imported, bad files rejected whole, versions kept."""

from __future__ import annotations

import json

import pytest

from blocknas.orchestrator.storage import PerformanceStore
from blocknas.orchestrator.targets import registry
from blocknas.orchestrator.targets.files import TargetFileError, read_target_file
from tests.conftest import run_cli

BLOCK_CSV = """slot,block,metric,value
fixed,,latency_ms,0.5
s0,skip,latency_ms,0.0
s0,conv_k3,latency_ms,0.4
s1,conv_k3,latency_ms,0.9
s1,sep_k3,latency_ms,0.3
"""

BLOCK_YAML = """kind: table
budgets: {latency_ms: 1.5}
costs:
  latency_ms:
    fixed: 0.5
    s0: {skip: 0.0, conv_k3: 0.4}
    s1: {conv_k3: 0.9, sep_k3: 0.3}
"""

NETWORK_CSV = """architecture,metric,value
s0:skip s1:conv_k3,latency_ms,1.4
s0:conv_k3 s1:conv_k3,latency_ms,1.8
s0:skip s1:sep_k3,latency_ms,0.8
"""

OFA_YAML = """Conv-input:224x224x3-output:112x112x32: {count: 10, mean: 0.9, std: 0.01}
expanded_conv-input:112x112x32-output:56x56x24-expand:3-kernel:3-stride:2-idskip:0: {mean: 1.2}
expanded_conv-input:112x112x32-output:56x56x24-expand:6-kernel:5-stride:2-idskip:0: {mean: 2.5}
expanded_conv-input:56x56x24-output:56x56x24-expand:3-kernel:3-stride:1-idskip:1: {mean: 0.7}
expanded_conv-input:56x56x24-output:56x56x24-expand:6-kernel:7-stride:1-idskip:1: {mean: 1.6}
Logits-input:7x7x1280-output:1000: {mean: 0.1}
"""

PUZZLE_JSON = {
    "layers": [
        {
            "name": "block_0",
            "variants": [
                {
                    "name": "attn_full+ffn_100",
                    "stats": {"latency_ms": 2.0, "memory_mib": 300},
                    "metrics": {"kl_div": 0.0},
                },
                {
                    "name": "attn_none+ffn_50",
                    "stats": {"latency_ms": 0.6, "memory_mib": 120},
                    "metrics": {"kl_div": 0.4},
                },
            ],
        },
        {
            "name": "block_1",
            "variants": [
                {
                    "name": "attn_full+ffn_100",
                    "stats": {"latency_ms": 2.0, "memory_mib": 300},
                    "metrics": {"kl_div": 0.0},
                },
                {
                    "name": "attn_linear+ffn_25",
                    "stats": {"latency_ms": 0.4, "memory_mib": 90},
                    "metrics": {"kl_div": 0.9},
                },
            ],
        },
    ]
}


# MathNAS's own tables: block costs relative to the base network (here conv_k3 at both slots), so signed.
SIGNED_CSV = """slot,block,metric,value
fixed,,latency_ms,1.8
s0,skip,latency_ms,-0.4
s0,conv_k3,latency_ms,0.0
s1,conv_k3,latency_ms,0.0
s1,sep_k3,latency_ms,-0.6
"""
# Blocks named by their keys, as `blocknas blocks` prints them.
KEYED_CSV = BLOCK_CSV.replace("s0,skip", "s0,s0:skip").replace("s1,sep_k3", "s1,s1:sep_k3")


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_per_block_csv_and_yaml_give_the_same_costs(tmp_path):
    from_csv = read_target_file(_write(tmp_path, "t.csv", BLOCK_CSV))
    from_yaml = read_target_file(_write(tmp_path, "t.yaml", BLOCK_YAML))
    assert (
        from_csv.costs
        == from_yaml.costs
        == {
            "latency_ms": {
                "fixed": 0.5,
                "blocks": {"s0": {"skip": 0.0, "conv_k3": 0.4}, "s1": {"conv_k3": 0.9, "sep_k3": 0.3}},
            }
        }
    )
    assert from_yaml.budgets == {"latency_ms": 1.5} and from_csv.kind == from_yaml.kind == "table"


def test_signed_and_keyed_per_block_files_give_the_network_totals_of_the_plain_one(tmp_path):
    plain = read_target_file(_write(tmp_path, "t.csv", BLOCK_CSV)).costs["latency_ms"]
    keyed = read_target_file(_write(tmp_path, "k.csv", KEYED_CSV)).costs["latency_ms"]
    signed = read_target_file(_write(tmp_path, "s.csv", SIGNED_CSV)).costs["latency_ms"]
    assert keyed == plain

    def total(costs, s0, s1):
        return costs["fixed"] + costs["blocks"]["s0"][s0] + costs["blocks"]["s1"][s1]

    for s0 in ("skip", "conv_k3"):
        for s1 in ("conv_k3", "sep_k3"):
            assert total(signed, s0, s1) == pytest.approx(total(plain, s0, s1))


def test_per_network_csv_is_converted_by_substitution_around_the_base_network(tmp_path):
    data = read_target_file(_write(tmp_path, "n.csv", NETWORK_CSV))
    table = data.costs["latency_ms"]
    # base s0:skip s1:conv_k3 (1.4): every other network differs from it in one slot
    assert table["fixed"] == 1.4
    assert table["blocks"] == {
        "s0": {"skip": 0.0, "conv_k3": pytest.approx(0.4)},
        "s1": {"conv_k3": 0.0, "sep_k3": pytest.approx(-0.6)},
    }


def test_ofa_lookup_groups_layers_into_slots_and_single_choices_into_the_fixed_cost(tmp_path):
    data = read_target_file(_write(tmp_path, "ofa.yaml", OFA_YAML))
    table = data.costs["latency_ms"]
    assert table["fixed"] == pytest.approx(1.0)  # stem 0.9 + logits 0.1
    assert table["blocks"] == {
        "112x112x32>56x56x24/s2": {
            "expanded_conv-expand3-idskip0-kernel3": 1.2,
            "expanded_conv-expand6-idskip0-kernel5": 2.5,
        },
        "56x56x24>56x56x24/s1": {
            "expanded_conv-expand3-idskip1-kernel3": 0.7,
            "expanded_conv-expand6-idskip1-kernel7": 1.6,
        },
    }


def test_puzzle_library_brings_costs_per_metric_and_block_scores(tmp_path):
    data = read_target_file(_write(tmp_path, "lib.json", json.dumps(PUZZLE_JSON)))
    assert data.metrics == ("latency_ms", "memory_mib")
    assert data.costs["memory_mib"]["blocks"]["block_1"] == {"attn_full+ffn_100": 300.0, "attn_linear+ffn_25": 90.0}
    assert data.scores["kl_div"]["block_0"] == {"attn_full+ffn_100": 0.0, "attn_none+ffn_50": 0.4}


def test_a_measured_file_target_names_its_device_only_when_it_is_a_gpu(tmp_path):
    on_cpu, default, on_gpu = (
        read_target_file(_write(tmp_path, f"m{i}.yaml", f"kind: measured\nrepeats: 5\n{extra}"))
        for i, extra in enumerate(("device: cpu\n", "", "device: cuda\n"))
    )
    # the run's measured kind's settings and defaults (warmup 10); a CPU target names no device
    assert on_cpu.settings == default.settings == {"warmup": 10, "repeats": 5, "threads": 1}
    assert on_gpu.settings == default.settings | {"device": "cuda"}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.csv", BLOCK_CSV + "s1,mbconv,latency_ms,fast\n", r"bad.csv:7: latency_ms: 'fast' is not a number"),
        ("bad.csv", BLOCK_CSV.replace("latency_ms,0.3", "latency_sec,0.3"), r"bad.csv:6: unknown metric 'latency_sec'"),
        ("bad.csv", BLOCK_CSV + "s1,sep_k3,latency_ms,0.2\n", r"bad.csv:7: latency_ms of s1:sep_k3 is given twice"),
        ("bad.csv", "slot,block,value\ns0,a,1\n", r"bad.csv:1: header 'slot,block,value'"),
        ("bad.csv", BLOCK_CSV + "s1,sep_k3,energy_mj,2\n", r"metrics latency_ms and energy_mj cover different blocks"),
        (
            "bad.yaml",
            BLOCK_YAML.replace("conv_k3: 0.9", "conv_k3: -0.9"),
            r"latency_ms: the cheapest network would cost -0.4 .*a network's total may not",
        ),
        (
            "bad.yaml",
            BLOCK_YAML.replace("budgets: {latency_ms: 1.5}", "budgets: {latency_ms: -1}"),
            r"bad.yaml:2: budgets.latency_ms: -1 must be a finite number >= 0",
        ),
        ("bad.yaml", "kind: table\ncosts: [1, 2\n", r"bad.yaml:\d+: not valid YAML"),
        ("bad.yaml", BLOCK_YAML.replace("kind: table", "kind: guess"), r"bad.yaml:1: kind must be one of"),
        ("bad.csv", "architecture,metric,value\ns0:a s1:b,latency_ms,1\ns0:c s1:d,latency_ms,2\n", r"no base network"),
        (
            "bad.json",
            '{"layers": [{"name": "b0", "variants": [{"name": "v", "stats": {"latency": "fast"}}]}]}',
            r"b0.'v'.stats.latency: 'fast' is not a number",
        ),
        (
            "bad.json",
            '{"layer_0": {"v": {"stats": {"memory_mib": 1}}}, "layer_1": {"v": {"metrics": {"kl_div": 0}}}}',
            r"layer_1.'v': expected",
        ),
        ("bad.txt", "x", r"unknown file type '.txt'"),
        ("bad.yaml", "kind: measured\nrepeats: 5\ndevice: gpu\n", r"bad.yaml:3: device must be cpu or cuda, got 'gpu'"),
        (
            "bad.csv",
            BLOCK_CSV.replace("fixed,,latency_ms,0.5\n", "fixed,,latency_ms,0.5\nfixed,,latency_ms,2.0\n"),
            r"bad.csv:3: the fixed cost of latency_ms is given twice",
        ),
    ],
)
def test_bad_files_are_rejected_naming_the_line_and_the_problem(tmp_path, name, text, message):
    with pytest.raises(TargetFileError, match=message):
        read_target_file(_write(tmp_path, name, text))


BOMB = (
    "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    + "kind: *i\n"
)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("garbage.csv", bytes(range(128, 256)) * 4, r"not UTF-8 text \(byte 0\)"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("bomb.yaml", BOMB.encode(), r"line 2: aliases \(\*name\) are not supported"),
    ],
)
def test_hostile_files_are_refused_quickly_with_a_short_message(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TargetFileError, match=message) as refused:
        read_target_file(path)
    assert len(str(refused.value)) < 2000


def test_a_device_or_directory_is_not_read_and_a_bom_is_accepted(tmp_path):
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    (tmp_path / "folder.yaml").mkdir()
    for name in ("zero.csv", "folder.yaml"):
        with pytest.raises(TargetFileError, match="not a regular file"):
            read_target_file(tmp_path / name)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + BLOCK_CSV.encode())
    assert read_target_file(bom).costs == read_target_file(_write(tmp_path, "t.csv", BLOCK_CSV)).costs


def test_registry_versions_are_content_hashes_and_a_bad_update_keeps_the_old_version(store_url, tmp_path):
    store = PerformanceStore(store_url)
    added = registry.register(store, "phone", _write(tmp_path, "t.csv", BLOCK_CSV), update=False)
    same = registry.register(
        store, "phone", _write(tmp_path, "t.yaml", BLOCK_YAML.replace("budgets: {latency_ms: 1.5}\n", "")), update=True
    )
    assert same["version"] == added["version"] and not same["changed"], "same content, same version"
    with pytest.raises(registry.TargetRegistryError, match="exists"):
        registry.register(store, "phone", _write(tmp_path, "t.csv", BLOCK_CSV), update=False)
    with pytest.raises(TargetFileError):
        registry.register(store, "phone", _write(tmp_path, "bad.csv", BLOCK_CSV + "s9,x,latency_ms,?\n"), update=True)
    assert registry.find(store, "phone").version == added["version"]
    changed = registry.register(store, "phone", _write(tmp_path, "t2.csv", BLOCK_CSV.replace("0.9", "1.1")), True)
    assert changed["changed"] and changed["previous_version"] == added["version"]
    assert registry.find(store, "phone").definition["costs"]["latency_ms"]["blocks"]["s1"]["conv_k3"] == 1.1
    assert registry.remove(store, "phone") == changed["version"]
    with pytest.raises(registry.TargetRegistryError, match="no hardware target named 'phone'"):
        registry.find(store, "phone")


def test_targets_cli_add_list_show_update_remove_with_json_and_exit_codes(home, tmp_path):
    lib = _write(tmp_path, "lib.json", json.dumps(PUZZLE_JSON))
    added = run_cli(home, "targets", "add", "a100", "--file", str(lib), "--json")
    assert added.returncode == 0, added.stderr
    version = json.loads(added.stdout)["version"]
    listed = json.loads(run_cli(home, "targets", "list", "--json").stdout)
    assert [(t["name"], t["version"], t["slots"], t["blocks"]) for t in listed] == [("a100", version, 2, 4)]
    shown = json.loads(run_cli(home, "targets", "show", "a100", "--json").stdout)
    assert shown["scores"]["kl_div"]["block_1"]["attn_linear+ffn_25"] == 0.9

    bad = run_cli(home, "targets", "update", "a100", "--file", str(_write(tmp_path, "bad.json", "{")))
    assert bad.returncode == 2 and "bad.json:1: not valid JSON" in bad.stderr
    assert json.loads(run_cli(home, "targets", "show", "a100", "--json").stdout)["version"] == version
    missing = run_cli(home, "targets", "remove", "nope")
    assert missing.returncode == 2 and "no hardware target named 'nope'" in missing.stderr
    removed = run_cli(home, "targets", "remove", "a100")
    assert removed.returncode == 0 and "removed a100" in removed.stdout
    assert "no hardware targets registered" in run_cli(home, "targets", "list").stdout


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("t.csv", BLOCK_CSV),
        ("t.yaml", BLOCK_YAML),
        ("n.csv", NETWORK_CSV),
        ("ofa.yaml", OFA_YAML),
        ("lib.json", json.dumps(PUZZLE_JSON)),
        ("signed.csv", SIGNED_CSV),
        ("keyed.csv", KEYED_CSV),
    ],
)
def test_every_format_is_solved_exactly_once_registered(tmp_path, name, text):
    import numpy as np

    from blocknas.orchestrator.deploy.fronts import AccuracyTable, solve_target, with_target
    from blocknas.solvers import brute_force_front

    store = PerformanceStore(f"sqlite:///{tmp_path}/perf.db")
    registry.register(store, "device", _write(tmp_path, name, text), update=False)
    entry = registry.find(store, "device")
    blocks = next(iter(entry.definition["costs"].values()))["blocks"]
    rng = np.random.default_rng(0)
    base = AccuracyTable(
        "exp",
        tuple(blocks),
        tuple(tuple(b) for b in blocks.values()),
        tuple(rng.normal(0, 1, len(b)) for b in blocks.values()),
        70.0,
    )
    solved = solve_target(store, base, entry, max_points=2000)
    metric = entry.definition["metrics"][0]
    expected = brute_force_front(with_target(base, entry), metric)
    assert [(round(p["cost"], 9), round(p["predicted_accuracy"], 9)) for p in solved.front.points] == [
        (round(c, 9), round(a, 9)) for c, a in expected
    ]


# Puzzle's block library as it ships (NVlabs/puzzle, examples/data/*/block_library.json): layer -> variant
# description (tab-separated sub-blocks) -> stats (costs, per sub-block too) and metrics (scores).
def _variant(attention: str, ffn: str, memory: float, runtime: float, kl: float) -> tuple[str, dict]:
    return f"attention = {attention}\t&&\tffn = {ffn}", {
        "stats": {
            "num_kv_heads": 8 if attention != "no_op" else 0,
            "memory_mib": memory,
            "runtime_ms": runtime,
            "num_params": int(memory * 6e5),
            "attention_memory_mib": memory * 0.5,
            "ffn_memory_mib": memory * 0.5,
        },
        "metrics": {"kl_div": kl, "lm_loss": 1.64 + kl},
    }


REAL_PUZZLE = {
    f"layer_{i}": dict(
        [
            _variant("8 kv heads (parent * 100%)", "intermediate size 29e3 (parent * 100%)", 1437.1, 817.0, 0.0),
            _variant(
                "8 kv heads (parent * 100%)", "intermediate size 14e3 (parent * 50%)", 1101.1, 580.2, 0.06 + i / 100
            ),
            _variant("no_op", "intermediate size 14e3 (parent * 50%)", 336.0, 226.3, 0.9 + i / 50),
            _variant("no_op", "no_op", 0.0, 0.0, 400.0 + i),
        ]
    )
    for i in range(3)
}


def test_puzzle_library_as_it_ships_keeps_names_and_every_stat(tmp_path):
    data = read_target_file(_write(tmp_path, "block_library.json", json.dumps(REAL_PUZZLE)))
    assert data.metrics[:2] == ("runtime_ms", "memory_mib")  # runtime first: the front's default metric
    assert {"num_params", "attention_memory_mib", "ffn_memory_mib", "num_kv_heads"} <= set(data.metrics)
    variant = "attention = no_op\t&&\tffn = no_op"
    assert data.costs["memory_mib"]["blocks"]["layer_2"][variant] == 0.0
    assert data.scores["kl_div"]["layer_1"][variant] == 401.0 and set(data.scores) == {"kl_div", "lm_loss"}


def test_puzzle_names_choose_metric_objective_and_budgets_and_typos_are_named(tmp_path, store_url):
    path = _write(tmp_path, "block_library.json", json.dumps(REAL_PUZZLE))
    store = PerformanceStore(store_url)
    out = registry.register(
        store,
        "h100",
        path,
        update=False,
        metric="stats.memory_mib",
        objective="metrics.lm_loss",
        budgets={"stats.runtime_ms": 2000.0, "stats.num_params": [1e8, None]},
    )
    entry = registry.find(store, "h100")
    assert out["metrics"][0] == entry.definition["metrics"][0] == "memory_mib"
    assert entry.definition["objective"] == "lm_loss"
    assert entry.definition["budgets"] == {"runtime_ms": 2000.0, "num_params": [1e8, None]}
    with pytest.raises(TargetFileError, match=r"stats.memory_mb: no such stat.*did you mean 'memory_mib'"):
        registry.register(store, "x", path, update=False, metric="stats.memory_mb")
    with pytest.raises(TargetFileError, match=r"metrics.kl: no such score.*metrics.kl_div, metrics.lm_loss"):
        registry.register(store, "x", path, update=False, objective="metrics.kl")
    assert [e.name for e in store.registered_targets()] == ["h100"]  # nothing stored by the refused ones


def test_a_file_that_misses_a_block_and_misspells_another_is_refused_at_add_naming_both(home, tmp_path):
    """Checked against the experiment's space when one is given: every missing block and every row that is
    no block of the space, at once, with near misses; nothing stored. Without it, the file's own slots."""
    typo = BLOCK_CSV.replace("s1,sep_k3,latency_ms,0.3", "s1,sep_k_3,latency_ms,0.3").replace(
        "s0,skip,latency_ms,0.0\n", ""
    )
    path = _write(tmp_path, "typo.csv", typo)
    refused = run_cli(home, "targets", "add", "phone", "--file", str(path), "experiment=smoke")
    assert refused.returncode == 2, refused.stderr
    for named in ("no latency_ms for", "s0:skip", "s1:sep_k3", "s1:sep_k_3 (did you mean 'sep_k3'?)"):
        assert named in refused.stderr, refused.stderr
    assert "no hardware targets registered" in run_cli(home, "targets", "list").stdout

    added = run_cli(home, "targets", "add", "phone", "--file", str(path))  # no experiment: its own slots
    assert added.returncode == 0, added.stderr
    import numpy as np

    from blocknas.orchestrator.config import load_settings
    from blocknas.orchestrator.deploy.fronts import AccuracyTable, TargetMismatchError, with_target

    space = load_settings(["experiment=smoke"]).space
    slots, choices = tuple(s.name for s in space.slots), tuple(s.choices for s in space.slots)
    base = AccuracyTable("smoke", slots, choices, tuple(np.zeros(len(c)) for c in choices), 0.0)
    entry = registry.find(PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db"), "phone")
    with pytest.raises(TargetMismatchError) as solved:  # solved on the space: the same list, at once
        with_target(base, entry)
    assert "s0:skip" in str(solved.value) and "s1:sep_k_3 (did you mean 'sep_k3'?)" in str(solved.value)


def test_an_infinite_budget_is_no_budget(home, tmp_path):
    path = _write(tmp_path, "t.csv", BLOCK_CSV)
    added = run_cli(home, "targets", "add", "phone", "--file", str(path), "--budget", "latency_ms=inf", "--json")
    assert added.returncode == 0, added.stderr
    shown = json.loads(run_cli(home, "targets", "show", "phone", "--json").stdout)
    assert not shown.get("budgets")
    for bad, message in (("latency_ms=-inf", "no network fits it"), ("latency_ms=nan", "inf for no limit")):
        refused = run_cli(home, "targets", "update", "phone", "--file", str(path), "--budget", bad)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
