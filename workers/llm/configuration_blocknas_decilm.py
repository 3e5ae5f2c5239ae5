"""The configuration of a child blocknas exports in the Nemotron-NAS ("DeciLM") layout that vLLM and SGLang
serve: a Llama configuration plus ``block_configs``, one per layer, each with an ``attention`` (``no_op``,
``n_heads_in_group``: query heads per key-value head) and an ``ffn`` (``no_op``, ``intermediate_size``).
``qkv_bias`` (Qwen2's q/k/v biases without an output bias) and ``qk_norm`` (Qwen3's per-head q/k RMS norms)
carry what Llama lacks; vLLM's layout knows the first, not the second.

Written by blocknas beside the child's weights and loaded by ``AutoConfig.from_pretrained(DIR,
trust_remote_code=True)``; it imports transformers only."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from transformers import LlamaConfig


def _namespace(value: Any) -> Any:
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _namespace(v) for k, v in value.items()})
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, SimpleNamespace):
        return {k: _plain(v) for k, v in vars(value).items()}
    return value


class BlocknasDeciConfig(LlamaConfig):
    model_type = "nemotron-nas"

    def __init__(self, block_configs: list | None = None, qk_norm: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.block_configs = [_namespace(_plain(b)) for b in (block_configs or [])]
        self.qk_norm = qk_norm
        if qk_norm:  # Qwen3's attention reads each layer's type
            self.layer_types = ["full_attention"] * self.num_hidden_layers

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output["block_configs"] = [_plain(b) for b in self.block_configs]
        return output
