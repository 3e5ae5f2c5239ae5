"""Issue 5: concurrent upserts into the performance table, with nothing lost and nothing duplicated.

    .venv/bin/python benchmarks/table_writes.py --writers 8 --rows 20000 \\
        --url postgresql+psycopg://postgres@127.0.0.1:5432/test

W writer processes (spawned, each with its own engine, as Ray workers have) share R block rows. Each
writer records its share the way a block task does: one transaction marking a block running (an upsert),
one recording its result; ``--batch B`` puts B blocks in each (as the blocks of one network are). Every
writer also re-records the first tenth of the next writer's share, as a retried task would, so rows are
written concurrently by two processes. On PostgreSQL the rows go to a
fresh schema, dropped afterwards; on SQLite to the file given. Prints a table and, as its last line, one
JSON object: ``lost`` counts rows missing or not done, ``duplicated`` rows beyond one per block.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
import uuid

from sqlalchemy import create_engine, func, select, text

from blocknas.orchestrator.storage import PerformanceStore
from blocknas.orchestrator.storage._models import BlockScoreRow


def _row(i: int) -> dict:
    return {
        "job_hash": f"job{i:08d}",
        "experiment": "bench",
        "space": "bench",
        "scorer_hash": "bench",
        "slot_index": i % 20,
        "slot": f"s{i % 20}",
        "block": f"s{i % 20}:b{i}",
        "choice_index": i % 10,
        "network_hash": f"net{i}",
        "context_index": 0,
    }


def _writer(url: str, indices: list[int], batch: int, start, queue) -> None:
    store = PerformanceStore(url, create=False)
    start.wait()
    started = time.perf_counter()
    for at in range(0, len(indices), batch):
        chunk = indices[at : at + batch]
        store.mark_running([_row(i) for i in chunk], node="bench", host="bench", pid=0)
        store.record_result([f"job{i:08d}" for i in chunk], {"accuracy": 1.0, "device": "cpu"})
    queue.put(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--url", help="a PostgreSQL or SQLite URL (default: a fresh SQLite file)")
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="blocks per transaction: 1 as a one-block task writes, more as a network's blocks or "
        "the driver's lease claims are written",
    )
    args = parser.parse_args()

    schema = None
    url = args.url or f"sqlite:///{tempfile.mkdtemp(prefix='blocknas-writes-')}/perf.db"
    admin = None
    if url.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(url)
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    try:
        PerformanceStore(url)  # the schema, once, as the driver creates it
        shares = [list(range(w, args.rows, args.writers)) for w in range(args.writers)]
        ctx = mp.get_context("spawn")
        start, queue = ctx.Event(), ctx.Queue()
        procs = []
        for w, share in enumerate(shares):
            retried = shares[(w + 1) % args.writers][: len(share) // 10]
            procs.append(ctx.Process(target=_writer, args=(url, share + retried, args.batch, start, queue)))
        for p in procs:
            p.start()
        time.sleep(2.0)  # every writer imported and connected
        started = time.perf_counter()
        start.set()
        for p in procs:
            p.join()
        seconds = time.perf_counter() - started
        assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
        sizes = [len(s) + len(s) // 10 for s in shares]  # the rows each writer records
        writes = sum(sizes)

        engine = create_engine(url)
        with engine.connect() as c:
            table = BlockScoreRow.__table__
            total = c.execute(select(func.count()).select_from(table)).scalar()
            distinct = c.execute(select(func.count(func.distinct(table.c.job_hash)))).scalar()
            done = c.execute(select(func.count()).select_from(table).where(table.c.status == "done")).scalar()
        engine.dispose()
    finally:
        if schema:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    result = {
        "writers": args.writers,
        "rows": args.rows,
        "batch": args.batch,
        "seconds": seconds,
        "rows_per_second": args.rows / seconds,
        "writes": writes,
        "transactions_per_second": 2 * sum(-(-n // args.batch) for n in sizes) / seconds,
        "lost": args.rows - done,
        "duplicated": total - distinct,
        "store": url.split(":")[0],
    }
    print(
        f"| store | writers | rows | rows per transaction | block writes (running, then done) | seconds | rows/s "
        f"| lost | duplicated |\n|---|---|---|---|---|---|---|---|---|\n"
        f"| {result['store']} | {args.writers} | {args.rows} | {args.batch} | {writes} | {seconds:.2f} | "
        f"{result['rows_per_second']:.0f} | {result['lost']} | {result['duplicated']} |"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
