"""Exports of an LLM experiment (no Ray, no training): ``blocknas export-child`` saves the best child within
``solver.budgets`` as a model directory; ``blocknas export-library`` writes the measured blocks as a block
library in NVIDIA Puzzle's own JSON format, so libraries move both ways (``blocknas targets add NAME
--file`` reads it back, and NVlabs/puzzle's ``mip_nas`` can solve it).

Layer i's variants are its attention x FFN sub-block variants, named ``<attention>+<ffn>``; every stat is a
target of the experiment (its cost of the two sub-blocks, and ``attention_<target>`` / ``ffn_<target>``
apart), plus ``num_kv_heads`` and ``ffn_intermediate_size``; ``metrics.kl_div`` is the two sub-blocks'
summed replace-one-block KL (minus their block values). Costs every network pays (embeddings, LM head) are
not per layer and are left out, as in Puzzle's libraries.
"""

from __future__ import annotations

import json
from pathlib import Path

from blocknas.orchestrator.output_files import atomic_directory, check_new_directory
from blocknas.orchestrator.settings import ConfigError, RunSettings

EVAL_WINDOWS = 16  # held-out windows of the eval split every verification reads


def _check_llm(settings: RunSettings, command: str) -> None:
    if settings.space_definition.get("kind") != "llm":
        raise ConfigError(
            f"{command} exports language-model experiments (space.kind=llm), not "
            f"space.kind={settings.space_definition.get('kind')}"
        )


def export_child(
    settings: RunSettings, directory: Path, global_steps: int = 0, show_progress: bool = True, format: str = "hf"
) -> dict:
    """The most accurate child within ``solver.budgets`` (exact, from the stored table), assembled from the
    run's distilled blocks, verified on the held-out ``eval`` split (``blocknas.workers.llm.verification``), and with
    ``global_steps`` > 0 globally distilled on the ``distill`` split and verified again; saved in ``format``
    (``blocknas.workers.llm.child_formats``: ``hf``, the Nemotron-NAS layout transformers and vLLM load, or
    ``blocknas``) plus ``blocknas.json`` (its blocks, predicted KL, costs, verification, notes)."""
    from blocknas.orchestrator.experiments import experiment_table
    from blocknas.solvers import best_within_budgets
    from blocknas.workers.llm.child_formats import CHILD_FORMATS
    from blocknas.workers.llm.parents import PARENT_KINDS
    from blocknas.workers.llm.scorer import assemble_child
    from blocknas.workers.registry import RegistryError

    check_new_directory(directory, "export-child")  # before any work
    try:
        saver = CHILD_FORMATS.get(format, "--format")
    except RegistryError as exc:
        raise ConfigError(str(exc)) from exc
    _check_llm(settings, "export-child")
    if not settings.solver.budgets:
        raise ConfigError(
            "export-child saves the best child within budgets: set at least one, e.g. solver.budgets.params=60000"
        )
    if not 0 <= global_steps <= 1_000_000:
        raise ConfigError(f"--global-steps must be between 0 and 1000000, got {global_steps}")
    table = experiment_table(settings)
    point = best_within_budgets(table, settings.solver.budgets)
    child = assemble_child(settings.space, point.blocks, settings.scorer.settings)
    saver.check(child)  # refused before the verification's work, with nothing written
    description = {
        "experiment": settings.name,
        "config_hash": settings.config_hash,
        "budgets": settings.solver.budgets,
        "predicted_kl": -point.predicted_accuracy,
        "costs": point.costs,
        "blocks": [s.key(c) for s, c in zip(settings.space.slots, point.blocks, strict=True)],
    }
    description |= _verified(settings, child, global_steps, show_progress)
    kind = PARENT_KINDS.get(settings.space.parent_kind)
    parent_settings = settings.space.parent_settings
    with atomic_directory(directory) as written:  # whole or not at all
        notes = saver.save(child, lambda d: kind.hf_files(parent_settings, d) if kind.hf_files else None, written)
        description |= {"format": format, "notes": notes}
        (written / "blocknas.json").write_text(json.dumps(description, indent=2) + "\n")
    return description


def _verified(settings: RunSettings, child, global_steps: int, show_progress: bool) -> dict:
    from tqdm import tqdm

    from blocknas.workers.llm.distillation import precision
    from blocknas.workers.llm.global_distillation import GlobalDistillSettings, distill_globally
    from blocknas.workers.llm.scoring import parent_reference
    from blocknas.workers.llm.text import windows
    from blocknas.workers.llm.verification import verify_child

    space, bld = settings.space, settings.scorer.settings
    with precision("cpu", bld.precision):  # verified as it was scored
        parent, encode = space.load_parent()
        decode = space.token_decoder()
        held_out = parent_reference(parent, windows("eval", encode, bld.context, EVAL_WINDOWS, source=bld.text))
        verification = {
            "parent": verify_child(parent, held_out, encode, decode),
            "assembled": verify_child(child, held_out, encode, decode),
        }
        if not global_steps:
            return {"verification": verification}
        tokens = windows("distill", encode, bld.context, bld.distill_windows, bld.seed + 1, bld.text)
        with tqdm(total=global_steps, desc="global distillation", unit="step", disable=not show_progress) as bar:
            curve = distill_globally(
                parent,
                child,
                tokens,
                GlobalDistillSettings(steps=global_steps, seed=bld.seed),
                progress=lambda _: bar.update(),
            )
        verification["globally_distilled"] = verify_child(child, held_out, encode, decode)
        return {"verification": verification, "global_distillation": {"steps": global_steps, "curve": curve}}


def export_library(settings: RunSettings) -> dict:
    from blocknas.orchestrator.experiments import experiment_table
    from blocknas.workers.llm.decoder import LayerVariant
    from blocknas.workers.llm.library import library_entry

    _check_llm(settings, "export-library")
    table = experiment_table(settings)
    library = {}
    for layer in range(len(table.slots) // 2):
        attention, ffn = 2 * layer, 2 * layer + 1
        library[f"layer_{layer}"] = {
            LayerVariant(a_name, f_name).name: library_entry(
                a_name,
                f_name,
                {t: c[attention][a] for t, c in table.costs.items()},
                {t: c[ffn][f] for t, c in table.costs.items()},
                -float(table.accuracy[attention][a] + table.accuracy[ffn][f]),
            )
            for a, a_name in enumerate(table.choices[attention])
            for f, f_name in enumerate(table.choices[ffn])
        }
    return library
