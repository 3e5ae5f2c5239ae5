"""The language-model side (Puzzle): a heterogeneous Llama-family decoder, real text, blockwise local
distillation, replace-one-block scoring and per-block costs. Pure compute, like the rest of ``workers``."""
