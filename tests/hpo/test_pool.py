"""The experience pool on SQLite and PostgreSQL: what goes in comes out of ``frame()``, and bad
databases fail with a PoolError that names them."""

import math
import socket
import threading
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from sqlalchemy import select

from lightning_meta.errors import ConfigError, DataError, PoolError
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.pool_schema import Run

FEATURES = {"n_samples": 1000, "n_classes": 5, "log_n_params": 9.2}


@pytest.fixture
def pool(pool_url):
    with ExperiencePool(pool_url) as pool:
        yield pool


def test_record_frame_round_trip(pool):
    configs = [{"lr": 0.1 / (i + 1), "batch_size": 16 * (i + 1), "optimizer": ["sgd", "adam"][i % 2]} for i in range(6)]
    ids = [pool.record(f"task{i % 3}", FEATURES, c, objective=0.5 + i / 20) for i, c in enumerate(configs)]
    assert len(set(ids)) == 6 and pool.count() == 6
    frame = pool.frame()
    assert list(frame.columns) == [
        "task", "objective", "status", "hp_lr", "hp_batch_size", "hp_optimizer",
        "f_n_samples", "f_n_classes", "f_log_n_params",
    ]
    assert list(frame.index) == ids
    assert list(frame["task"]) == [f"task{i % 3}" for i in range(6)]
    assert np.allclose(frame["objective"], [0.5 + i / 20 for i in range(6)])
    stored = frame[["hp_lr", "hp_batch_size", "hp_optimizer"]].rename(columns=lambda c: c[3:])
    assert stored.to_dict("records") == configs
    assert (frame["f_log_n_params"] == 9.2).all() and (frame["status"] == "complete").all()


def test_start_finish_and_stored_details(pool):
    run_id = pool.start("omniglot", {"ways": 5, "shots": 1}, {"inner_lr": 0.4})
    assert pool.count("running") == 1 and pool.frame().empty
    pool.finish(run_id, "complete", final_metric=0.25, best_metric=0.2, curve=[0.5, 0.3, 0.25],
                duration_s=3.5, metric_name="val_loss", direction="minimize")
    frame = pool.frame()
    assert frame.loc[run_id, "objective"] == -0.25  # higher is better after the direction
    with pool._unit_of_work() as orm:
        run = orm.execute(select(Run).where(Run.id == run_id)).scalar_one()
    assert (run.final_metric, run.best_metric, run.curve, run.duration_s) == (0.25, 0.2, [0.5, 0.3, 0.25], 3.5)
    assert (run.metric_name, run.direction, run.status) == ("val_loss", "minimize", "complete")
    assert run.versions["python"] and "torch" in run.versions and run.created_at is not None


def test_failed_and_diverged_runs_never_reach_the_frame(pool):
    good = pool.record("t", FEATURES, {"lr": 0.01}, 0.9)
    pool.record("t", FEATURES, {"lr": 10.0}, None, status="failed")
    nan_run = pool.record("t", FEATURES, {"lr": 5.0}, float("nan"), curve=[0.3, float("inf")])
    pool.record("t", FEATURES, {"lr": 3.0}, 0.1, status="diverged")
    started = pool.start("t", FEATURES, {"lr": 1.0})
    pool.finish(started, "complete", final_metric=float("inf"))
    pool.start("t", FEATURES, {"lr": 2.0})
    assert list(pool.frame().index) == [good]
    everything = pool.frame(status=None)
    assert len(everything) == 6
    assert everything.loc[nan_run, "status"] == "diverged"  # a non-finite metric is a divergence
    assert everything.loc[started, "status"] == "diverged"
    assert pool.count("failed") == 1 and pool.count("diverged") == 3 and pool.count("running") == 1
    assert math.isnan(everything.loc[nan_run, "objective"])


def test_import_frame_round_trip(pool, tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "dataset": np.repeat(["a", "b"], 5),
        "learning_rate": rng.uniform(1e-4, 1e-1, 10),
        "width": rng.integers(16, 128, 10),
        "error": rng.uniform(0, 1, 10),
        "n_rows": np.repeat([100, 200], 5),
    })
    df.loc[3, "error"] = np.nan
    stored = pool.import_frame(df, "dataset", ["learning_rate", "width"], "error", "minimize", ["n_rows"])
    assert stored == 10 and pool.count() == 10 and pool.count("diverged") == 1
    frame = pool.frame()
    expected = df.drop(index=3)
    assert list(frame["task"]) == list(expected["dataset"])
    assert np.allclose(frame["objective"], -expected["error"])
    assert list(frame["hp_width"]) == list(expected["width"])
    assert list(frame["f_n_rows"]) == list(expected["n_rows"])

    with ExperiencePool(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        hp = [c for c in frame.columns if c.startswith("hp_")]
        f = [c for c in frame.columns if c.startswith("f_")]
        copy.import_frame(frame, "task", hp, "objective", "maximize", f)
        pd.testing.assert_frame_equal(copy.frame().reset_index(drop=True), frame.reset_index(drop=True))


def test_import_frame_names_missing_columns(pool):
    with pytest.raises(DataError, match=r"lacks columns \['lr'\]"):
        pool.import_frame(pd.DataFrame({"task": ["a"], "y": [1.0]}), "task", ["lr"], "y", "maximize")


def test_import_optuna(pool):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=1))

    def objective(trial):
        x = trial.suggest_float("x", -2, 2)
        depth = trial.suggest_int("depth", 1, 4)
        trial.report(x * x, step=0)
        if trial.number == 3:
            raise RuntimeError("out of memory")
        if trial.number == 5:
            raise optuna.TrialPruned()
        return x * x + depth

    study.optimize(objective, n_trials=8, catch=(RuntimeError,))
    stored = pool.import_optuna(study, task="quadratic", features={"dim": 2})
    assert stored == 7  # the pruned trial has no outcome
    assert pool.count("failed") == 1
    frame = pool.frame()
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(frame) == len(complete) == 6
    assert np.allclose(frame["objective"], [-t.value for t in complete])
    assert list(frame["hp_x"]) == [t.params["x"] for t in complete]
    assert (frame["f_dim"] == 2).all() and (frame["task"] == "quadratic").all()


def test_numpy_and_torch_values_are_stored_as_plain_json(pool):
    import torch

    pool.record("t", {"n": np.int64(7)}, {"lr": np.float32(0.5), "depth": torch.tensor(3)}, torch.tensor(0.75),
                curve=torch.tensor([0.5, float("nan"), 0.75]))
    with pool._unit_of_work() as orm:
        run = orm.execute(select(Run)).scalar_one()
    assert run.params == {"lr": 0.5, "depth": 3} and run.task_features == {"n": 7}
    assert run.curve == [0.5, None, 0.75] and run.objective == 0.75


def test_bad_input_is_refused(pool):
    with pytest.raises(ConfigError, match="cannot be stored in the experience pool"):
        pool.record("t", {}, {"activation": object()}, 0.5)
    with pytest.raises(ConfigError, match="Unknown run status 'done'"):
        pool.record("t", {}, {"lr": 0.1}, 0.5, status="done")
    with pytest.raises(ConfigError, match="Unknown direction 'up'"):
        pool.record("t", {}, {"lr": 0.1}, 0.5, direction="up")
    with pytest.raises(PoolError, match="run id 12345 does not exist"):
        pool.finish(12345, "complete", 0.5)
    assert pool.count() == 0


def test_corrupted_sqlite_file_names_the_file(tmp_path):
    path = tmp_path / "broken.db"
    path.write_bytes(np.random.default_rng(0).bytes(8192))
    with pytest.raises(PoolError) as info:
        ExperiencePool(f"sqlite:///{path}")
    message = str(info.value)
    assert str(path) in message and "move it away" in message
    assert info.value.__cause__ is None and "Traceback" not in message


def test_sqlite_creates_missing_folders(tmp_path):
    with ExperiencePool(f"sqlite:///{tmp_path / 'a' / 'b' / 'pool.db'}") as pool:
        pool.record("t", {}, {"lr": 0.1}, 0.5)
    assert (tmp_path / "a" / "b" / "pool.db").exists()


def test_unreachable_postgres_fails_fast():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(PoolError) as info:
        ExperiencePool(f"postgresql+psycopg://user:secret@127.0.0.1:{port}/pool")
    assert time.perf_counter() - start < 5
    assert f"127.0.0.1:{port}/pool" in str(info.value) and "secret" not in str(info.value)
    assert "server is running" in str(info.value)


def test_silent_postgres_times_out():
    """A server that accepts the TCP connection but never answers is given up after connect_timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held = []
    accept = threading.Thread(target=lambda: held.append(listener.accept()), daemon=True)
    accept.start()
    try:
        start = time.perf_counter()
        with pytest.raises(PoolError, match="cannot open"):
            ExperiencePool(f"postgresql+psycopg://user@127.0.0.1:{port}/pool", connect_timeout=1)
        assert time.perf_counter() - start < 10
    finally:
        listener.close()
        for connection, _ in held:
            connection.close()


def test_bad_urls():
    with pytest.raises(PoolError, match="not a database URL"):
        ExperiencePool("not a url")
    with pytest.raises(PoolError, match="driver is not installed"):
        ExperiencePool("postgresql+nosuchdriver://u@localhost/db")


def test_database_folder_that_is_a_file_is_a_pool_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PoolError, match="Cannot create the folder"):
        ExperiencePool(f"sqlite:///{tmp_path / 'afile' / 'x.db'}")
