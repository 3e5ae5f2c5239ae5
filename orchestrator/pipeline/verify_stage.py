"""``blocknas run`` with ``refine.rounds > 0``: verify the solver's proposals as whole networks, refit, re-solve.

Each verification is a Ray task that scores the assembled network (trains it, or looks it up), writes a
``network_results`` row with the predictions beside the measurement, and logs a nested MLflow run
(``blocknas.kind=verify``). Costs of ``network_table`` targets are verified by their file (a per-network
measurement); analytic costs are exact; ``measured`` targets are taken from the block table.
Networks verified by earlier runs with the same scorer are read back and never evaluated again.
"""

from __future__ import annotations

import logging
import traceback

import ray

from blocknas.orchestrator import tracking
from blocknas.orchestrator.distributed.tasks import TaskContext
from blocknas.orchestrator.hashing import content_hash
from blocknas.orchestrator.pipeline.cost_stage import TargetCosts
from blocknas.orchestrator.pipeline.refine import Candidate, RefineResult, Verified, refine
from blocknas.orchestrator.planning import Plan, network_job
from blocknas.orchestrator.run_context import RunContext
from blocknas.orchestrator.settings import RefineSettings
from blocknas.orchestrator.storage import PerformanceStore, shared_store
from blocknas.orchestrator.targets.kinds import TARGET_KINDS
from blocknas.solvers import BlockTable
from blocknas.solvers.surrogate import Selection, SurrogateModel
from blocknas.workers.records import NetworkJob
from blocknas.workers.tabular import read_network_table

log = logging.getLogger(__name__)


def _verify(job: NetworkJob, candidate: Candidate, ctx: TaskContext, costs: dict) -> float | None:
    from blocknas.workers.scoring import score_network  # imported in the worker: keeps the driver light

    node = ray.get_runtime_context().get_node_id()
    key = ",".join(job.choices)
    run_id = None
    try:
        run_id = tracking.start_run(
            ctx.tracking_uri,
            ctx.mlflow_experiment_id,
            run_name=f"verify:{key}",
            tags={
                "blocknas.experiment": ctx.experiment,
                "blocknas.kind": "verify",
                "blocknas.node": node,
                "blocknas.network_hash": job.network_hash,
            },
            params={
                "network": key,
                "refine_round": candidate.round,
                "source": candidate.source,
                **(
                    {"predicted_accuracy": round(candidate.predicted_accuracy, 6)}
                    if candidate.predicted_accuracy is not None
                    else {}
                ),
                **ctx.scorer_params,
            },
            parent_run_id=ctx.parent_run_id,
        )
    except Exception as exc:  # noqa: BLE001 - tracking is best effort
        log.warning("MLflow logging failed for %s: %s", key, exc)
    try:
        result = score_network(job)
    except Exception:  # noqa: BLE001
        if run_id:
            tracking.finish_run(
                ctx.tracking_uri, run_id, status="FAILED", tags={"blocknas.error": traceback.format_exc()}
            )
        return None
    shared_store(ctx.storage_url).record_network_result(
        {
            "experiment": ctx.experiment,
            "scorer_hash": ctx.scorer_hash,
            "network_key": key,
            "choices": list(job.choices),
            "accuracy": result.accuracy,
            "predicted_accuracy": candidate.predicted_accuracy,
            "costs": costs,
            "predicted_costs": candidate.predicted_costs,
            "refine_round": candidate.round,
            "source": candidate.source,
            "node": node,
            "device": result.device,
            "mlflow_run_id": run_id,
        }
    )
    if run_id:
        try:
            predicted = candidate.predicted_accuracy
            tracking.finish_run(
                ctx.tracking_uri,
                run_id,
                {
                    "accuracy": result.accuracy,
                    **(
                        {"predicted_accuracy": predicted, "prediction_error": result.accuracy - predicted}
                        if predicted is not None
                        else {}
                    ),
                    **{f"cost.{k}": v for k, v in costs.items()},
                },
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow logging failed for %s: %s", key, exc)
    return result.accuracy


_remote_verify = ray.remote(_verify)


def verification_scorer_hash(plan: Plan) -> str:
    """What a whole network's result depends on: the scorer and its data, not the block-table contexts."""
    return content_hash({"verify": plan.scorer})


def verify_networks(
    run: RunContext, ctx: TaskContext, candidates: list[Candidate], cost_record, names
) -> dict[Selection, float]:
    """Verify ``candidates`` whole as parallel Ray tasks; the accuracy of each that did not fail.
    ``cost_record(selection)`` is what the row stores as its costs, ``names(selection)`` its blocks."""
    settings, plan, futures = run.settings, run.plan, {}
    for c in candidates:
        job = network_job(settings.space_definition, names(c.selection), plan.spec)
        options = {
            "num_cpus": settings.cluster.cpus_per_block,
            "num_gpus": settings.cluster.gpus_per_block,
            "max_retries": settings.cluster.max_retries,
        }
        futures[_remote_verify.options(**options).remote(job, c, ctx, cost_record(c.selection))] = c.selection
    results = {}
    for future, selection in futures.items():
        accuracy = ray.get(future)
        if accuracy is None:
            print(
                f"verification of {settings.space.network_key(names(selection))} failed; see its MLflow run", flush=True
            )
        else:
            results[selection] = accuracy
    return results


def refine_search(
    run: RunContext,
    table: BlockTable,
    measured: dict[Selection, float],
    costs: dict[str, TargetCosts],
    ctx: TaskContext,
) -> RefineResult:
    """Run the loop of ``blocknas.orchestrator.pipeline.refine`` on the cluster (module docstring)."""
    settings, space = run.settings, run.settings.space
    files = {
        name: read_network_table(tc.target.file, tc.target.column, tc.target.key_column)
        for name, tc in costs.items()
        if TARGET_KINDS.get(tc.target.kind).per_network
    }

    def names(selection: Selection) -> tuple[str, ...]:
        return tuple(slot.choices[j] for slot, j in zip(space.slots, selection, strict=True))

    def lookup(selections) -> dict[Selection, dict[str, float]]:
        out = {}
        for s in selections:
            key = space.network_key(names(s))
            missing = [n for n, values in files.items() if key not in values]
            if missing:
                raise KeyError(
                    f"network {key!r} is not in the file of target(s) {missing}; per-network "
                    "targets must cover every network the loop may propose"
                )
            out[s] = {n: float(values[key]) for n, values in files.items()}
        return out

    exact = {name: SurrogateModel.additive(table.cost_offsets.get(name, 0.0), table.costs[name]) for name in costs}
    verified = Verified(dict(measured), lookup(measured))
    index_of = {names(s): s for s in measured}
    stored = run.store.network_results(ctx.scorer_hash)
    for row in stored:
        selection = index_of.get(tuple(row.choices)) or table.index_of(row.choices)
        verified.accuracy[selection] = row.accuracy
        verified.costs[selection] = lookup([selection])[selection]
    stored_before = len(verified.accuracy)

    def cost_record(selection: Selection) -> dict[str, float]:
        known = verified.costs.get(selection, {})
        return {name: known.get(name, model.predict(selection)) for name, model in exact.items()}

    def evaluate(candidates: list[Candidate]) -> dict[Selection, float]:
        return verify_networks(run, ctx, candidates, cost_record, names)

    def progress(round_index: int, picks) -> None:
        best = ", ".join(f"{p.accuracy:.2f}" if p.accuracy is not None else "-" for p in picks)
        print(
            f"refine round {round_index}: {len(verified.accuracy)} networks verified, best verified {best}", flush=True
        )

    return refine(
        settings.refine,
        table,
        SurrogateModel.additive(table.accuracy_offset, table.accuracy),
        exact,
        set(files),
        [settings.solver.budgets],
        verified,
        stored_before,
        evaluate,
        lambda candidates: lookup([c.selection for c in candidates]),
        progress,
        first_round=1 + max((r.refine_round for r in stored), default=0),
    )


def refine_summary(result: RefineResult, table: BlockTable, refine: RefineSettings) -> dict:
    return {
        "rounds": result.rounds,
        "evaluations": result.evaluations,
        "cost_measurements": result.cost_measurements,
        "stopped": result.stopped,
        "settings": refine.__dict__,
        "rejected_over_budget": len(result.rejected),
        "picks": [
            {
                "budgets": p.budgets,
                "blocks": [
                    f"{slot}:{table.choices[i][j]}" for i, (slot, j) in enumerate(zip(table.slots, p.pick, strict=True))
                ]
                if p.pick
                else None,
                "verified_accuracy": p.accuracy,
                "costs": p.costs,
            }
            for p in result.points
        ],
    }


def verified_networks(store: PerformanceStore, plan: Plan, slots: tuple[str, ...]) -> list[dict]:
    """Every network verified whole for this scorer (refine loop, LayerNAS), as the figures draw them:
    blocks as ``slot:choice``, measured accuracy and costs, the prediction beside them."""
    return [
        {
            "blocks": [f"{s}:{c}" for s, c in zip(slots, r.choices, strict=True)],
            "accuracy": r.accuracy,
            "predicted_accuracy": r.predicted_accuracy,
            "costs": r.costs,
            "source": r.source,
            "round": r.refine_round,
        }
        for r in store.network_results(verification_scorer_hash(plan))
    ]
