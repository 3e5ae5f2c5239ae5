"""Puzzle on your own language model: `blocknas run space=llm_hf` on a Qwen3 folder saved by transformers,
distilled and scored on a folder of your own JSON-lines text, through real Ray, the table, MLflow and
HiGHS; bad models and bad text are refused with exit 2 before anything is stored."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("transformers", reason="parents from a folder need the llm extra: pip install '.[llm]'")

from blocknas.orchestrator.storage import PerformanceStore  # noqa: E402
from blocknas.workers.llm.text import stdlib_files  # noqa: E402
from tests.conftest import run_cli, summary_of  # noqa: E402
from tests.hf_models import COMMON, family_configs, save_model, save_tokenizer  # noqa: E402

pytestmark = pytest.mark.slow


def _args(model, text) -> tuple[str, ...]:
    return (
        "experiment=puzzle_tiny",
        "space=llm_hf",
        f"space.parent.path={model}",
        "space.attention=[attn_kv2,attn_kv1,attn_noop]",
        "space.ffn=[ffn_96,ffn_48,ffn_noop]",
        "scorer.text.kind=jsonl",
        f"scorer.text.path={text}",
        "scorer.text.field=body",
        "scorer.steps=10",
        "scorer.context=32",
        "scorer.distill_windows=16",
        "scorer.score_windows=4",
        "cluster.num_cpus=2",
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A Qwen3 parent (q/k norms, its own head size) with its tokenizer, and a folder of JSON-lines text."""
    root = tmp_path_factory.mktemp("own")
    model = save_model(family_configs()["qwen3"], root / "qwen3")
    save_tokenizer(model)
    text = root / "text"
    text.mkdir()
    for part in range(2):
        with (text / f"part{part}.jsonl").open("w") as out:
            for path in stdlib_files()[200 * part : 200 * part + 200]:
                body = path.read_text(encoding="utf-8", errors="replace")[:1500]
                out.write(json.dumps({"id": path.name, "body": body}) + "\n")
    return root, model, text


def test_a_run_on_your_own_model_and_text_distils_and_solves_every_block(project):
    root, model, text = project
    home = root / "home"
    home.mkdir()
    result = run_cli(home, "run", *_args(model, text))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(result)
    assert (summary["blocks_total"], summary["blocks_trained"]) == (12, 12)
    rows = {r.block: r for r in PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").block_scores()}
    for layer in range(COMMON["num_hidden_layers"]):
        attention, ffn = f"layer_{layer}.attention:", f"layer_{layer}.ffn:"
        assert rows[attention + "attn_kv2"].accuracy == 0.0 and rows[ffn + "ffn_96"].accuracy == 0.0  # the parent
        assert rows[ffn + "ffn_noop"].accuracy < rows[ffn + "ffn_48"].accuracy < 0
        assert rows[attention + "attn_noop"].accuracy < 0
    assert summary["targets"]["params"]["pareto"][-1]["predicted_accuracy"] == pytest.approx(0.0, abs=1e-12)
    # other text is other data: nothing measured on the first text is reused
    (text / "part1.jsonl").write_text((text / "part1.jsonl").read_text().replace("def ", "def  "))
    again = run_cli(home, "run", *_args(model, text))
    assert again.returncode == 0, again.stderr[-3000:]
    assert summary_of(again)["blocks_trained"] == 12


def test_bad_models_and_bad_text_are_refused_before_anything_is_stored(project, tmp_path):
    root, model, text = project
    home = tmp_path / "home"
    home.mkdir()
    moe = tmp_path / "moe"
    from transformers import Qwen2MoeConfig

    Qwen2MoeConfig(**{k: v for k, v in COMMON.items() if k != "intermediate_size"}).save_pretrained(moe)
    (moe / "model.safetensors").write_bytes(b"")
    empty, latin1, short, unfielded = (tmp_path / name for name in ("empty", "latin1", "short", "unfielded"))
    for folder in (empty, latin1, short, unfielded):
        shutil.copytree(text, folder)
    (empty / "part0.jsonl").write_text("")
    (latin1 / "part0.jsonl").write_bytes(json.dumps({"body": "café"}).encode("utf-8").replace(b"caf", b"caf\xe9"))
    (unfielded / "part1.jsonl").write_text(json.dumps({"text": "no body here"}) + "\n")
    for folder in (short,):
        for file in folder.iterdir():
            file.write_text(json.dumps({"body": "x = 1"}) + "\n")
    cases = [
        ((f"space.parent.path={moe}",), "mixture-of-experts"),
        ((f"scorer.text.path={empty}",), "part0.jsonl is empty"),
        ((f"scorer.text.path={latin1}",), "part0.jsonl is not UTF-8"),
        ((f"scorer.text.path={unfielded}",), "part1.jsonl:1 has no text field 'body'"),
        ((f"scorer.text.path={short}",), "fewer than the 512 asked for"),
        (("scorer.text.kind=parquet",), "holds no .parquet file"),
    ]
    for overrides, message in cases:
        refused = run_cli(home, "run", *_args(model, text), *overrides)
        assert refused.returncode == 2 and message in refused.stderr, (overrides, refused.stderr[-2000:])
    assert (
        not (home / ".blocknas" / "perf.db").exists()
        or not PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").block_scores()
    )


def test_the_best_child_exports_in_the_layout_transformers_and_vllm_load(project, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    from blocknas.orchestrator.config import load_settings
    from blocknas.workers.llm.scorer import assemble_child

    root, model, text = project
    home = root / "home"  # the first test's run: its blocks are stored
    args = (*_args(model, text), "solver.budgets.params=60000")
    saved = run_cli(home, "export-child", str(tmp_path / "child"), *args)
    assert saved.returncode == 0, saved.stderr[-3000:]
    assert "trust_remote_code=True" in saved.stdout and "q/k norms" in saved.stdout  # a Qwen3 child: says so
    description = json.loads((tmp_path / "child" / "blocknas.json").read_text())
    assert description["format"] == "hf" and description["costs"]["params"] <= 60000
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "child"), trust_remote_code=True).eval()
    monkeypatch.setenv("BLOCKNAS_HOME", str(home))  # the blocks the run distilled
    settings = load_settings(list(args))
    choices = tuple(block.split(":", 1)[1] for block in description["blocks"])
    child = assemble_child(settings.space, choices, settings.scorer.settings)
    tokens = torch.randint(0, 300, (2, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens).logits, child(tokens), rtol=1e-5, atol=1e-5)
    unknown = run_cli(home, "export-child", str(tmp_path / "other"), "--format", "onnx", *args)
    assert unknown.returncode == 2 and "onnx" in unknown.stderr and not (tmp_path / "other").exists()
