"""Parents from a Hugging Face folder: each family gives transformers' own logits, bfloat16 weights load,
unsupported models are refused from their config, and children start from biased or q/k-normed parents."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

pytest.importorskip("transformers", reason="parents from a folder need the llm extra: pip install '.[llm]'")

from blocknas.workers.llm.blocks import child_sub_block  # noqa: E402
from blocknas.workers.llm.decoder import Decoder, LayerVariant, SubBlock  # noqa: E402
from blocknas.workers.llm.hf import HfParentSettings, ParentError, hf_parent_config, load_hf_parent  # noqa: E402
from blocknas.workers.llm.space import LlmSpace, sub_block_params  # noqa: E402
from blocknas.workers.spaces.cnn import SearchSpaceError  # noqa: E402
from tests.hf_models import COMMON, VOCAB, family_configs, save_model, save_tokenizer  # noqa: E402

FAMILIES = family_configs()


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return save_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tokenizer_dir):
    import shutil

    made = {}
    for name, config in FAMILIES.items():
        folder = save_model(config, tmp_path_factory.mktemp(name))
        for file in tokenizer_dir.iterdir():
            shutil.copy(file, folder)
        made[name] = folder
    return made


def _hf_logits(folder, tokens, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    with torch.no_grad():
        return AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype).eval()(tokens).logits


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_gives_transformers_logits(folders, family):
    decoder, encode, decode = load_hf_parent(HfParentSettings(str(folders[family])))
    # within the trained context, and past it (where dynamic NTK and YaRN scaling differ from plain RoPE)
    for length in (16, COMMON["max_position_embeddings"] + 40):
        tokens = torch.randint(0, VOCAB, (2, length), generator=torch.Generator().manual_seed(length))
        with torch.no_grad():
            torch.testing.assert_close(decoder(tokens), _hf_logits(folders[family], tokens), rtol=1e-5, atol=1e-5)
    assert decode(encode("def f(x):\n    return x")) == "def f(x):\n    return x"


def test_the_rope_scaling_is_the_parents_own(folders):
    """Reading a scaled parent as if it had plain RoPE gives other logits: the scaling is what matches."""
    for family in ("llama3_biases", "llama_dynamic", "llama_yarn"):
        config = hf_parent_config(HfParentSettings(str(folders[family])))
        decoder, _, _ = load_hf_parent(HfParentSettings(str(folders[family])))
        plain = Decoder(
            dataclasses.replace(config, rope_inv_freq=(), rope_attention_scale=1.0, rope_dynamic_factor=0.0)
        )
        plain.load_state_dict(decoder.state_dict())
        tokens = torch.randint(0, VOCAB, (1, 130), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            assert (plain(tokens) - decoder(tokens)).abs().max() > 1e-4, family


def test_bfloat16_weights_run_in_bfloat16(folders):
    decoder, _, _ = load_hf_parent(HfParentSettings(str(folders["qwen2"]), dtype="bfloat16"))
    assert {p.dtype for p in decoder.parameters()} == {torch.bfloat16}
    tokens = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = decoder(tokens).float()
    torch.testing.assert_close(got, _hf_logits(folders["qwen2"], tokens, torch.bfloat16).float(), rtol=0, atol=3e-2)
    torch.testing.assert_close(got, _hf_logits(folders["qwen2"], tokens), rtol=0, atol=5e-2)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sub_block_params_count_what_the_decoder_builds(folders, family):
    config = hf_parent_config(HfParentSettings(str(folders[family])))
    for variant in ("attn_kv2", "attn_kv1", "attn_linear", "ffn_96", "ffn_40", "ffn_linear", "ffn_noop"):
        built = sum(p.numel() for p in SubBlock(config, variant).parameters())
        assert sub_block_params(config, variant) == built, variant


@pytest.mark.parametrize("family", ["qwen2", "qwen3", "llama3_biases"])
def test_fewer_kv_heads_keep_biases_and_norms(folders, family):
    """Where a group's key-value heads are equal, the averaged child computes exactly the parent's output."""
    parent, _, _ = load_hf_parent(HfParentSettings(str(folders[family])))
    block = parent.layers[0].attention
    with torch.no_grad():
        for name in ("k_proj", "v_proj"):
            for tensor in getattr(block.op, name).parameters():
                heads = tensor.view(2, block.op.head_dim, -1)
                heads[1] = heads[0]
    inputs = torch.randn(2, 12, parent.config.hidden, generator=torch.Generator().manual_seed(2))
    child = child_sub_block(block, parent.config, "attn_kv1", inputs)
    with torch.no_grad():
        torch.testing.assert_close(child(inputs), block(inputs), rtol=1e-5, atol=1e-5)
    narrow = child_sub_block(parent.layers[0].ffn, parent.config, "ffn_40", inputs)
    assert narrow(inputs).shape == inputs.shape


def _refused(config, tmp_path, match):
    from transformers import PretrainedConfig

    folder = tmp_path / "model"
    if isinstance(config, PretrainedConfig):
        config.save_pretrained(folder)
        (folder / "model.safetensors").write_bytes(b"")  # never read: the config alone is refused
    with pytest.raises(SearchSpaceError, match=match):
        LlmSpace.from_dict({"kind": "llm", "parent": {"kind": "hf", "path": str(folder)}})


def test_unsupported_models_are_refused_from_their_config(tmp_path):
    from transformers import LlamaConfig, MistralConfig, MixtralConfig, Qwen2Config, Qwen2MoeConfig

    small = {k: v for k, v in COMMON.items() if k != "intermediate_size"}
    cases = [
        (MixtralConfig(**small), r"'mixtral' is not supported \(mixture-of-experts"),
        (Qwen2MoeConfig(**small), "mixture-of-experts"),
        (MistralConfig(**COMMON, sliding_window=32), "sliding-window attention"),
        (Qwen2Config(**COMMON, use_sliding_window=True, sliding_window=32), "sliding-window attention"),
        (LlamaConfig(**COMMON, hidden_act="gelu"), "hidden_act 'gelu'"),
        (
            LlamaConfig(
                **COMMON, rope_scaling={"rope_type": "longrope", "short_factor": [1] * 8, "long_factor": [1] * 8}
            ),
            "longrope",
        ),
    ]
    for i, (config, match) in enumerate(cases):
        _refused(config, tmp_path / str(i), match)
    _refused(None, tmp_path / "missing", "not a model folder with a config.json")


def test_pickled_weights_are_not_read(tmp_path):
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_config(FAMILIES["qwen2"]).save_pretrained(tmp_path, safe_serialization=False)
    with pytest.raises(ParentError, match="no .safetensors weights.*would unpickle"):
        hf_parent_config(HfParentSettings(str(tmp_path)))
    with pytest.raises(ParentError, match="dtype 'int8'"):
        hf_parent_config(HfParentSettings(str(tmp_path), dtype="int8"))


def _child_of(parent, layers):
    from blocknas.workers.llm.decoder import LayerVariant
    from blocknas.workers.llm.library import assemble

    inputs = torch.randn(2, 8, parent.config.hidden, generator=torch.Generator().manual_seed(3))
    variants = [LayerVariant(*layer) for layer in layers]
    blocks = {}
    for i, variant in enumerate(variants):
        for part, name in (("attention", variant.attention), ("ffn", variant.ffn)):
            own = getattr(parent.layers[i], part)
            if name != own.variant:
                blocks[(i, name)] = child_sub_block(own, parent.config, name, inputs)
    return assemble(parent, variants, blocks)


def _export(child, folder, directory):
    from blocknas.workers.llm.child_formats import CHILD_FORMATS
    from blocknas.workers.llm.hf import save_hf_files

    directory.mkdir()
    CHILD_FORMATS.get("hf").check(child)
    return CHILD_FORMATS.get("hf").save(child, lambda d: save_hf_files(HfParentSettings(str(folder)), d), directory)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_an_exported_child_loads_in_transformers_with_its_logits(folders, family, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from blocknas.workers.llm import child_formats

    monkeypatch.setattr(child_formats, "MAX_SHARD_SIZE", "100KB")  # several shards and their index
    parent, _, _ = load_hf_parent(HfParentSettings(str(folders[family])))
    child = _child_of(parent, [("attn_kv1", "ffn_40"), ("attn_noop", "ffn_96")])
    notes = _export(child, folders[family], tmp_path / "child")
    config = json.loads((tmp_path / "child" / "config.json").read_text())
    assert (
        config["architectures"] == ["DeciLMForCausalLM"] and (tmp_path / "child/model.safetensors.index.json").exists()
    )
    assert [b["attention"]["n_heads_in_group"] for b in config["block_configs"]] == [4, None]
    assert [b["ffn"]["intermediate_size"] for b in config["block_configs"]] == [40, 96]
    assert bool(notes) == (family == "qwen3")  # q/k norms: transformers only, and the export says so
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "child"), trust_remote_code=True).eval()
    tokens = torch.randint(0, VOCAB, (2, COMMON["max_position_embeddings"] + 20), generator=torch.Generator())
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens).logits, child(tokens), rtol=1e-5, atol=1e-5)
        prompt = tokens[:1, :12]
        assert torch.equal(loaded.generate(prompt, max_new_tokens=6, do_sample=False), child.generate(prompt, 6))
    text = "def f(x):\n    return x"
    assert (
        AutoTokenizer.from_pretrained(str(tmp_path / "child"))(text)["input_ids"]
        == (AutoTokenizer.from_pretrained(str(folders[family]))(text)["input_ids"])
    )


def test_a_child_keeping_every_parent_block_gives_the_parents_logits(folders, tmp_path):
    parent, _, _ = load_hf_parent(HfParentSettings(str(folders["llama3_biases"])))
    _export(parent, folders["llama3_biases"], tmp_path / "child")
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "child"), trust_remote_code=True).eval()
    tokens = torch.randint(0, VOCAB, (2, 40), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(tokens).logits, _hf_logits(folders["llama3_biases"], tokens), rtol=1e-5, atol=1e-5
        )


def test_linear_replacements_are_refused_by_the_hf_format(folders):
    from blocknas.workers.llm.child_formats import CHILD_FORMATS, ChildFormatError

    parent, _, _ = load_hf_parent(HfParentSettings(str(folders["qwen2"])))
    child = _child_of(parent, [("attn_kv2", "ffn_linear"), ("attn_kv2", "ffn_96")])
    with pytest.raises(
        ChildFormatError, match="no linear replacements.*layer 0: attn_kv2\\+ffn_linear.*space.servable"
    ):
        CHILD_FORMATS.get("hf").check(child)
    CHILD_FORMATS.get("blocknas").check(child)  # blocknas's own format keeps them
    with pytest.raises(SearchSpaceError, match="space.servable=true leaves out linear"):
        LlmSpace.from_dict({"kind": "llm", "servable": True, "ffn": ["ffn_192", "ffn_linear"]})
    servable = LlmSpace.from_dict({"kind": "llm", "servable": True})
    assert not [v for v in (*servable.attention, *servable.ffn) if v.endswith("_linear")]


def test_a_parent_saved_again_at_the_same_path_is_another_parent(folders, tmp_path):
    import shutil

    from blocknas.workers.llm.hf import hf_fingerprint

    folder = tmp_path / "qwen2"
    shutil.copytree(folders["qwen2"], folder)
    spec = {"kind": "llm", "parent": {"kind": "hf", "path": str(folder)}}
    before = LlmSpace.from_dict(spec).fingerprint()
    assert before == hf_fingerprint(HfParentSettings(str(folder))) == LlmSpace.from_dict(spec).fingerprint()
    save_model(FAMILIES["qwen2"], folder, seed=1)  # fine-tuned, say, and saved over the old weights
    assert LlmSpace.from_dict(spec).fingerprint() != before
    with pytest.raises(SearchSpaceError, match="the parent's files changed"):
        LlmSpace.from_dict(spec | {"fingerprint": before})


def test_a_bfloat16_parent_distils_scores_and_costs_its_blocks_in_bfloat16(folders):
    from blocknas.workers.llm.distillation import DistillSettings, parent_streams
    from blocknas.workers.llm.library import assemble, measure_block
    from blocknas.workers.llm.scoring import parent_reference

    parent, _, _ = load_hf_parent(HfParentSettings(str(folders["qwen3"]), dtype="bfloat16"))
    tokens = torch.randint(0, VOCAB, (8, 24), generator=torch.Generator().manual_seed(5))
    streams, reference = parent_streams(parent, tokens), parent_reference(parent, tokens[:4])
    blocks = {}
    for variant in ("attn_kv1", "ffn_40", "attn_linear", "ffn_noop"):
        blocks[1, variant], record = measure_block(parent, 1, variant, streams, reference, DistillSettings(steps=3))
        assert {p.dtype for p in blocks[1, variant].parameters()} <= {torch.bfloat16}, variant
        assert record.score.kl_div > 0 and record.costs["runtime_ms"] >= 0
    child = assemble(parent, [parent.config.parent_layer(), LayerVariant("attn_kv1", "ffn_40")], blocks)
    assert {p.dtype for p in child.parameters()} == {torch.bfloat16}
    assert torch.isfinite(child(tokens[:2]).float()).all()
