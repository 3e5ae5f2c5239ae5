"""``blocknas export-library``: an LLM experiment's measured blocks as a block library in NVIDIA Puzzle's own
JSON format, so libraries move both ways (``blocknas targets add NAME --file`` reads it back, and
NVlabs/puzzle's ``mip_nas`` can solve it).

Layer i's variants are its attention x FFN sub-block variants, named ``<attention>+<ffn>``; every stat is a
target of the experiment (its cost of the two sub-blocks, and ``attention_<target>`` / ``ffn_<target>``
apart), plus ``num_kv_heads`` and ``ffn_intermediate_size``; ``metrics.kl_div`` is the two sub-blocks'
summed replace-one-block KL (minus their block values). Costs every network pays (embeddings, LM head) are
not per layer and are left out, as in Puzzle's libraries.
"""

from __future__ import annotations

from orchestrator.config import ConfigError, RunSettings


def export_library(settings: RunSettings) -> dict:
    from orchestrator.pipeline.run import experiment_table
    from workers.llm.decoder import LayerVariant, ffn_size_of, kv_heads_of

    if settings.space_definition.get("kind") != "llm":
        raise ConfigError(f"export-library exports language-model experiments (space.kind=llm), not "
                          f"space.kind={settings.space_definition.get('kind')}")
    table = experiment_table(settings)
    library = {}
    for layer in range(len(table.slots) // 2):
        attention, ffn = 2 * layer, 2 * layer + 1
        variants = {}
        for a, a_name in enumerate(table.choices[attention]):
            for f, f_name in enumerate(table.choices[ffn]):
                stats = {}
                for target, per_slot in table.costs.items():
                    stats[target] = float(per_slot[attention][a] + per_slot[ffn][f])
                    stats[f"attention_{target}"] = float(per_slot[attention][a])
                    stats[f"ffn_{target}"] = float(per_slot[ffn][f])
                stats |= {"num_kv_heads": kv_heads_of(a_name) or 0, "ffn_intermediate_size": ffn_size_of(f_name) or 0}
                kl = -float(table.accuracy[attention][a] + table.accuracy[ffn][f])
                variants[LayerVariant(a_name, f_name).name] = {"stats": stats, "metrics": {"kl_div": kl}}
        library[f"layer_{layer}"] = variants
    return library
