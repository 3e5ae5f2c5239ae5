"""Issue 5: per-job overhead of the whole orchestration path against bare Ray tasks doing the same upsert.

    .venv/bin/python benchmarks/orchestration.py --jobs 500 [--url sqlite:///...] [--tracking-uri ...]

Each job is a no-op block: a NAS-Bench-201 table lookup (microseconds once the table is loaded). The full
path is the product's: leases claimed by the driver (``measure_blocks``), one Ray task per network job,
the block row upserted running then done by the worker, MLflow logging, the progress loop. The bare path
is one Ray task per job doing the same lookup and the same two upserts, nothing else. Both run on one
local Ray instance after a warm-up round (worker processes started, the table loaded). Prints a table
and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray

from blocknas.orchestrator import tracking
from blocknas.orchestrator.config import ClusterSettings
from blocknas.orchestrator.distributed.leases import LeaseKeeper, measure_blocks
from blocknas.orchestrator.distributed.tasks import TaskContext, block_row, start_ray
from blocknas.orchestrator.hashing import content_hash
from blocknas.orchestrator.planning import BlockJob, JobSpec, Plan, network_job
from blocknas.orchestrator.storage import PerformanceStore, shared_store
from blocknas.workers.scoring import TabularSettings, score_network
from blocknas.workers.spaces.nb201 import EDGES, OPS

SPACE = {"kind": "nb201", "name": "nb201", "dataset": "cifar10"}


def synthetic_plan(jobs: int, tag: str) -> Plan:
    """``jobs`` blocks, each measured by a network of its own (distinct NAS-Bench-201 cells)."""
    scorer = {"kind": "tabular", "dataset": "cifar10", "data": tag, "settings": {}}
    blocks, networks = [], {}
    for k in range(jobs):
        choices = tuple(OPS[(k // len(OPS) ** i) % len(OPS)] for i in range(len(EDGES)))
        job = network_job(SPACE, choices, JobSpec(scorer, TabularSettings()))
        networks[job.network_hash] = job
        blocks.append(
            BlockJob(
                content_hash({"tag": tag, "k": k}),
                0,
                EDGES[0],
                choices[0],
                0,
                f"{EDGES[0]}:{choices[0]}#{k}",
                job.network_hash,
            )
        )
    return Plan((), content_hash(scorer), tuple(blocks), networks, scorer)


@ray.remote(num_cpus=1)
def _bare(job, block: BlockJob, ctx: TaskContext) -> None:
    result = score_network(job)
    store = shared_store(ctx.storage_url)
    store.mark_running([block_row(block, ctx)], node="bare", host="bare")
    store.record_result([block.job_hash], {"accuracy": result.accuracy, "device": result.device})


def run_full(store: PerformanceStore, plan: Plan, ctx: TaskContext, cluster: ClusterSettings) -> float:
    started = time.perf_counter()
    with LeaseKeeper(store, cluster.lease_seconds) as lease:
        outcomes = measure_blocks(store, plan, ctx, cluster, lease, show_progress=False)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:1]
    return time.perf_counter() - started


def run_bare(plan: Plan, ctx: TaskContext) -> float:
    started = time.perf_counter()
    ray.get([_bare.remote(plan.networks[b.network_hash], b, ctx) for b in plan.blocks])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--url", help="performance store (default: a fresh SQLite file)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: a fresh SQLite file)")
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument(
        "--block-runs",
        choices=("batched", "per_block"),
        default="batched",
        help="tracking.block_runs: batched is what `auto` picks for table lookups",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="blocknas-bench-"))
    url = args.url or f"sqlite:///{work}/perf.db"
    tracking_uri = args.tracking_uri or f"sqlite:///{work}/mlflow.db"
    store = PerformanceStore(url)
    cluster = ClusterSettings(None, args.num_cpus, 1.0, 0.0, 2, 256)
    start_ray(cluster)
    experiment_id = tracking.prepare_experiment(tracking_uri, "orchestration-bench", str(work / "artifacts"))
    parent = tracking.start_run(tracking_uri, experiment_id, "bench", {}, {})
    ctx = TaskContext(
        "bench",
        "nb201",
        "bench",
        {},
        url,
        tracking_uri,
        experiment_id,
        parent,
        block_runs=args.block_runs == "per_block",
    )

    warm = 4 * args.num_cpus
    run_full(store, synthetic_plan(warm, "warm-full"), ctx, cluster)
    run_bare(synthetic_plan(warm, "warm-bare"), ctx)

    full_plan, bare_plan = synthetic_plan(args.jobs, "full"), synthetic_plan(args.jobs, "bare")
    full_seconds = run_full(store, full_plan, ctx, cluster)
    bare_seconds = run_bare(bare_plan, ctx)

    hashes = [b.job_hash for b in full_plan.blocks]
    rows = store.block_scores(hashes)
    done = [r for r in rows if r.status == "done"]
    result = {
        "jobs": args.jobs,
        "seconds": full_seconds,
        "jobs_per_second": args.jobs / full_seconds,
        "bare_ray_jobs_per_second": args.jobs / bare_seconds,
        "overhead_ms_per_job": (full_seconds - bare_seconds) / args.jobs * 1000,
        "rows": len(done),
        "duplicates": len(rows) - len({r.job_hash for r in rows}),
        "store": url.split(":")[0],
        "tracking": tracking_uri.split(":")[0],
        "num_cpus": args.num_cpus,
        "block_runs": args.block_runs,
    }
    print(
        f"| path | jobs | seconds | jobs/s |\n|---|---|---|---|\n"
        f"| full (leases, Ray task, upserts, MLflow {args.block_runs}) | {args.jobs} | {full_seconds:.2f} | "
        f"{result['jobs_per_second']:.1f} |\n"
        f"| bare Ray task + same upserts | {args.jobs} | {bare_seconds:.2f} | "
        f"{result['bare_ray_jobs_per_second']:.1f} |\n"
        f"overhead {result['overhead_ms_per_job']:.2f} ms/job, rows {len(done)}/{args.jobs}, "
        f"duplicates {result['duplicates']}"
    )
    tracking.finish_run(tracking_uri, parent)
    ray.shutdown()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
