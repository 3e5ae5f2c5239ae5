"""Block jobs that hold one layer of the parent: its layers and residual streams as content-addressed
safetensors shards written by one streaming pass, BLD from a layer's shards, scoring that streams the later
layers one at a time. The results equal those of the whole parent in memory."""

import pytest
import torch

from blocknas.orchestrator.config import load_settings
from blocknas.workers.llm.decoder import Decoder, DecoderConfig
from blocknas.workers.llm.distillation import DistillSettings, distill_sub_block, parent_streams
from blocknas.workers.llm.library import measure_block
from blocknas.workers.llm.scorer import _prepared, evaluate, parent_shards, shards_path
from blocknas.workers.llm.scoring import parent_reference, score_swap
from blocknas.workers.llm.shards import ParentShards, distill_from_shards, score_from_shards, write_shards

DISTILL = DistillSettings(steps=15, batch=4, lr=1e-3)


def _same_block(a, b) -> None:
    one, other = a.state_dict(), b.state_dict()
    assert one.keys() == other.keys()
    for key in one:
        torch.testing.assert_close(one[key], other[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bld_and_scores_from_shards_equal_the_whole_parent_in_memory(tmp_path, dtype):
    torch.manual_seed(0)
    config = DecoderConfig(vocab_size=96, hidden=32, layers=4, heads=4, kv_heads=2, intermediate=64)
    parent = Decoder(config).to(dtype).eval()
    distill, score = torch.randint(96, (12, 24)), torch.randint(96, (4, 24))
    streams, reference = parent_streams(parent, distill), parent_reference(parent, score)

    shards = write_shards(parent, distill, score, tmp_path / "shards")
    assert shards.complete and shards.layers == 4 and shards.dtype == dtype
    assert shards.lm_loss == pytest.approx(reference.lm_loss, rel=1e-6)
    for layer, variant in [(0, "attn_kv1"), (1, "ffn_32"), (3, "attn_noop"), (3, "ffn_noop")]:
        expected, distilled = distill_sub_block(parent, layer, variant, streams, DISTILL)
        block, from_shards = distill_from_shards(shards, layer, variant, DISTILL)
        _same_block(expected, block)
        assert (from_shards.initial_loss, from_shards.final_loss) == (distilled.initial_loss, distilled.final_loss)
        whole, streamed = score_swap(parent, reference, layer, expected), score_from_shards(shards, layer, block)
        assert streamed.kl_div == pytest.approx(whole.kl_div, rel=1e-5, abs=1e-7)
        assert streamed.lm_loss == pytest.approx(whole.lm_loss, rel=1e-6)


@pytest.fixture
def tiny_llm(tmp_path, monkeypatch):
    """puzzle_tiny's space (its parent trained here, once per process) with blocks and shards under tmp_path."""
    monkeypatch.setenv("BLOCKNAS_LLM_BLOCKS", str(tmp_path / "blocks"))
    settings = load_settings(["experiment=puzzle_tiny", "scorer.steps=10", "scorer.distill_windows=8"])
    return settings.space, settings.scorer.settings


@pytest.mark.slow
def test_a_block_job_reads_its_layer_from_shards_written_once_and_gets_todays_result(tiny_llm, monkeypatch):
    space, bld = tiny_llm
    base = list(space.base)
    slot = 2  # layer 1's attention
    variant = next(c for c in space.slots[slot].choices if c != base[slot])
    choices = base[:slot] + [variant] + base[slot + 1 :]

    got = evaluate(space, tuple(choices), bld)
    parent, streams, reference = _prepared(space, bld)  # today's job: the whole parent in memory
    _, record = measure_block(parent, slot // 2, variant, streams, reference, bld.distill())
    assert got["accuracy"] == pytest.approx(-record.score.kl_div, rel=1e-5, abs=1e-7)
    assert got["loss"] == pytest.approx(record.score.lm_loss, rel=1e-6)
    assert got["train_loss"] == pytest.approx(record.distillation.final_loss, rel=1e-6)
    assert evaluate(space, tuple(base), bld)["loss"] == pytest.approx(reference.lm_loss, rel=1e-6)

    # Once the shards are there, a job never loads the parent: the next block, and the stored one re-scored.
    def no_parent(self):
        raise AssertionError("a single block's job loaded the whole parent")

    monkeypatch.setattr(type(space), "load_parent", no_parent)
    other = next(c for c in space.slots[slot + 1].choices if c != base[slot + 1])
    assert evaluate(space, tuple(base[: slot + 1] + [other] + base[slot + 2 :]), bld)["accuracy"] <= 0
    written = sorted(p.name for p in shards_path(space, bld).iterdir())
    assert "parent.json" in written and f"layer-{len(space.slots) // 2 - 1}.safetensors" in written


@pytest.mark.slow
def test_the_shards_are_addressed_by_the_parent_the_text_and_the_windows(tiny_llm):
    space, bld = tiny_llm
    from dataclasses import replace

    shards = parent_shards(space, bld)
    assert isinstance(shards, ParentShards) and shards.complete
    assert parent_shards(space, bld).directory == shards.directory  # read back, not written again
    assert shards_path(space, replace(bld, steps=bld.steps + 1)) == shards.directory  # BLD's settings: no
    for changed in (replace(bld, score_windows=bld.score_windows + 1), replace(bld, seed=bld.seed + 1)):
        assert shards_path(space, changed) != shards.directory
    assert not list(shards.directory.parent.glob("*.partial"))
