"""Load test of the experience pool: many processes record trials at once; count what landed.

Each trial is what the callback does per fit: ``start()`` then ``finish()`` (two transactions).
Runs on a SQLite file and on PostgreSQL (a throw-away local server unless ``--postgres-url``)
and prints a markdown table.

    python benchmarks/pool_load.py --processes 8 --trials 200
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_meta.hpo.pool import ExperiencePool  # noqa: E402


def write_trials(url: str, writer: int, trials: int, barrier, times) -> None:
    pool = ExperiencePool(url)
    barrier.wait()
    start = time.time()
    for i in range(trials):
        run_id = pool.start(f"task{writer % 4}", {"n_samples": 1000 + i, "n_classes": 5}, {"writer": writer, "i": i, "lr": 0.01})
        pool.finish(run_id, "complete", final_metric=i / trials, curve=[0.1, 0.5, i / trials], duration_s=1.0)
    times.put((start, time.time()))
    pool.close()


def measure(url: str, processes: int, trials: int) -> dict[str, float]:
    ExperiencePool(url).close()
    context = multiprocessing.get_context("spawn")
    barrier, times = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=write_trials, args=(url, w, trials, barrier, times)) for w in range(processes)]
    for worker in workers:
        worker.start()
    spans = [times.get(timeout=1800) for _ in workers]
    for worker in workers:
        worker.join()
    failed = sum(worker.exitcode != 0 for worker in workers)
    with ExperiencePool(url) as pool:
        frame = pool.frame(status=None)
    pairs = set(zip(frame["hp_writer"], frame["hp_i"]))
    expected = {(w, i) for w in range(processes) for i in range(trials)}
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    return {
        "rows": len(frame),
        "lost": len(expected - pairs),
        "duplicated": len(frame) - len(pairs),
        "not complete": int((frame["status"] != "complete").sum()),
        "failed writers": failed,
        "seconds": seconds,
        "trials/s": processes * trials / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database; default: start a local server")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        results["SQLite (WAL, file)"] = measure(f"sqlite:///{folder}/pool.db", args.processes, args.trials)
    server = None
    url = args.postgres_url
    if url is None:
        from tests.hpo.conftest import PostgresServer

        server = PostgresServer()
        url = server.new_database()
    try:
        results["PostgreSQL (psycopg, local)"] = measure(url, args.processes, args.trials)
    finally:
        if server is not None:
            server.stop()

    print(f"{args.processes} processes x {args.trials} trials (start + finish each), expected rows: {args.processes * args.trials}\n")
    columns = ["rows", "lost", "duplicated", "not complete", "failed writers", "seconds", "trials/s"]
    print("| backend | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for backend, row in results.items():
        cells = [f"{row[c]:.1f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        print(f"| {backend} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
