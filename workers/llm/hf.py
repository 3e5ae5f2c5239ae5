"""Parents from a Hugging Face folder (``space.parent: {kind: hf, path: DIR}``): ``config.json``, safetensors
weights (one file or shards with their index) and the tokenizer, as ``save_pretrained`` writes them.

The dense Llama-family decoders are read: Llama (RoPE scaling ``linear``, ``dynamic``, ``llama3`` and
``yarn``, attention and MLP biases), Mistral, Qwen2/2.5 (q/k/v biases) and Qwen3 (per-head q/k RMS norms, its
own head size); tied or untied embeddings; float32, bfloat16 or float16 weights. Anything else (mixture of
experts, sliding-window attention, partial rotary embeddings, other architectures) is refused from the
config alone, before a weight is read, saying what is not supported. Only safetensors are read: a
``pytorch_model.bin`` would unpickle."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from blocknas.workers.llm.decoder import Decoder, DecoderConfig

FAMILIES = ("llama", "mistral", "qwen2", "qwen3")
ROPE_TYPES = ("default", "linear", "dynamic", "llama3", "yarn")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ParentError(ValueError):
    """A parent model that cannot be loaded here: what is missing or unsupported, and what to do."""


@dataclass(frozen=True)
class HfParentSettings:
    """``path``: a folder as ``save_pretrained`` writes it; ``dtype``: what the parent and its blocks run in."""

    path: str = ""
    dtype: str = "float32"


def hf_config_of(settings: HfParentSettings):
    """The folder's transformers config, after the checks that need no weights."""
    folder = Path(settings.path).expanduser()
    if not settings.path or not (folder / "config.json").is_file():
        raise ParentError(
            f"space.parent.path {settings.path!r} is not a model folder with a config.json "
            "(save one with model.save_pretrained(DIR) and tokenizer.save_pretrained(DIR))"
        )
    if settings.dtype not in DTYPES:
        raise ParentError(f"space.parent.dtype {settings.dtype!r}: use one of {', '.join(DTYPES)}")
    try:
        from transformers import AutoConfig
    except ImportError:
        raise ParentError("parents from a folder need transformers: pip install '.[llm]'") from None
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (ValueError, KeyError, OSError) as exc:
        raise ParentError(f"{folder}/config.json cannot be read by transformers: {exc}") from exc
    if not any(folder.glob("*.safetensors")):
        raise ParentError(
            f"{folder} holds no .safetensors weights (a pytorch_model.bin is not read: loading it would "
            "unpickle; re-save the model with save_pretrained(DIR, safe_serialization=True))"
        )
    return config


def decoder_config_of(hf: Any, where: str = "the parent") -> DecoderConfig:
    """A transformers config of one of ``FAMILIES`` as a DecoderConfig, or ParentError naming what is not
    supported."""
    family = getattr(hf, "model_type", None)
    if family not in FAMILIES:
        moe = "moe" in str(family) or any(getattr(hf, k, 0) for k in ("num_experts", "num_local_experts"))
        raise ParentError(
            f"{where}: model_type {family!r} is not supported"
            + (" (mixture-of-experts models are not)" if moe else "")
            + f": the parents are dense Llama-family decoders ({', '.join(FAMILIES)})"
        )
    _refuse_unsupported(hf, where)
    biased = bool(getattr(hf, "attention_bias", False))
    return DecoderConfig(
        vocab_size=hf.vocab_size,
        hidden=hf.hidden_size,
        layers=hf.num_hidden_layers,
        heads=hf.num_attention_heads,
        kv_heads=hf.num_key_value_heads or hf.num_attention_heads,
        intermediate=hf.intermediate_size,
        rope_theta=float(hf.rope_theta),
        rms_eps=float(hf.rms_norm_eps),
        tie_embeddings=bool(hf.tie_word_embeddings),
        head_dim=getattr(hf, "head_dim", None) or 0,
        qkv_bias=biased or family == "qwen2",
        o_bias=biased and family != "qwen2",
        mlp_bias=bool(getattr(hf, "mlp_bias", False)),
        qk_norm=family == "qwen3",
        **_rope_fields(hf, where),
    )


def _refuse_unsupported(hf: Any, where: str) -> None:
    if getattr(hf, "hidden_act", "silu") != "silu":
        raise ParentError(f"{where}: hidden_act {hf.hidden_act!r} is not supported (SwiGLU with silu only)")
    if getattr(hf, "partial_rotary_factor", 1.0) != 1.0:
        raise ParentError(f"{where}: partial rotary embeddings (partial_rotary_factor) are not supported")
    window = getattr(hf, "sliding_window", None)
    sliding = "sliding_attention" in (getattr(hf, "layer_types", None) or ())
    if getattr(hf, "use_sliding_window", None) is not None:  # Qwen: the window applies only when enabled
        sliding = sliding or bool(hf.use_sliding_window)
    elif window is not None and window < hf.max_position_embeddings:  # Mistral: a window is always on
        sliding = True
    if sliding:
        raise ParentError(
            f"{where}: sliding-window attention (sliding_window={window}) is not supported: every layer must "
            "attend to the whole context"
        )


def _rope_fields(hf: Any, where: str) -> dict[str, Any]:
    """RoPE scaling as transformers computes it (its own initialisers: the same frequencies, bit for bit)."""
    scaling = getattr(hf, "rope_scaling", None) or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind not in ROPE_TYPES:
        raise ParentError(f"{where}: RoPE scaling {kind!r} is not supported (use one of {', '.join(ROPE_TYPES)})")
    if kind == "default":
        return {}
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    inverse, scale = ROPE_INIT_FUNCTIONS[kind](hf, torch.device("cpu"))
    fields: dict[str, Any] = {"rope_inv_freq": tuple(inverse.tolist()), "rope_attention_scale": float(scale)}
    if kind == "dynamic":
        fields |= {
            "rope_dynamic_factor": float(scaling["factor"]),
            "rope_dynamic_positions": hf.max_position_embeddings,
        }
    return fields


def hf_weight_names(config: DecoderConfig) -> dict[str, str]:
    """Each weight of a parent Decoder -> its name in a transformers Llama-family checkpoint."""
    names = {"embed_tokens.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight"}
    names["lm_head.weight"] = "model.embed_tokens.weight" if config.tie_embeddings else "lm_head.weight"
    for i in range(config.layers):
        source, target = f"model.layers.{i}.", f"layers.{i}."
        names[target + "attention.norm.weight"] = source + "input_layernorm.weight"
        names[target + "ffn.norm.weight"] = source + "post_attention_layernorm.weight"
        for proj, biased in (("q_proj", config.qkv_bias), ("k_proj", config.qkv_bias), ("v_proj", config.qkv_bias)):
            names[f"{target}attention.op.{proj}.weight"] = f"{source}self_attn.{proj}.weight"
            if biased:
                names[f"{target}attention.op.{proj}.bias"] = f"{source}self_attn.{proj}.bias"
        names[f"{target}attention.op.o_proj.weight"] = f"{source}self_attn.o_proj.weight"
        if config.o_bias:
            names[f"{target}attention.op.o_proj.bias"] = f"{source}self_attn.o_proj.bias"
        if config.qk_norm:
            for norm in ("q_norm", "k_norm"):
                names[f"{target}attention.op.{norm}.weight"] = f"{source}self_attn.{norm}.weight"
        for proj in ("gate_proj", "up_proj", "down_proj"):
            names[f"{target}ffn.op.{proj}.weight"] = f"{source}mlp.{proj}.weight"
            if config.mlp_bias:
                names[f"{target}ffn.op.{proj}.bias"] = f"{source}mlp.{proj}.bias"
    return names


def decoder_from_weights(
    config: DecoderConfig, weight: Callable[[str], torch.Tensor], dtype: torch.dtype = torch.float32
) -> Decoder:
    """The parent Decoder of ``config`` with the weights ``weight(transformers_name)`` returns."""
    with torch.device("meta"):
        decoder = Decoder(config)
    state = {ours: weight(theirs).to(dtype) for ours, theirs in hf_weight_names(config).items()}
    decoder.load_state_dict(state, strict=True, assign=True)
    if config.tie_embeddings:
        decoder.lm_head.weight = decoder.embed_tokens.weight
    return decoder.eval()


def from_hf_model(model) -> Decoder:
    """A loaded transformers model of one of ``FAMILIES`` as a Decoder (float32) with the same logits."""
    weights = model.state_dict()
    return decoder_from_weights(decoder_config_of(model.config), lambda name: weights[name])


def safetensors_weights(folder: Path) -> Callable[[str], torch.Tensor]:
    """``name -> tensor`` over the folder's safetensors (one file, or shards listed by their index)."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        where = {name: folder / shard for name, shard in json.loads(index.read_text())["weight_map"].items()}
    else:
        where = {}
        for file in sorted(folder.glob("*.safetensors")):
            with safe_open(str(file), framework="pt") as handle:
                where.update(dict.fromkeys(handle.keys(), file))

    def weight(name: str) -> torch.Tensor:
        if name not in where:
            raise ParentError(f"{folder}: the weights have no {name!r}")
        with safe_open(str(where[name]), framework="pt") as handle:
            return handle.get_tensor(name)

    return weight


def hf_fingerprint(settings: HfParentSettings) -> str:
    """The parent folder's identity, cheap to compute for any size: its config, and each weight file's name,
    size, modification time and safetensors header (every tensor's name, type, shape and offsets). A model
    saved again at the same path is another parent: its blocks are distilled again."""
    import hashlib

    folder = Path(settings.path).expanduser()
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for file in sorted(folder.glob("*.safetensors")):
        stat = file.stat()
        with file.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = handle.read(min(size, 100_000_000))
        digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode() + header)
    return digest.hexdigest()[:16]


def hf_parent_config(settings: HfParentSettings) -> DecoderConfig:
    return decoder_config_of(hf_config_of(settings), f"space.parent.path {settings.path}")


def hf_tokenizer(settings: HfParentSettings):
    """The folder's tokenizer: its encode and decode."""
    from transformers import AutoTokenizer

    folder = Path(settings.path).expanduser()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise ParentError(
            f"{folder} has no tokenizer transformers can load ({exc}); save the parent's beside its weights "
            "with tokenizer.save_pretrained(DIR)"
        ) from exc
    return hf_encoder(tokenizer), tokenizer.decode


def hf_encoder(tokenizer):
    """A transformers tokenizer's ``encode``: a text, or a conversation rendered by its chat template."""

    def encode(text) -> list[int]:
        if isinstance(text, str):
            return tokenizer(text)["input_ids"]
        if not getattr(tokenizer, "chat_template", None):
            raise ParentError(
                "scorer.text.chat=true renders conversations with the parent's chat template, and its tokenizer "
                "has none: set scorer.text.chat=false, or save a tokenizer that has one"
            )
        return list(tokenizer.apply_chat_template(text, tokenize=True))

    return encode


def save_hf_files(settings: HfParentSettings, directory: Path) -> dict:
    """The parent folder's tokenizer and generation config, saved into ``directory``; its config as a dict."""
    from transformers import AutoTokenizer, GenerationConfig

    folder = Path(settings.path).expanduser()
    AutoTokenizer.from_pretrained(str(folder), local_files_only=True).save_pretrained(directory)
    if (folder / "generation_config.json").is_file():
        GenerationConfig.from_pretrained(str(folder)).save_pretrained(directory)
    return json.loads((folder / "config.json").read_text())


def load_hf_parent(settings: HfParentSettings):
    """The folder's model as a Decoder in ``settings.dtype``, and its tokenizer's encode and decode."""
    config = hf_parent_config(settings)
    decoder = decoder_from_weights(
        config, safetensors_weights(Path(settings.path).expanduser()), DTYPES[settings.dtype]
    )
    return decoder, *hf_tokenizer(settings)
