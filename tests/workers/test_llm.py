"""The language-model blocks on a tiny parent trained here on real text (the standard library's sources):
BLD, replace-one-block scoring, costs, Puzzle-format export read back by the real importer, and children
assembled, saved and loaded."""

import itertools
import json
from datetime import UTC, datetime

import numpy as np
import pytest
import torch

from blocknas.orchestrator.deploy.fronts import library_accuracy, with_target
from blocknas.orchestrator.storage import RegisteredTarget
from blocknas.orchestrator.targets.files import read_target_file
from blocknas.orchestrator.targets.registry import version_of
from blocknas.solvers import best_within_budgets
from blocknas.workers.llm.blocks import child_sub_block, variant_names
from blocknas.workers.llm.decoder import Decoder, LayerVariant, VariantError, load_decoder, save_decoder
from blocknas.workers.llm.distillation import DistillSettings, distill_sub_block, parent_streams
from blocknas.workers.llm.library import assemble, measure_block, puzzle_library
from blocknas.workers.llm.parents import TinyParentSettings, train_tiny_parent
from blocknas.workers.llm.scoring import parent_reference, score_network, score_swap
from blocknas.workers.llm.text import SPLITS, ByteTokenizer, split_documents, split_of, stdlib_files, windows

ATTENTION = ["attn_kv2", "attn_kv1", "attn_noop"]
FFN = ["ffn_96", "ffn_48", "ffn_noop"]
DISTILL = DistillSettings(steps=40, lr=1e-3)


@pytest.fixture(scope="module")
def parent():
    torch.manual_seed(0)
    return train_tiny_parent(
        TinyParentSettings(layers=3, hidden=48, heads=4, kv_heads=2, intermediate=96, steps=80, context=64)
    )


@pytest.fixture(scope="module")
def streams(parent):
    return parent_streams(parent, windows("distill", ByteTokenizer().encode, 64, 32, seed=1))


@pytest.fixture(scope="module")
def reference(parent):
    return parent_reference(parent, windows("score", ByteTokenizer().encode, 64, 8))


@pytest.fixture(scope="module")
def measured(parent, streams, reference):
    blocks, records = {}, []
    for layer, variant in itertools.product(range(3), ATTENTION + FFN):
        block, record = measure_block(parent, layer, variant, streams, reference, DISTILL)
        blocks[layer, variant] = block
        records.append(record)
    return blocks, records


def test_the_text_splits_are_real_disjoint_and_fixed():
    files = stdlib_files()
    assert len(files) > 300 and all(p.suffix == ".py" for p in files)
    splits = {name: {document for document, _ in split_documents(name)} for name in SPLITS}
    assert not splits["distill"] & splits["score"] and not splits["score"] & splits["eval"]
    assert sum(map(len, splits.values())) == len(files)
    assert all(split_of(p) == "score" for p in splits["score"])
    text = ByteTokenizer().decode(windows("eval", ByteTokenizer().encode, 256, 2)[0].tolist())
    assert any(word in text for word in ("def ", "import ", "class ", "return"))


def test_the_tiny_parent_learned_the_text(parent):
    evaluation = windows("eval", ByteTokenizer().encode, 64, 8)
    _, loss = score_network(parent, parent_reference(parent, evaluation))
    assert loss < 0.75 * np.log(256)  # far below a uniform guess over bytes


def test_bld_lowers_the_block_loss_below_its_initialisation(parent, streams):
    for variant in ("attn_kv1", "ffn_48"):
        _, result = distill_sub_block(parent, 1, variant, streams, DistillSettings(steps=60, lr=1e-3))
        assert result.final_loss < 0.8 * result.initial_loss, result
        assert len(result.curve) == 60
    kept, result = distill_sub_block(parent, 1, "ffn_96", streams, DISTILL)  # the parent's own FFN
    assert result.initial_loss == result.final_loss == 0.0
    assert torch.equal(kept.op.up_proj.weight, parent.layers[1].ffn.op.up_proj.weight)


def test_fewer_kv_heads_start_from_the_mean_of_the_grouped_heads(parent, streams):
    child = child_sub_block(parent.layers[0].attention, parent.config, "attn_kv1", streams[0][:2])
    parent_k = parent.layers[0].attention.op.k_proj.weight.view(2, 12, -1)
    assert torch.allclose(child.op.k_proj.weight, parent_k.mean(dim=0))


def test_a_no_op_scores_worse_than_the_parent_block_and_a_distilled_one(measured, reference):
    _, records = measured
    score = {(r.score.layer, r.score.variant): r.score for r in records}
    for layer in range(3):
        assert score[layer, "attn_kv2"].kl_div == pytest.approx(0.0, abs=1e-6)
        assert score[layer, "ffn_noop"].kl_div > score[layer, "ffn_48"].kl_div > score[layer, "ffn_96"].kl_div
        assert score[layer, "attn_noop"].kl_div > score[layer, "attn_kv1"].kl_div
        assert score[layer, "ffn_96"].lm_loss == pytest.approx(reference.lm_loss, abs=1e-5)


def test_costs_follow_the_variants(measured):
    _, records = measured
    cost = {(r.score.layer, r.score.variant): r.costs for r in records}
    assert cost[0, "ffn_96"]["num_params"] == 3 * 48 * 96 + 48
    assert cost[0, "ffn_noop"] == {"num_params": 0.0, "memory_mib": 0.0, "runtime_ms": 0.0, "decode_ms": 0.0}
    assert cost[0, "attn_kv1"]["memory_mib"] < cost[0, "attn_kv2"]["memory_mib"]  # smaller K/V and KV cache
    assert cost[0, "ffn_48"]["runtime_ms"] > 0 and cost[0, "attn_kv1"]["decode_ms"] > 0


def test_cached_generation_equals_recomputing_every_prefix(parent, measured):
    blocks, _ = measured
    child = assemble(
        parent,
        [LayerVariant("attn_kv1", "ffn_48"), LayerVariant("attn_noop", "ffn_96"), LayerVariant("attn_kv2", "ffn_noop")],
        blocks,
    )
    prompt = torch.tensor([ByteTokenizer().encode("def main():\n    ")] * 2)
    generated = child.generate(prompt, 12)
    expected = prompt
    with torch.no_grad():
        for _ in range(12):
            expected = torch.cat([expected, child(expected)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(generated, expected)


def test_the_puzzle_library_reads_back_unchanged_and_solves_like_brute_force(measured, reference, tmp_path):
    _, records = measured
    library = puzzle_library(records, reference.lm_loss)
    assert list(library) == ["layer_0", "layer_1", "layer_2"] and len(library["layer_0"]) == 9
    path = tmp_path / "block_library.json"
    path.write_text(json.dumps(library))
    definition = read_target_file(path).as_json() | {"objective": "kl_div"}
    entry = RegisteredTarget("tiny", version_of(definition), "table", definition, datetime.now(UTC))
    table = with_target(library_accuracy(entry), entry)
    assert [list(c) for c in table.choices] == [list(layer) for layer in library.values()]
    for i, layer in enumerate(library.values()):
        kl = [v["metrics"]["kl_div"] for v in layer.values()]
        np.testing.assert_allclose(-table.accuracy[i], kl, rtol=0, atol=1e-12)
        np.testing.assert_allclose(table.costs["memory_mib"][i], [v["stats"]["memory_mib"] for v in layer.values()])
    parent_memory = sum(max(v["stats"]["memory_mib"] for v in layer.values()) for layer in library.values())
    budget = {"memory_mib": 0.6 * parent_memory}
    point = best_within_budgets(table, budget)
    best = min(
        (sum(layer[v]["metrics"]["kl_div"] for layer, v in zip(library.values(), pick, strict=True)), pick)
        for pick in itertools.product(*library.values())
        if sum(layer[v]["stats"]["memory_mib"] for layer, v in zip(library.values(), pick, strict=True))
        <= budget["memory_mib"]
    )
    assert -point.predicted_accuracy == pytest.approx(best[0], abs=1e-12)


def test_an_all_parent_child_is_the_parent_and_children_save_and_load(parent, measured, reference, tmp_path):
    blocks, records = measured
    same = assemble(parent, [parent.config.parent_layer()] * 3, blocks)
    tokens = reference.tokens[:2]
    with torch.no_grad():
        assert torch.equal(same(tokens), parent(tokens))
    layers = [
        LayerVariant("attn_kv1", "ffn_48"),
        LayerVariant("attn_kv2", "ffn_noop"),
        LayerVariant("attn_noop", "ffn_96"),
    ]
    child = assemble(parent, layers, blocks)
    loaded = load_decoder(save_decoder(child, tmp_path / "child"))
    assert loaded.variants == layers
    with torch.no_grad():
        assert torch.equal(loaded(tokens), child(tokens))
    assert sum(p.numel() for p in child.parameters()) < sum(p.numel() for p in parent.parameters())
    # the network's measured KL is close to the sum of its blocks' scores (what the MIP minimises)
    score = {(r.score.layer, r.score.variant): r.score.kl_div for r in records}
    predicted = sum(score[i, v.attention] + score[i, v.ffn] for i, v in enumerate(layers))
    measured_kl, _ = score_network(child, reference)
    assert 0.3 * predicted < measured_kl < 3 * predicted


def test_unknown_variants_are_refused_with_the_names_to_use(parent):
    with pytest.raises(VariantError, match="use attn_kv<K>, attn_linear or attn_noop"):
        Decoder(parent.config, [LayerVariant("attn_kv9x", "ffn_96")] * 3)
    with pytest.raises(VariantError, match="do not split"):
        Decoder(parent.config, [LayerVariant("attn_kv3", "ffn_96")] * 3)
    with pytest.raises(ValueError, match="divisor"):
        variant_names(parent.config, kv_heads=[3])
    with pytest.raises(KeyError, match="measure it first"):
        assemble(parent, [LayerVariant("attn_kv1", "ffn_96")] * 3, {})
    _ = score_swap  # scored through measure_block above


def test_global_distillation_lowers_the_held_out_kl_of_an_assembled_child(parent, measured):
    from blocknas.workers.llm.global_distillation import GlobalDistillSettings, distill_globally
    from blocknas.workers.llm.verification import verify_child

    blocks, _ = measured
    layers = [
        LayerVariant("attn_kv1", "ffn_48"),
        LayerVariant("attn_noop", "ffn_48"),
        LayerVariant("attn_kv1", "ffn_noop"),
    ]
    child = assemble(parent, layers, blocks)
    before_parent = [p.detach().clone() for p in parent.parameters()]
    tokenizer = ByteTokenizer()
    held_out = parent_reference(parent, windows("eval", tokenizer.encode, 64, 8))
    before = verify_child(child, held_out, tokenizer.encode, tokenizer.decode, new_tokens=8)
    curve = distill_globally(
        parent, child, windows("distill", tokenizer.encode, 64, 32, seed=3), GlobalDistillSettings(steps=60, lr=1e-3)
    )
    after = verify_child(child, held_out, tokenizer.encode, tokenizer.decode, new_tokens=8)
    assert len(curve) == 60 and np.mean(curve[-10:]) < np.mean(curve[:10])
    assert after["kl_div"] < 0.8 * before["kl_div"], (before, after)  # on windows it never trained on
    assert all(torch.equal(a, b) for a, b in zip(before_parent, parent.parameters(), strict=True))  # parent intact
    assert child.embed_tokens.weight.data_ptr() != parent.embed_tokens.weight.data_ptr()
    assert (
        after["params"]
        == sum(p.numel() for p in child.layers.parameters())
        < sum(p.numel() for p in parent.layers.parameters())
    )
    assert min(after["prefill_tokens_per_s"], after["decode_tokens_per_s"]) > 0
    assert isinstance(after["text"], str) and len(tokenizer.encode(after["text"])) >= 1


def test_a_serving_workload_costs_its_prefill_and_every_generated_token(parent):
    from blocknas.workers.llm.costs import CostSettings, space_costs, sub_block_costs
    from blocknas.workers.llm.decoder import SubBlock

    block = SubBlock(parent.config, "attn_kv2")

    def fastest(generated: int) -> float:  # a busy machine only slows a timing: the least of three is robust
        settings = CostSettings(sequence=16, generated=generated, repeats=3)
        return min(sub_block_costs(block, parent.config, settings)["workload_ms"] for _ in range(3))

    assert fastest(64) > 3 * fastest(1) > 0  # 64 decoded tokens against one, the same prefill
    assert (
        sub_block_costs(SubBlock(parent.config, "ffn_noop"), parent.config, CostSettings(generated=4))["workload_ms"]
        == 0
    )
    with pytest.raises(ValueError, match="generated >= 1"):
        space_costs({"kind": "llm"}, "workload_ms", CostSettings())


def test_bfloat16_autocast_distils_and_scores_close_to_float32(parent, streams, reference):
    from blocknas.workers.llm.distillation import precision

    full = {r.score.variant: r for r in (measure_block(parent, 1, v, streams, reference, DISTILL)[1] for v in FFN[1:])}
    with precision("cpu", "bfloat16"):  # as the scorer runs it: the reference in the same precision
        half_reference = parent_reference(parent, reference.tokens)
        half = {v: measure_block(parent, 1, v, streams, half_reference, DISTILL)[1] for v in FFN[1:]}
    for variant, record in half.items():
        assert record.score.kl_div != full[variant].score.kl_div  # autocast ran: not the float32 numbers
        assert record.score.kl_div == pytest.approx(full[variant].score.kl_div, rel=0.5, abs=2e-3)
    assert half["ffn_noop"].score.kl_div > 5 * half["ffn_48"].score.kl_div  # the ranking survives
    assert half["ffn_48"].distillation.final_loss < half["ffn_48"].distillation.initial_loss
    assert {p.dtype for p in parent.parameters()} == {torch.float32}  # autocast leaves the weights alone
    with pytest.raises(ValueError, match="precision 'fp8'"):
        precision("cpu", "fp8")
