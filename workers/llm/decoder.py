"""A Llama-family decoder whose layers each follow their own configuration (Puzzle's heterogeneous child).

Every layer is two residual sub-blocks, ``h = h + attention(h)`` then ``h = h + ffn(h)``; each sub-block
owns its RMSNorm, so a no-op removes the norm too. Variants, named as they are keyed in the block table:

- attention: ``attn_kv<K>`` grouped-query attention with K key-value heads (the parent's count or fewer),
  ``attn_linear`` one linear map of the normed hidden state, ``attn_noop`` nothing;
- FFN: ``ffn_<I>`` SwiGLU with intermediate size I, ``ffn_linear`` one linear map, ``ffn_noop`` nothing.

The parent is the decoder whose every layer is ``(attn_kv<kv_heads>, ffn_<intermediate>)``; its weights use
the names of HF ``LlamaForCausalLM`` (``blocknas.workers.llm.parents`` maps them), so a pretrained Llama loads as is.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

_ATTENTION = re.compile(r"attn_(kv(?P<kv>[1-9][0-9]*)|linear|noop)$")
_FFN = re.compile(r"ffn_((?P<size>[1-9][0-9]*)|linear|noop)$")


class VariantError(ValueError):
    """A variant name or a layer configuration that the decoder cannot build."""


@dataclass(frozen=True)
class DecoderConfig:
    """A Llama-family decoder: Llama, Mistral, Qwen2 (``qkv_bias``) and Qwen3 (``qk_norm``, its own
    ``head_dim``). ``head_dim`` 0 means ``hidden / heads``. RoPE: ``rope_inv_freq`` (empty: the plain
    frequencies of ``rope_theta``) as transformers computes them for the parent's scaling (``linear``,
    ``llama3``, ``yarn``), ``rope_attention_scale`` multiplying cos and sin (YaRN's), and for ``dynamic`` NTK
    scaling its factor and the context beyond which it rescales."""

    vocab_size: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    rope_theta: float = 10_000.0
    rms_eps: float = 1e-5
    tie_embeddings: bool = True
    head_dim: int = 0
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    rope_inv_freq: tuple[float, ...] = ()
    rope_attention_scale: float = 1.0
    rope_dynamic_factor: float = 0.0
    rope_dynamic_positions: int = 0

    def __post_init__(self) -> None:
        if not self.head_dim:
            if self.hidden % self.heads:
                raise VariantError(f"hidden size {self.hidden} is not a multiple of the {self.heads} heads")
            object.__setattr__(self, "head_dim", self.hidden // self.heads)
        if self.heads % self.kv_heads:
            raise VariantError(f"{self.heads} heads do not split into {self.kv_heads} key-value groups")
        object.__setattr__(self, "rope_inv_freq", tuple(float(f) for f in self.rope_inv_freq))
        if self.rope_inv_freq and len(self.rope_inv_freq) != self.head_dim // 2:
            raise VariantError(f"{len(self.rope_inv_freq)} RoPE frequencies for a head of {self.head_dim}")

    def parent_layer(self) -> LayerVariant:
        return LayerVariant(f"attn_kv{self.kv_heads}", f"ffn_{self.intermediate}")


@dataclass(frozen=True)
class LayerVariant:
    """One layer's attention and FFN variant (names as in the module docstring)."""

    attention: str
    ffn: str

    @property
    def name(self) -> str:
        return f"{self.attention}+{self.ffn}"

    @classmethod
    def parse(cls, name: str) -> LayerVariant:
        attention, _, ffn = name.partition("+")
        return cls(attention, ffn)

    def check(self, config: DecoderConfig) -> None:
        attention, ffn = _ATTENTION.match(self.attention), _FFN.match(self.ffn)
        if attention is None:
            raise VariantError(
                f"unknown attention variant {self.attention!r}: use attn_kv<K>, attn_linear or attn_noop"
            )
        if ffn is None:
            raise VariantError(f"unknown FFN variant {self.ffn!r}: use ffn_<size>, ffn_linear or ffn_noop")
        if attention["kv"] and config.heads % int(attention["kv"]):
            raise VariantError(
                f"{self.attention}: {config.heads} query heads do not split into {attention['kv']} key-value groups"
            )


def kv_heads_of(variant: str) -> int | None:
    match = _ATTENTION.match(variant)
    return int(match["kv"]) if match and match["kv"] else None


def ffn_size_of(variant: str) -> int | None:
    match = _FFN.match(variant)
    return int(match["size"]) if match and match["size"] else None


class RMSNorm(nn.Module):
    def __init__(self, hidden: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(variance + self.eps)).to(x.dtype) * self.weight


def inverse_frequencies(config: DecoderConfig, positions: int, device=None) -> torch.Tensor:
    """RoPE's inverse frequencies for a sequence of ``positions``: the config's own, or, with dynamic NTK
    scaling past its context, those of the base transformers' ``dynamic`` type computes for that length."""
    dim = config.head_dim
    exponents = torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim
    theta = config.rope_theta
    if config.rope_dynamic_factor and positions > config.rope_dynamic_positions:
        factor = config.rope_dynamic_factor
        theta *= (factor * positions / config.rope_dynamic_positions - (factor - 1)) ** (dim / (dim - 2))
    elif config.rope_inv_freq:
        return torch.tensor(config.rope_inv_freq, device=device, dtype=torch.float32)
    return 1.0 / theta**exponents


def rotary(positions: int, config: DecoderConfig, device=None, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Llama's rotary embedding (the half-split form HF uses) of positions ``start .. start + positions - 1``:
    cos and sin of shape [positions, head_dim], times the config's attention scale."""
    inverse = inverse_frequencies(config, start + positions, device)
    angles = torch.outer(torch.arange(start, start + positions, device=device, dtype=torch.float32), inverse)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos() * config.rope_attention_scale, angles.sin() * config.rope_attention_scale


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + turned * sin


class Attention(nn.Module):
    """Causal grouped-query self-attention with rotary positions (Llama's; Qwen2's q/k/v biases and Qwen3's
    per-head q/k norms where the config has them)."""

    def __init__(self, config: DecoderConfig, kv_heads: int) -> None:
        super().__init__()
        self.config = config
        self.heads, self.kv_heads, self.head_dim = config.heads, kv_heads, config.head_dim
        self.q_proj = nn.Linear(config.hidden, config.heads * self.head_dim, bias=config.qkv_bias)
        self.k_proj = nn.Linear(config.hidden, kv_heads * self.head_dim, bias=config.qkv_bias)
        self.v_proj = nn.Linear(config.hidden, kv_heads * self.head_dim, bias=config.qkv_bias)
        self.o_proj = nn.Linear(config.heads * self.head_dim, config.hidden, bias=config.o_bias)
        if config.qk_norm:
            self.q_norm = RMSNorm(self.head_dim, config.rms_eps)
            self.k_norm = RMSNorm(self.head_dim, config.rms_eps)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """``cache``: keys and values of the earlier positions (extended in place): a prompt is processed
        with an empty cache, then one token per call."""
        batch, length, _ = x.shape
        start = cache.length if cache is not None else 0
        if start and length != 1:
            raise ValueError("with a filled KV cache, decode one token at a time")
        q = self.q_proj(x).view(batch, length, self.heads, self.head_dim)
        k = self.k_proj(x).view(batch, length, self.kv_heads, self.head_dim)
        v = self.v_proj(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.config.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        cos, sin = rotary(length, self.config, x.device, start)
        q, k = _rotate(q, cos.to(q.dtype), sin.to(q.dtype)), _rotate(k, cos.to(k.dtype), sin.to(k.dtype))
        if cache is not None:
            k, v = cache.extend(k, v)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=start == 0, enable_gqa=self.kv_heads != self.heads)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))


class KVCache:
    """One attention sub-block's keys and values so far, ``[batch, kv_heads, positions, head_dim]``."""

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys is not None and self.values is not None:
            keys, values = torch.cat([self.keys, keys], dim=2), torch.cat([self.values, values], dim=2)
        self.keys, self.values = keys, values
        return keys, values


class SwiGLU(nn.Module):
    def __init__(self, hidden: int, intermediate: int, bias: bool = False) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=bias)
        self.up_proj = nn.Linear(hidden, intermediate, bias=bias)
        self.down_proj = nn.Linear(intermediate, hidden, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Linear(nn.Module):
    """Puzzle's linear replacement of a sub-block: one square map (bias-free)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class SubBlock(nn.Module):
    """``norm -> op``, the part added to the residual stream; a no-op adds nothing (and has no norm)."""

    def __init__(self, config: DecoderConfig, variant: str) -> None:
        super().__init__()
        self.variant = variant
        self.noop = variant.endswith("_noop")
        if self.noop:
            return
        self.norm = RMSNorm(config.hidden, config.rms_eps)
        self.op: nn.Module
        if (kv := kv_heads_of(variant)) is not None:
            self.op = Attention(config, kv)
        elif (size := ffn_size_of(variant)) is not None:
            self.op = SwiGLU(config.hidden, size, config.mlp_bias)
        else:
            self.op = Linear(config.hidden)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        if self.noop:
            return torch.zeros_like(x)
        if cache is not None and isinstance(self.op, Attention):
            return self.op(self.norm(x), cache)
        return self.op(self.norm(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: DecoderConfig, variant: LayerVariant) -> None:
        super().__init__()
        variant.check(config)
        self.variant = variant
        self.attention = SubBlock(config, variant.attention)
        self.ffn = SubBlock(config, variant.ffn)

    def forward(self, h: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        h = h + self.attention(h, cache)
        return h + self.ffn(h)

    def with_block(self, block: SubBlock, h: torch.Tensor) -> torch.Tensor:
        """This layer's output with ``block`` in place of its sub-block of the same kind (attention or FFN)."""
        if block.variant.startswith("attn_"):
            h = h + block(h)
            return h + self.ffn(h)
        h = h + self.attention(h)
        return h + block(h)


class Decoder(nn.Module):
    """Token ids ``[batch, length]`` -> next-token logits ``[batch, length, vocab]``."""

    def __init__(self, config: DecoderConfig, layers: list[LayerVariant] | None = None) -> None:
        super().__init__()
        layers = layers if layers is not None else [config.parent_layer()] * config.layers
        if len(layers) != config.layers:
            raise VariantError(f"{len(layers)} layer variants for a decoder of {config.layers} layers")
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden)
        self.layers = nn.ModuleList(DecoderLayer(config, variant) for variant in layers)
        self.norm = RMSNorm(config.hidden, config.rms_eps)
        self.lm_head = nn.Linear(config.hidden, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    @property
    def variants(self) -> list[LayerVariant]:
        return [cast(DecoderLayer, layer).variant for layer in self.layers]

    def forward(self, tokens: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        h = self.embed_tokens(tokens)
        for i, layer in enumerate(self.layers):
            h = layer(h, caches[i] if caches is not None else None)
        return self.lm_head(self.norm(h))

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
        """Greedy continuation of ``prompt`` ``[batch, length]`` by ``new_tokens`` tokens (KV-cached)."""
        caches = [KVCache() for _ in self.layers]
        logits = self.eval()(prompt, caches)
        generated = [logits[:, -1].argmax(-1, keepdim=True)]
        for _ in range(new_tokens - 1):
            generated.append(self(generated[-1], caches)[:, -1].argmax(-1, keepdim=True))
        return torch.cat([prompt, *generated], dim=1)

    def hidden_states(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream before every layer and after the last: ``layers + 1`` tensors."""
        states = [self.embed_tokens(tokens)]
        for layer in self.layers:
            states.append(layer(states[-1]))
        return states

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(h))


def save_decoder(model: Decoder, directory: Path) -> Path:
    """``config.json`` (the decoder's config and every layer's variant) and ``model.safetensors``."""
    from safetensors.torch import save_model

    directory.mkdir(parents=True, exist_ok=True)
    description = {"config": asdict(model.config), "layers": [v.name for v in model.variants]}
    (directory / "config.json").write_text(json.dumps(description, indent=2) + "\n")
    save_model(model, str(directory / "model.safetensors"))
    return directory


def load_decoder(directory: Path) -> Decoder:
    """A decoder saved by ``save_decoder`` (safetensors only: no pickled code runs)."""
    from safetensors.torch import load_model

    description = json.loads((directory / "config.json").read_text())
    model = Decoder(DecoderConfig(**description["config"]), [LayerVariant.parse(n) for n in description["layers"]])
    load_model(model, str(directory / "model.safetensors"))
    return model.eval()
