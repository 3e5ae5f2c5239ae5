"""The LLM search space (``space.kind: llm``): a parent decoder's sub-blocks as slots.

Slot ``2i`` is layer i's attention (``layer_<i>.attention``), slot ``2i + 1`` its FFN (``layer_<i>.ffn``);
the candidates are the variants of ``blocknas.workers.llm.decoder`` (Puzzle's space by default), and the base network
is the parent itself. A network job is the parent with one sub-block swapped (``scorer.estimator: base``),
which is exactly Puzzle's replace-one-block scoring; the ``bld`` scorer distils that block first.
FLOPs (multiply-accumulates of a prefill of ``cost_sequence`` tokens) and parameters are computed exactly
per sub-block, so the space needs no modules built to be costed (``builds_modules = False``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

from blocknas.workers.llm.blocks import variant_names
from blocknas.workers.llm.decoder import DecoderConfig, LayerVariant, VariantError, ffn_size_of, kv_heads_of
from blocknas.workers.llm.hf import ParentError
from blocknas.workers.llm.parents import PARENT_KINDS
from blocknas.workers.registry import RegistryError
from blocknas.workers.spaces.cnn import SearchSpaceError
from blocknas.workers.typed import SettingsError, check_keys, from_mapping


@dataclass(frozen=True)
class LlmSlot:
    name: str
    choices: tuple[str, ...]

    def key(self, choice: str) -> str:
        return f"{self.name}:{choice}"


@dataclass(frozen=True)
class LlmSpace:
    name: str
    parent_kind: str  # a registered parent kind (``blocknas.workers.llm.parents.PARENT_KINDS``)
    parent_settings: object  # its typed settings (the tiny parent's: TinyParentSettings)
    attention: tuple[str, ...]
    ffn: tuple[str, ...]
    cost_sequence: int = 128
    servable: bool = False  # only variants vLLM serves from a Nemotron-NAS child (no linear replacements)
    connectivity = None
    builds_modules = False

    @classmethod
    def from_dict(cls, spec: dict) -> LlmSpace:
        check_keys(
            spec, ["kind", "name", "parent", "attention", "ffn", "cost_sequence", "servable", "fingerprint"], "space"
        )
        parent = dict(spec.get("parent") or {"kind": "tiny"})
        kind = parent.pop("kind", "tiny")
        try:
            settings: object = from_mapping(
                PARENT_KINDS.get(kind, "space.parent.kind").Settings, parent, "space.parent"
            )
        except (RegistryError, SettingsError) as exc:
            raise SearchSpaceError(str(exc)) from exc
        config = _config_of(kind, settings)
        servable = bool(spec.get("servable", False))
        default_attention, default_ffn = (
            [v for v in defaults if not (servable and v.endswith("_linear"))] for defaults in variant_names(config)
        )
        space = cls(
            str(spec.get("name", f"llm_{kind}")),
            kind,
            settings,
            tuple(spec.get("attention") or default_attention),
            tuple(spec.get("ffn") or default_ffn),
            int(spec.get("cost_sequence", 128)),
            servable,
        )
        space._check()
        if (expected := spec.get("fingerprint")) and expected != space.fingerprint():
            raise SearchSpaceError(
                f"space.parent: the parent's files changed since the run started (fingerprint {space.fingerprint()}, "
                f"the driver's {expected}), or this worker sees other files: give every node the same model folder"
            )
        return space

    def _check(self) -> None:
        config = self.config
        for variant in self.attention:
            if not variant.startswith("attn_"):
                raise SearchSpaceError(f"space.attention: {variant!r} is not an attention variant (attn_...)")
        for variant in self.ffn:
            if not variant.startswith("ffn_"):
                raise SearchSpaceError(f"space.ffn: {variant!r} is not an FFN variant (ffn_...)")
        try:
            for a in self.attention:
                LayerVariant(a, self.ffn[0]).check(config)
            for f in self.ffn:
                LayerVariant(self.attention[0], f).check(config)
        except VariantError as exc:
            raise SearchSpaceError(f"space: {exc}") from exc
        parent = config.parent_layer()
        for part, variants, own in (("attention", self.attention, parent.attention), ("ffn", self.ffn, parent.ffn)):
            if own not in variants:
                raise SearchSpaceError(f"space.{part} must include the parent's own {own} (the base network)")
        if (kv := [k for a in self.attention if (k := kv_heads_of(a))]) and max(kv) > config.kv_heads:
            raise SearchSpaceError(f"space.attention: more key-value heads than the parent's {config.kv_heads}")
        if (sizes := [n for f in self.ffn if (n := ffn_size_of(f))]) and max(sizes) > config.intermediate:
            raise SearchSpaceError(f"space.ffn: wider than the parent's {config.intermediate}")
        if self.servable and (linear := [v for v in (*self.attention, *self.ffn) if v.endswith("_linear")]):
            raise SearchSpaceError(
                f"space.servable=true leaves out linear replacements (vLLM serves none): drop {', '.join(linear)}"
            )
        if self.cost_sequence < 1:
            raise SearchSpaceError("space.cost_sequence must be >= 1")

    @cached_property
    def config(self) -> DecoderConfig:
        return _config_of(self.parent_kind, self.parent_settings)

    @property
    def slots(self) -> tuple[LlmSlot, ...]:
        return tuple(
            LlmSlot(f"layer_{i}.{part}", variants)
            for i in range(self.config.layers)
            for part, variants in (("attention", self.attention), ("ffn", self.ffn))
        )

    @property
    def base(self) -> tuple[str, ...]:
        parent = self.config.parent_layer()
        return (parent.attention, parent.ffn) * self.config.layers

    @property
    def num_networks(self) -> int:
        return (len(self.attention) * len(self.ffn)) ** self.config.layers

    @staticmethod
    def is_network(choices) -> bool:
        """Whether ``choices`` make a real network: every choice of blocks does."""
        return True

    @staticmethod
    def network_key(choices: tuple[str, ...] | list[str]) -> str:
        return ",".join(choices)

    def layers_of(self, choices: tuple[str, ...] | list[str]) -> list[LayerVariant]:
        return [LayerVariant(choices[2 * i], choices[2 * i + 1]) for i in range(self.config.layers)]

    def edge_cost(self, choice: str, metric: str) -> float:
        """Parameters, or multiply-accumulates of a ``cost_sequence``-token prefill, of one sub-block."""
        params = float(sub_block_params(self.config, choice))
        if metric == "params":
            return params
        flops = (params - self.config.hidden * (params > 0)) * self.cost_sequence  # the norm's weight is no MAC
        if kv_heads_of(choice):
            flops += 2 * self.cost_sequence**2 * self.config.heads * self.config.head_dim  # scores and values
        return float(flops)

    def fixed_cost(self, metric: str) -> float:
        """The embeddings, the final norm and the LM head (tied weights count once)."""
        c = self.config
        head = c.vocab_size * c.hidden
        if metric == "params":
            return float(head * (1 if c.tie_embeddings else 2) + c.hidden)
        return float(head * self.cost_sequence)

    def load_parent(self):
        """The parent decoder (trained or loaded once per process) and its token encoder."""
        return _parent(self.parent_kind, self.parent_settings)[:2]

    def token_decoder(self):
        """The parent tokenizer's decoder: token ids -> text."""
        return _parent(self.parent_kind, self.parent_settings)[2]

    def fingerprint(self) -> str:
        """What identifies the parent beyond its settings (a folder's files), "" where nothing does."""
        kind = PARENT_KINDS.get(self.parent_kind)
        return kind.fingerprint(self.parent_settings) if kind.fingerprint is not None else ""

    def tokenizer(self):
        """The parent's tokenizer (encode, decode), without loading its weights where the kind allows."""
        return PARENT_KINDS.get(self.parent_kind).tokenizer_of(self.parent_settings)


def sub_block_params(config: DecoderConfig, variant: str) -> int:
    """The weights of one sub-block (its norm included) as the decoder builds it."""
    hidden = config.hidden
    if variant.endswith("_noop"):
        return 0
    if variant.endswith("_linear"):
        return hidden + hidden * hidden
    if (kv := kv_heads_of(variant)) is not None:
        width = (config.heads + 2 * kv) * config.head_dim  # queries, keys and values
        biases = width * config.qkv_bias + hidden * config.o_bias + 2 * config.head_dim * config.qk_norm
        return hidden + 2 * hidden * config.heads * config.head_dim + 2 * hidden * kv * config.head_dim + biases
    size = ffn_size_of(variant)
    if size is None:
        raise VariantError(f"unknown sub-block variant {variant!r}")
    return hidden + 3 * hidden * size + (2 * size + hidden) * config.mlp_bias


def _config_of(kind: str, settings) -> DecoderConfig:
    try:
        return PARENT_KINDS.get(kind).config(settings)
    except (VariantError, ParentError) as exc:
        raise SearchSpaceError(f"space.parent: {exc}") from exc


_parents: dict = {}
_parents_lock = threading.Lock()


def _parent(kind: str, settings):
    """The parent of ``kind`` (loaded or trained once per process), its encoder and decoder."""
    key = (kind, settings)  # settings are frozen dataclasses: hashable
    with _parents_lock:
        if key not in _parents:
            _parents[key] = PARENT_KINDS.get(kind).load(settings)
        return _parents[key]
