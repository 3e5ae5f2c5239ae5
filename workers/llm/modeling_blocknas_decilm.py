"""A child blocknas exports, as transformers runs it: a Llama-family decoder whose layers each follow their
``block_configs`` entry (fewer key-value heads, a narrower FFN, or no attention or FFN at all), built from
transformers' own Llama (and, for Qwen3 children, Qwen3) attention, MLP, RMSNorm and rotary embedding, so it
computes what the parent's family computes. Key-value caches are kept for the layers that attend only.

Written by blocknas beside the child's weights (Llama's weight names) and loaded by
``AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)``; it imports transformers only."""

from __future__ import annotations

import copy
from typing import Any, cast

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.llama.modeling_llama import LlamaAttention, LlamaMLP, LlamaRMSNorm, LlamaRotaryEmbedding

from .configuration_blocknas_decilm import BlocknasDeciConfig


def _attention(config: BlocknasDeciConfig, kv_heads: int, cache_index: int) -> nn.Module:
    """Self-attention with ``kv_heads`` key-value heads; its KV cache is the ``cache_index``-th."""
    layer = copy.copy(config)
    layer.num_key_value_heads = kv_heads
    qkv_bias = getattr(config, "qkv_bias", config.attention_bias)
    layer.attention_bias = qkv_bias
    if config.qk_norm:
        from transformers.models.qwen3.modeling_qwen3 import Qwen3Attention

        module: nn.Module = Qwen3Attention(cast(Any, layer), cache_index)
    else:
        module = LlamaAttention(layer, cache_index)
    if qkv_bias != config.attention_bias:  # Qwen2: q/k/v biases, none on the output
        module.o_proj = nn.Linear(config.num_attention_heads * module.head_dim, config.hidden_size, bias=False)
    return module


class DeciLMDecoderLayer(nn.Module):
    def __init__(self, config: BlocknasDeciConfig, layer_idx: int, cache_index: int) -> None:
        super().__init__()
        block = config.block_configs[layer_idx]
        self.attention_no_op, self.ffn_no_op = bool(block.attention.no_op), bool(block.ffn.no_op)
        if not self.attention_no_op:
            kv_heads = config.num_attention_heads // block.attention.n_heads_in_group
            self.input_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
            self.self_attn = _attention(config, kv_heads, cache_index)
        if not self.ffn_no_op:
            ffn = copy.copy(config)
            ffn.intermediate_size = block.ffn.intermediate_size
            self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
            self.mlp = LlamaMLP(ffn)

    def forward(self, hidden_states: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if not self.attention_no_op:
            attended, _ = self.self_attn(self.input_layernorm(hidden_states), **kwargs)
            hidden_states = hidden_states + attended
        if not self.ffn_no_op:
            hidden_states = hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))
        return hidden_states


class DeciLMPreTrainedModel(PreTrainedModel):
    config_class = BlocknasDeciConfig  # type: ignore[assignment]  # transformers declares it None
    base_model_prefix = "model"
    _no_split_modules = ["DeciLMDecoderLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True


class DeciLMModel(DeciLMPreTrainedModel):
    def __init__(self, config: BlocknasDeciConfig) -> None:
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        layers, attending = [], 0
        for i, block in enumerate(config.block_configs):
            layers.append(DeciLMDecoderLayer(config, i, attending))
            attending += not block.attention.no_op
        self.layers = nn.ModuleList(layers)
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config=config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: DynamicCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache_position: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, DynamicCache | None]:
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache()
        seen = past_key_values.get_seq_length() if past_key_values is not None else 0
        positions = (
            cache_position
            if cache_position is not None
            else torch.arange(seen, seen + inputs_embeds.shape[1], device=inputs_embeds.device)
        )
        rotary_positions = position_ids if position_ids is not None else positions.unsqueeze(0)
        mask = create_causal_mask(
            config=self.config,
            input_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache_position=positions,
            past_key_values=past_key_values,
            position_ids=rotary_positions,
        )
        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, rotary_positions)
        for layer in self.layers:
            hidden_states = layer(
                hidden_states,
                attention_mask=mask,
                position_embeddings=position_embeddings,
                past_key_values=past_key_values,
                cache_position=positions,
            )
        return self.norm(hidden_states), past_key_values


class DeciLMForCausalLM(DeciLMPreTrainedModel, GenerationMixin):  # type: ignore[misc]  # as transformers' own
    _tied_weights_keys = ["lm_head.weight"]  # type: ignore[assignment]  # transformers declares it None

    def __init__(self, config: BlocknasDeciConfig) -> None:
        super().__init__(config)
        self.model = DeciLMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embed_tokens

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: DynamicCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        cache_position: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        hidden_states, cache = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            cache_position=cache_position,
            use_cache=use_cache,
        )
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=cache)
