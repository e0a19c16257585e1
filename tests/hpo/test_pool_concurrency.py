"""Many writer processes on one pool: every run lands exactly once, on SQLite and on PostgreSQL."""

import multiprocessing

import pytest

from lightning_meta.hpo.pool import ExperiencePool

WRITERS, RUNS = 4, 50


def write_runs(url: str, writer: int, runs: int, barrier) -> None:
    """One writer process: half the runs in one shot, half through start/finish."""
    pool = ExperiencePool(url)
    barrier.wait()
    for i in range(runs):
        params = {"writer": writer, "i": i, "lr": 10 ** (-i % 4)}
        if i % 2:
            pool.record(f"task{writer}", {"n_samples": i}, params, objective=i / runs)
        else:
            run_id = pool.start(f"task{writer}", {"n_samples": i}, params)
            pool.finish(run_id, "complete", final_metric=i / runs, curve=[0.0, i / runs])
    pool.close()


def run_writers(url: str, writers: int, runs: int) -> None:
    ExperiencePool(url).close()  # the schema exists before the race starts
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers)
    processes = [context.Process(target=write_runs, args=(url, w, runs, barrier)) for w in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [p.exitcode for p in processes] == [0] * writers


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_concurrent_writers_lose_nothing(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'pool.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    run_writers(url, WRITERS, RUNS)
    with ExperiencePool(url) as pool:
        frame = pool.frame(status=None)
        assert len(frame) == pool.count() == WRITERS * RUNS
        assert frame.index.is_unique
        pairs = set(zip(frame["hp_writer"], frame["hp_i"]))
        assert pairs == {(w, i) for w in range(WRITERS) for i in range(RUNS)}
        assert (frame["status"] == "complete").all()
        assert (frame["objective"] == frame["hp_i"] / RUNS).all()
