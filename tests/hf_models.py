"""Tiny random-initialised Hugging Face models of the four parent families, built by transformers' own config
classes and ``save_pretrained`` (no model can be downloaded here), with a small BPE tokenizer trained on
the standard library's sources and saved beside them."""

from __future__ import annotations

from pathlib import Path

import torch

VOCAB = 384
COMMON = {
    "vocab_size": VOCAB,
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 96,
}


def family_configs() -> dict:
    """One config per case the hf parent must read: each family, each RoPE scaling, biases, tied or not."""
    from transformers import LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config

    return {
        "llama3_biases": LlamaConfig(
            **COMMON,
            head_dim=32,
            attention_bias=True,
            mlp_bias=True,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32,
            },
        ),
        "llama_linear": LlamaConfig(**COMMON, rope_scaling={"rope_type": "linear", "factor": 4.0}),
        "llama_dynamic": LlamaConfig(**COMMON, rope_scaling={"rope_type": "dynamic", "factor": 4.0}),
        "llama_yarn": LlamaConfig(
            **COMMON, rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 24}
        ),
        "mistral": MistralConfig(**COMMON, sliding_window=None, tie_word_embeddings=False),
        "qwen2": Qwen2Config(**COMMON, tie_word_embeddings=True),
        "qwen3": Qwen3Config(**COMMON, head_dim=24, tie_word_embeddings=False),
    }


def save_model(config, folder: Path, seed: int = 0) -> Path:
    """A random model of ``config`` in ``folder``: every weight perturbed (norms, biases too), so a weight
    read wrongly changes the logits."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * (0.1 if parameter.ndim == 1 else 0.02))
    model.save_pretrained(folder)
    return folder


def save_tokenizer(folder: Path) -> Path:
    """A byte-level BPE of ``VOCAB`` tokens trained on a few standard-library files, saved as transformers
    saves one (``tokenizer.json``, ``tokenizer_config.json``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from blocknas.workers.llm.text import stdlib_files

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<|endoftext|>"]
    )
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in stdlib_files()[:40]]
    tokenizer.train_from_iterator(texts, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>").save_pretrained(folder)
    return folder
