"""The block table as a person reads it: per block its value, its accuracy change against the slot's base
block and against its context network, and its cost on every target; and that table written into MLflow
(each block run, and the search's parent run as a table artifact) so the MLflow UI can compare blocks.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING

from blocknas.orchestrator.answers import ACCURACY, Objective
from blocknas.orchestrator.storage import BlockScore

if TYPE_CHECKING:  # `blocknas blocks` reads the table without MLflow, Pyomo or torch: they load in ~4 s
    from blocknas.solvers import BlockTable

VIEW_FILTER_CHARS = 15_000  # room left for the columns in MLflow's 20,000 characters of an experiment tag


def base_deltas(scores: list[BlockScore]) -> dict[str, float]:
    """Accuracy of each block's network minus that of the slot's first (base) choice, in the same context
    network and scorer. Positive: the block made the context network more accurate than the base block."""

    def key(s):
        return s.scorer_hash, s.context_index, s.slot

    base = {key(s): s.accuracy for s in scores if s.choice_index == 0 and s.accuracy is not None}
    return {
        s.job_hash: round(s.accuracy - base[key(s)], 4) for s in scores if s.accuracy is not None and key(s) in base
    }


def context_networks(scores: list[BlockScore]) -> dict[tuple[str, int], BlockScore]:
    """Per (scorer, context index), a row measured on the context network itself: the network every slot
    of that context shares (each other network differs from it in one slot, so holds one block)."""
    counts = Counter((s.scorer_hash, s.context_index, s.network_hash) for s in scores)
    best: dict[tuple[str, int], tuple[int, BlockScore]] = {}
    for s in scores:
        n = counts[s.scorer_hash, s.context_index, s.network_hash]
        if n > best.get((s.scorer_hash, s.context_index), (0, None))[0]:
            best[s.scorer_hash, s.context_index] = (n, s)
    return {k: row for k, (_, row) in best.items()}


def context_deltas(scores: list[BlockScore]) -> dict[str, float]:
    """Accuracy of each block's network minus its context network's: the block's own swap-in value."""
    contexts = context_networks(scores)
    out = {}
    for s in scores:
        ctx = contexts.get((s.scorer_hash, s.context_index))
        if s.accuracy is not None and ctx is not None and ctx.accuracy is not None:
            out[s.job_hash] = round(s.accuracy - ctx.accuracy, 4)
    return out


def block_rows(
    scores: list[BlockScore], table: BlockTable | None = None, contexts: tuple[tuple[str, ...], ...] = ()
) -> list[dict]:
    """One row per measured block: ``value`` (the table's, over every context), ``delta_vs_base``,
    ``delta_vs_context``, ``cost.<target>`` (the block's own cost) and the context network's blocks."""
    by_base, by_context = base_deltas(scores), context_deltas(scores)
    rows = []
    for s in scores:
        row = {
            "slot": s.slot,
            "block": s.block,
            "context": s.context_index,
            "status": s.status,
            "accuracy": s.accuracy,
            "delta_vs_base": by_base.get(s.job_hash),
            "delta_vs_context": by_context.get(s.job_hash),
            "train_seconds": s.train_seconds,
            "job_hash": s.job_hash,
            "mlflow_run_id": s.mlflow_run_id,
        }
        if s.context_index < len(contexts):
            row["context_network"] = " ".join(contexts[s.context_index])
        if table is not None:
            i, j = s.slot_index, s.choice_index
            row["value"] = round(float(table.accuracy[i][j]), 6)
            row |= {f"cost.{name}": float(per_slot[i][j]) for name, per_slot in table.costs.items()}
        rows.append(row)
    return rows


def log_block_table(
    uri: str,
    experiment_id: str | None,
    parent_run_id: str | None,
    scores: list[BlockScore],
    rows: list[dict],
    config_yaml: str,
) -> str | None:
    """Best effort, like all tracking; returns the URL path of the search's block view (None without one).

    The parent run gets ``config.yaml`` and ``block_table.json`` (a table artifact the UI shows and
    compares). Each block run of the table that has no ``value`` yet (measured by this search, or by an
    earlier one that stopped before its solve) gets its value, deltas and costs as metrics, its context
    network as a tag and a note linking the runs: once, whichever search logs it. The experiment gets a saved
    view of the table's block runs, flat, with those metrics as columns (``block_view``)."""
    from blocknas.orchestrator import tracking

    if parent_run_id is None:
        return None
    client = tracking.client_for(uri)
    tracking.best_effort("log config.yaml", client.log_text, parent_run_id, config_yaml, "config.yaml")
    columns = {key: [row.get(key) for row in rows] for key in dict.fromkeys(k for row in rows for k in row)}
    tracking.best_effort("log the block table", client.log_table, parent_run_id, columns, "block_table.json")
    run_ids = [s.mlflow_run_id for s in scores if s.mlflow_run_id]
    if not run_ids:  # tracking.block_runs=batched: the blocks are metrics of the parent run
        return None
    try:
        logged = tracking.runs_with_metric(uri, experiment_id, run_ids, "value")
    except Exception as exc:  # noqa: BLE001 - tracking never stops a search
        tracking.warn(f"could not read the block runs ({exc}); their values are not logged")
        return None
    contexts = context_networks(scores)
    base = f"#/experiments/{experiment_id}/runs"
    for score, row in zip(scores, rows, strict=True):
        if not score.mlflow_run_id or score.mlflow_run_id in logged:
            continue
        context = contexts.get((score.scorer_hash, score.context_index))
        values = {
            k: v
            for k, v in row.items()
            if (k in ("value", "delta_vs_base", "delta_vs_context") or k.startswith("cost.")) and v is not None
        }
        links = [f"- search: [{parent_run_id[:8]}]({base}/{parent_run_id})"]
        if context is not None and context.mlflow_run_id:
            links.append(f"- context network (measured in [{context.block}]({base}/{context.mlflow_run_id}))")
        note = (
            f"**{score.block}** in context network {score.context_index}: value "
            f"{row.get('value', float('nan')):+.4g} points (vs. base {row['delta_vs_base']}, vs. context "
            f"{row['delta_vs_context']})\n\n" + "\n".join(links)
        )
        tags = {"blocknas.context_network": row.get("context_network", ""), "mlflow.note.content": note}
        tracking.best_effort(
            f"log the value of {score.block}", tracking.log_metrics, uri, score.mlflow_run_id, values, tags
        )
    view = block_view(run_ids, [k for k in columns if k.startswith("cost.")])
    key = f"blocks-{parent_run_id}"
    tracking.best_effort(
        "save the block view",
        client.set_experiment_tag,
        experiment_id,
        f"{tracking.SHARED_VIEW}{key}",
        json.dumps(view),
    )
    return tracking.runs_page(experiment_id, viewStateShareKey=key)


def block_view(run_ids: list[str], cost_columns: list[str]) -> dict:
    """The runs table of MLflow's UI as a saved ("shared") view: these block runs, flat (none folded under
    its parent), sorted by value, with value, deltas, costs, accuracy and context network as columns. More
    runs than the view's filter can name (MLflow keeps 20,000 characters a tag): every block run of the
    MLflow experiment (one per blocknas experiment) instead."""

    def metric(name):
        return f"metrics.`{name}`"

    columns = [
        metric(c) for c in ("value", "delta_vs_context", "delta_vs_base", *cost_columns, "accuracy", "train_seconds")
    ] + ["tags.`blocknas.context_network`"]
    named = "attributes.run_id IN (" + ", ".join(f"'{r}'" for r in run_ids) + ")"
    search = named if len(named) < VIEW_FILTER_CHARS else "tags.`blocknas.kind` = 'block'"
    return {
        "searchFilter": search,
        "orderByKey": metric("value"),
        "orderByAsc": False,
        "selectedColumns": columns,
        "columnOrder": columns,
    }


def format_blocks(scores: list[BlockScore], deltas: dict[str, float], objective: Objective = ACCURACY) -> str:
    """The table ``blocknas blocks`` prints: each block's value and its change against the slot's base block
    in the objective's own terms (a minimised loss as the loss, not the negated value the table holds)."""
    label = "acc %" if objective == ACCURACY else objective.name[:7]
    header = (
        f"{'experiment':<14} {'block':<20} {'status':<8} {'att':>3} {label:>7} {'delta':>7} {'loss':>7} "
        f"{'train s':>8} {'node':<12}"
    )
    lines = [header, "-" * len(header)]
    for s in scores:
        acc = f"{objective.value(s.accuracy):7.2f}" if s.accuracy is not None else f"{'-':>7}"
        delta = f"{objective.value(deltas[s.job_hash]):7.2f}" if s.job_hash in deltas else f"{'-':>7}"
        loss = f"{s.loss:7.3f}" if s.loss is not None else f"{'-':>7}"
        secs = f"{s.train_seconds:8.1f}" if s.train_seconds is not None else f"{'-':>8}"
        lines.append(
            f"{s.experiment:<14} {s.block:<20} {s.status:<8} {s.attempts:>3} {acc} {delta} {loss} {secs} "
            f"{(s.node or '-')[:12]:<12}"
        )
    return "\n".join(lines)
