"""How a child is saved (``blocknas export-child --format``), a registry (``CHILD_FORMATS``):

- ``hf`` (the default): the Nemotron-NAS ("DeciLM") layout vLLM and SGLang serve: ``config.json`` with
  ``architectures: ["DeciLMForCausalLM"]`` and per-layer ``block_configs``, Llama's weight names in sharded
  safetensors, the parent's tokenizer and generation config, and a configuration and a modeling file of
  blocknas's own (``auto_map``), so ``AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)``
  loads it offline and computes what blocknas's child computes. Linear replacements have no such layout
  and are refused (``space.servable=true`` keeps them out of the search); a Qwen3 child's q/k norms are
  beyond vLLM's layout: it loads in transformers only, and the export says so.
- ``blocknas``: blocknas's own ``config.json`` + ``model.safetensors``, read by ``load_decoder``.

A format is ``check(child)`` (refusals before anything is written) and ``save(child, parent_files,
directory)`` -> notes for the user; ``parent_files(directory)`` writes the parent's tokenizer and generation
config there and returns its transformers config (``None`` where the parent has none)."""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from blocknas.workers.llm.decoder import Decoder, ffn_size_of, kv_heads_of, save_decoder
from blocknas.workers.registry import Registry

MODELING_FILES = ("configuration_blocknas_decilm.py", "modeling_blocknas_decilm.py")
MAX_SHARD_SIZE = "2GB"
_PARENT_KEYS = ("rope_scaling", "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")


class ChildFormatError(ValueError):
    """A child the format cannot represent, with what to do instead."""


@dataclass(frozen=True)
class ChildFormat:
    check: Callable[[Decoder], None]
    save: Callable[[Decoder, Callable[[Path], dict | None], Path], list[str]]


def _check_servable(child: Decoder) -> None:
    linear = [f"layer {i}: {v.name}" for i, v in enumerate(child.variants) if "_linear" in v.name]
    if linear:
        raise ChildFormatError(
            f"--format hf: vLLM's Nemotron-NAS layout has no linear replacements ({'; '.join(linear)}); search "
            "with space.servable=true to leave them out, or save with --format blocknas"
        )


def block_configs(child: Decoder) -> list[dict]:
    """The child's layers as Nemotron-NAS ``block_configs``."""
    heads, blocks = child.config.heads, []
    for variant in child.variants:
        kv, size = kv_heads_of(variant.attention), ffn_size_of(variant.ffn)
        blocks.append(
            {
                "attention": {
                    "no_op": kv is None,
                    "replace_with_linear": False,
                    "n_heads_in_group": heads // kv if kv else None,
                },
                "ffn": {"no_op": size is None, "replace_with_linear": False, "intermediate_size": size},
            }
        )
    return blocks


def hf_config(child: Decoder, parent: dict | None) -> dict:
    """The child's ``config.json``: the parent's architecture with the child's ``block_configs``."""
    c = child.config
    config = {k: parent[k] for k in _PARENT_KEYS if parent and k in parent}
    config.setdefault("max_position_embeddings", 8192)
    if c.rope_inv_freq and not config.get("rope_scaling"):
        raise ChildFormatError("the child's RoPE scaling is not its parent's config's: save with --format blocknas")
    config |= {
        "architectures": ["DeciLMForCausalLM"],
        "model_type": "nemotron-nas",
        "auto_map": {
            "AutoConfig": "configuration_blocknas_decilm.BlocknasDeciConfig",
            "AutoModelForCausalLM": "modeling_blocknas_decilm.DeciLMForCausalLM",
        },
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden,
        "num_hidden_layers": c.layers,
        "num_attention_heads": c.heads,
        "num_key_value_heads": c.kv_heads,
        "intermediate_size": c.intermediate,
        "head_dim": c.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": c.rms_eps,
        "rope_theta": c.rope_theta,
        "tie_word_embeddings": c.tie_embeddings,
        "attention_bias": c.o_bias,
        "mlp_bias": c.mlp_bias,
        "qk_norm": c.qk_norm,
        "block_configs": block_configs(child),
    }
    if c.qkv_bias != c.o_bias:
        config["qkv_bias"] = c.qkv_bias  # Qwen2: vLLM reads q/k/v biases apart from the output's
    return config


_RENAMES = [
    (re.compile(r"^layers\.(\d+)\.attention\.norm\."), r"model.layers.\1.input_layernorm."),
    (re.compile(r"^layers\.(\d+)\.attention\.op\."), r"model.layers.\1.self_attn."),
    (re.compile(r"^layers\.(\d+)\.ffn\.norm\."), r"model.layers.\1.post_attention_layernorm."),
    (re.compile(r"^layers\.(\d+)\.ffn\.op\."), r"model.layers.\1.mlp."),
    (re.compile(r"^(embed_tokens|norm)\."), r"model.\1."),
]


def llama_names(child: Decoder) -> dict:
    """The child's weights under Llama's names."""
    renamed = {}
    for name, tensor in child.state_dict().items():
        for pattern, replacement in _RENAMES:
            name = pattern.sub(replacement, name)
        renamed[name] = tensor
    return renamed


def _save_hf(child: Decoder, parent_files: Callable[[Path], dict | None], directory: Path) -> list[str]:
    from blocknas.workers.llm.modeling_blocknas_decilm import BlocknasDeciConfig, DeciLMForCausalLM

    notes = []
    parent = parent_files(directory)
    if parent is None:
        notes.append("the parent has no Hugging Face tokenizer (the tiny parent reads UTF-8 bytes): none saved")
    config = BlocknasDeciConfig(**hf_config(child, parent))
    dtype = next(child.parameters()).dtype
    model = DeciLMForCausalLM(copy.deepcopy(config))
    torch.nn.Module.to(model, dtype)
    model.load_state_dict(llama_names(child), strict=True)
    model.save_pretrained(directory, max_shard_size=MAX_SHARD_SIZE, safe_serialization=True)
    here = Path(__file__).parent
    for name in MODELING_FILES:
        shutil.copy(here / name, directory / name)
    if child.config.qk_norm:
        notes.append(
            "a Qwen3 child: its per-head q/k norms are beyond vLLM's Nemotron-NAS layout; transformers loads it "
            "(trust_remote_code=True), vLLM does not"
        )
    return notes


def _save_blocknas(child: Decoder, parent_files: Callable[[Path], dict | None], directory: Path) -> list[str]:
    save_decoder(child, directory)
    return []


CHILD_FORMATS: Registry[ChildFormat] = Registry("child_format")
CHILD_FORMATS.register("hf", ChildFormat(_check_servable, _save_hf))
CHILD_FORMATS.register("blocknas", ChildFormat(lambda child: None, _save_blocknas))
