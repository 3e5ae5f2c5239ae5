"""The main job (``blocknas run``) and the solver-only job (``blocknas solve``); the read side of an
experiment they write is ``blocknas.orchestrator.experiments``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from blocknas.orchestrator import tracking
from blocknas.orchestrator.code_fingerprint import changed_parts
from blocknas.orchestrator.distributed.leases import LeaseKeeper, measure_blocks
from blocknas.orchestrator.distributed.tasks import TaskContext, require_gpu, start_ray
from blocknas.orchestrator.experiments import measured_table, open_run
from blocknas.orchestrator.hashing import content_hash
from blocknas.orchestrator.observers import MlflowObserver, Observer
from blocknas.orchestrator.output_files import write_atomically
from blocknas.orchestrator.pipeline.block_views import block_rows, log_block_table
from blocknas.orchestrator.pipeline.cost_stage import TargetCosts, ensure_costs, load_costs
from blocknas.orchestrator.pipeline.report import (
    build_summary,
    format_fronts,
    measured_checks,
    write_summary,
)
from blocknas.orchestrator.pipeline.solve_stage import (
    link_front_files,
    solve_fronts,
    write_front_files,
)
from blocknas.orchestrator.pipeline.verify_stage import (
    refine_search,
    refine_summary,
    verification_scorer_hash,
    verified_networks,
)
from blocknas.orchestrator.planning import (
    pending_networks,
)
from blocknas.orchestrator.predictors import fit_prediction
from blocknas.orchestrator.run_context import RunContext
from blocknas.orchestrator.settings import RunSettings, ScorerSettings
from blocknas.solvers import BlockTable, check_budgets


class BlockFailuresError(RuntimeError):
    """Some block jobs failed; they stay unfinished and the next run retries them."""


@dataclass(frozen=True)
class JobResult:
    summary: dict
    summary_path: Path


def _output_dir(settings: RunSettings, kind: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return settings.output_dir / settings.name / f"{kind}-{stamp}"


def _scorer_params(scorer: ScorerSettings) -> dict:
    data = {f"data.{k}": v for k, v in (scorer.data or {}).items()}
    return {f"scorer.{k}": v for k, v in scorer.settings_dict().items()} | {"scorer.kind": scorer.kind} | data


def _check_scorer_input(settings: RunSettings) -> None:
    """A lookup scorer's own check of what it reads (the ``bld`` scorer's text, tokenized as the jobs will),
    before anything is stored or submitted; read-only commands never pay for it."""
    from blocknas.workers.scoring import SCORERS

    check = SCORERS.get(settings.scorer.kind).check
    if check is not None:
        check(settings.space, settings.scorer.settings)


def run_search(settings: RunSettings, show_progress: bool = True) -> JobResult:
    """Plan, measure what is missing on Ray, persist, solve every target's front, write the summary."""
    _refuse_missing_gpus(settings)
    _check_scorer_input(settings)  # first: input the scorer cannot read is refused with nothing stored
    run = open_run(settings)
    store, plan = run.store, run.plan
    code = (plan.scorer or {}).get("code", {})
    code_before = store.experiment_code(settings.name, settings.config_hash)
    store.record_experiment(settings.name, settings.config_hash, settings.config_yaml, code)
    done = store.done_job_hashes([b.job_hash for b in plan.blocks])
    pending = pending_networks(plan, done)
    pending_blocks = sum(len(v) for v in pending.values())
    changed = changed_parts(code_before, code) if code_before is not None and pending_blocks else []
    contexts = (
        f"context network {' '.join(plan.contexts[0])}"
        if len(plan.contexts) == 1
        else f"{len(plan.contexts)} sampled context networks"
    )
    if settings.search.whole_networks:
        print(
            f"{settings.name}: {settings.search.method} over {settings.space.num_networks} networks, at most "
            f"{settings.search.settings.evaluations} network evaluations within {settings.solver.budgets}",
            flush=True,
        )
    else:
        print(
            f"{settings.name}: {len(plan.blocks)} block measurements ({settings.scorer.estimator.kind} "
            f"estimator, {contexts}), {len(done)} already done, "
            + (f"code changed ({', '.join(changed)}): " if changed else "")
            + f"{pending_blocks} to measure in {len(pending)} network evaluations",
            flush=True,
        )

    params = {
        "config_hash": settings.config_hash,
        "space": settings.space.name,
        "blocks_total": len(plan.blocks),
        "networks_total": len(plan.networks),
        "estimator": settings.scorer.estimator.kind,
        "predictor": settings.solver.predictor,
        "contexts": len(plan.contexts),
        **_scorer_params(settings.scorer),
    }
    observer = _observer(settings).run_start("run", {"blocknas.config_hash": settings.config_hash}, params)
    experiment_id, parent = observer.experiment_id, observer.run_id
    out_dir = _output_dir(settings, "run")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(out_dir / "config.yaml", settings.config_yaml)
    status = "FAILED"
    try:
        costs = ensure_costs(run)  # starts Ray only if a measured target is not stored yet
        trained = 0
        ctx = TaskContext(
            settings.name,
            settings.space.name,
            plan.scorer_hash,
            _scorer_params(settings.scorer),
            settings.storage_url,
            settings.tracking.uri,
            experiment_id,
            parent,
            settings.tracking.block_runs,
        )
        if settings.search.whole_networks:
            result = _search_networks_and_write(run, costs, out_dir, observer, ctx)
            status = "FINISHED"
            return result
        if pending:
            started = time.perf_counter()
            with LeaseKeeper(store, settings.cluster.lease_seconds) as lease:
                outcomes = measure_blocks(store, plan, ctx, settings.cluster, lease, show_progress)
            failed = [o for o in outcomes if not o.ok]
            trained = sum(len(o.block_keys) for o in outcomes if o.ok)
            print(
                f"measured {trained} blocks with {len(outcomes)} network evaluations in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            if failed:
                keys = [k for o in failed for k in o.block_keys]
                raise BlockFailuresError(
                    f"{len(keys)} blocks failed ({', '.join(keys)}); their errors are in `blocknas blocks "
                    "--status failed`; the next `blocknas run` retries only them"
                )
        result = _solve_and_write(
            run,
            costs,
            out_dir,
            observer,
            blocks_trained=trained,
            blocks_cached=len(done),
            refine_ctx=ctx if settings.refine.rounds else None,
        )
        status = "FINISHED"
        return result
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run was stopped, not broken
        status = "KILLED"
        raise
    finally:
        observer.run_end(status, "the run was stopped (SIGTERM or Ctrl-C)" if status == "KILLED" else None)


def _search_networks_and_write(
    run: RunContext,
    costs: dict[str, TargetCosts],
    out_dir: Path,
    observer: Observer,
    ctx: TaskContext,
) -> JobResult:
    from blocknas.orchestrator.search.network_stage import run_network_search
    from blocknas.orchestrator.storage import public_url

    settings = run.settings
    start_ray(settings.cluster)
    search = run_network_search(run, costs, replace(ctx, scorer_hash=verification_scorer_hash(run.plan)))
    summary = {
        "experiment": settings.name,
        "config_hash": settings.config_hash,
        "store": public_url(settings.storage_url),
        "tracking_uri": settings.tracking.uri,
        "mlflow_run_id": observer.run_id,
        "output_dir": str(out_dir),
        "budgets": settings.solver.budgets,
        "targets": {name: {"metric": tc.target.metric, "version": tc.version} for name, tc in costs.items()},
        "search": search,
    }
    path = write_summary(summary, out_dir)
    observer.front(
        [path],
        {"search.evaluations": search["evaluations"]}
        | ({"search.pick_accuracy": search["pick"]["verified_accuracy"]} if search["pick"] else {}),
    )
    pick = search["pick"]
    print(
        f"{search['method']}: {search['evaluations']} networks evaluated ({search['read_back']} read back), "
        + (
            f"pick {' '.join(pick['blocks'])}: verified {pick['verified_accuracy']:.3f}, "
            + ", ".join(f"{k} {v:g}" for k, v in pick["costs"].items())
            if pick
            else "no pick"
        ),
        flush=True,
    )
    return JobResult(summary, path)


def _run_with_figures(settings: RunSettings, digest: str, out_dir: Path, newest: int = 20) -> Path | None:
    """The newest of the experiment's last ``newest`` run and solve folders whose figures are those of
    ``digest`` (``summary.json``'s ``figures_digest``) and still on disk; None when there is none."""
    folders = sorted(
        (f for f in (settings.output_dir / settings.name).glob("*-*") if f.is_dir() and f != out_dir),
        key=lambda f: f.stat().st_mtime,
        reverse=True,
    )
    for folder in folders[:newest]:
        try:
            summary = json.loads((folder / "summary.json").read_text())
        except (OSError, ValueError):
            continue
        if summary.get("figures_digest") == digest and (folder / "figures.html").exists():
            return folder
    return None


def _observer(settings: RunSettings) -> Observer:
    """What records the run: MLflow at ``tracking.uri`` (a run without it gets a ``NoObserver`` when it starts)."""
    return MlflowObserver(settings.tracking.uri, settings.name, settings.tracking.artifact_location)


def _refuse_missing_gpus(settings: RunSettings) -> None:
    """CUDA asked for where Ray has no GPU is refused before anything is written."""
    asks = [f"targets.{t.name}.device=cuda" for t in settings.targets if t.device == "cuda"]
    asks += ["scorer.device=cuda"] if settings.scorer.device == "cuda" else []
    if asks:
        require_gpu(settings.cluster, " and ".join(asks))


def run_solve(settings: RunSettings) -> JobResult:
    """Only the solver stage, from what the table holds: no Ray, no training, no measuring."""
    run = open_run(settings)
    costs = load_costs(run)
    stored = measured_table(run, costs)
    # A budget nothing fits is refused before anything is written, an MLflow run included.
    check_budgets(stored[1], settings.solver.budgets)
    observer = _observer(settings).run_start(
        "solve",
        {"blocknas.config_hash": settings.config_hash},
        {"config_hash": settings.config_hash, "budgets": json.dumps(settings.solver.budgets)},
    )
    status = "FAILED"
    try:
        result = _solve_and_write(
            run,
            costs,
            _output_dir(settings, "solve"),
            observer,
            blocks_trained=0,
            blocks_cached=len(run.plan.blocks),
            stored=stored,
        )
        status = "FINISHED"
        return result
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run was stopped, not broken
        status = "KILLED"
        raise
    finally:
        observer.run_end(status)


def _solve_and_write(
    run: RunContext,
    costs: dict[str, TargetCosts],
    out_dir: Path,
    observer: Observer,
    *,
    blocks_trained: int,
    blocks_cached: int,
    refine_ctx: TaskContext | None = None,
    stored: tuple[dict, BlockTable] | None = None,  # (measured networks, block table) read already
) -> JobResult:
    settings, store, plan = run.settings, run.store, run.plan
    measured, table = stored or measured_table(run, costs)
    scores = store.block_scores([b.job_hash for b in plan.blocks])
    block_view = log_block_table(
        settings.tracking.uri,
        observer.experiment_id,
        observer.run_id,
        scores,
        block_rows(scores, table, plan.contexts),
        settings.config_yaml,
    )
    refined = None
    if refine_ctx is not None:
        start_ray(settings.cluster)
        ctx = replace(refine_ctx, scorer_hash=verification_scorer_hash(plan))
        refined = refine_summary(refine_search(run, table, measured, costs, ctx), table, settings.refine)
    prediction = fit_prediction(settings.solver.predictor, settings.space, table, measured)
    started = time.perf_counter()
    result = solve_fronts(run, table, prediction, costs)
    solve_seconds = time.perf_counter() - started
    ranges, conversions = measured_checks(settings.space, plan, measured, costs)
    summary = build_summary(
        settings,
        result,
        costs,
        blocks_total=len(plan.blocks),
        evaluations=len(plan.networks),
        blocks_trained=blocks_trained,
        blocks_cached=blocks_cached,
        contexts=plan.contexts,
        mlflow_run_id=observer.run_id,
        output_dir=out_dir,
        ranges=ranges,
        conversions=conversions,
    )
    verified = verified_networks(store, plan, table.slots)
    # What the figures show: a later run that would draw the same links its files to the earlier run's.
    summary["figures_digest"] = content_hash(
        {
            "config": settings.config_hash,
            "table": result.table_hash,
            "targets": summary["targets"],
            "verified": verified,
        }
    )
    earlier = _run_with_figures(settings, summary["figures_digest"], out_dir)
    files = (
        link_front_files(earlier, out_dir)
        if earlier is not None
        else write_front_files(out_dir, settings, result, costs, summary, verified)
    )
    summary["solve_seconds"] = round(solve_seconds, 4)
    summary["fronts_reused"] = list(result.reused)
    if block_view is not None:
        summary["mlflow_block_view"] = tracking.ui_url(settings.tracking.uri, block_view)
    if refined is not None:
        summary["refine"] = refined
    summary_path = write_summary(summary, out_dir)
    observer.front(
        files + [summary_path],
        {f"front_points.{k}": len(v) for k, v in result.fronts.items()} | {"solve_seconds": solve_seconds},
    )
    print(format_fronts(summary))
    return JobResult(summary, summary_path)
