"""The experience pool: every training run's task, hyperparameters and outcome, in a real database.

A SQLite file is the embedded default. It runs in WAL mode and every transaction starts with
``BEGIN IMMEDIATE`` under a long busy timeout (``lock_timeout``), so many writer processes queue for the write lock
instead of failing with "database is locked". Any other SQLAlchemy URL
(``postgresql+psycopg://user@host/db``) serves many machines at once.
``frame()`` turns the completed runs into the table every mapping is fit on. A fault (locked, read-only,
not a database, server down) is a ``PoolError`` that names it and its fix (``pool_faults.py``).
"""

from __future__ import annotations

import math
import platform
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import create_engine, event, func, select, text, update
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from lightning_meta.errors import ConfigError, DataError, PoolError
from lightning_meta.hpo.pool_faults import server_fault, sqlite_access_fault, sqlite_fault
from lightning_meta.hpo.pool_schema import STATUSES, Base, Run

_DIRECTIONS = {"maximize": "maximize", "max": "maximize", "minimize": "minimize", "min": "minimize"}
_CREATE_LOCK_KEY = 7_311_043  # PostgreSQL advisory lock serialising concurrent CREATE TABLE


def _versions() -> dict[str, str | None]:
    """Library versions, read from package metadata so the pool never imports torch."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("torch", "lightning", "lightning_meta"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def _plain(value: Any) -> Any:
    """A JSON-safe copy: numpy/torch values to Python, non-finite floats to None."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy and torch scalars/arrays
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not isinstance(value, (str, int, float, bool, type(None))):
        raise ConfigError(
            f"{value!r} ({type(value).__name__}) cannot be stored in the experience pool: "
            "give numbers, strings, booleans, lists or dicts."
        )
    return value


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _direction(direction: str) -> str:
    if direction not in _DIRECTIONS:
        raise ConfigError(f"Unknown direction {direction!r}: use 'maximize' or 'minimize'.")
    return _DIRECTIONS[direction]


def _status(status: str) -> str:
    if status not in STATUSES:
        raise ConfigError(f"Unknown run status {status!r}: use one of {', '.join(STATUSES)}.")
    return status


def _outcome(status: str, metric: Any, direction: str) -> tuple[str, float | None]:
    """(status, objective): a run that 'completed' with a non-finite metric is recorded as diverged."""
    metric = _finite(metric)
    if status != "complete":
        return status, None
    if metric is None:
        return "diverged", None
    return status, metric if direction == "maximize" else -metric


def _strip(column: str, prefix: str) -> str:
    return column[len(prefix) :] if column.startswith(prefix) else column


EXAMPLES = "e.g. 'sqlite:///experience.db' (a file here), 'sqlite:////abs/path.db' or 'postgresql+psycopg://user@host/db'"


def parse_url(url: str) -> URL:
    """``url`` parsed by SQLAlchemy, or a ``PoolError`` naming it and the fix of its typo. Why at construction: the
    typos (``sqlite://file.db``, ``sqlite:/file.db``, ``postgres://``) otherwise fail later, in SQLAlchemy's words,
    or as a missing driver."""
    text = re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", str(url))  # the message never shows a password
    scheme, sep, rest = text.partition("://")
    fix = None
    if not sep and text.startswith("sqlite:"):
        fix = f"sqlite:///{text.removeprefix('sqlite:').lstrip('/')}"  # one slash too few
    elif not sep and re.fullmatch(r"[\w./~-]+", text):
        fix = f"sqlite:///{text}"  # a file name without the scheme
    elif scheme.split("+")[0] == "postgres":
        fix = f"postgresql{scheme.removeprefix('postgres')}://{rest}"  # SQLAlchemy dropped the postgres alias
    elif scheme.split("+")[0] == "sqlite" and rest and not rest.startswith("/"):
        fix = f"{scheme}:///{rest}"  # two slashes: the file name would be read as a host
    if fix is not None:
        raise PoolError(f"Experience pool URL {text!r} is not a database URL SQLAlchemy takes. Fix: {fix!r} "
                        f"({EXAMPLES}).")
    try:
        return make_url(str(url))
    except (ArgumentError, ValueError) as err:  # ValueError: a port that is not a number
        raise PoolError(f"Experience pool URL {text!r} is not a database URL ({err}). Fix: use {EXAMPLES}.") from None


class ExperiencePool:
    """Runs of base learners stored through SQLAlchemy (``sqlite:///file.db`` or any server URL).

    ``connect_timeout`` is how long a database server has to answer; ``lock_timeout`` how long a SQLite write
    waits for another process's write lock (writers queue for it) before the pool reports the file locked.
    """

    def __init__(self, url: str = "sqlite:///experience.db", connect_timeout: float = 10.0,
                 lock_timeout: float = 120.0) -> None:
        parsed = parse_url(url)
        self.url = parsed.render_as_string(hide_password=True)
        self._parsed = parsed
        self._sqlite = parsed.get_backend_name() == "sqlite"
        in_file = self._sqlite and parsed.database not in (None, "", ":memory:")
        self._path = Path(parsed.database).expanduser() if in_file else None
        self._connect_timeout, self._lock_timeout = connect_timeout, lock_timeout
        try:
            self.engine = self._create_engine(parsed)
        except (NoSuchModuleError, ImportError) as error:
            raise PoolError(
                f"Experience pool {self.url}: the database driver is not installed ({error}). "
                "Install it, e.g. `pip install 'psycopg[binary]'` for postgresql+psycopg URLs."
            ) from None
        self._unit_of_work = sessionmaker(self.engine, expire_on_commit=False)
        try:
            with self._guard("open"):
                self._create_tables()
        except PoolError:
            # A connection left open would keep what it opened: SQLite shares a file's read-only WAL index with
            # every later connection of the process, so a pool opened once the fault is fixed would still fail.
            self.engine.dispose()
            raise

    def _create_engine(self, url) -> Engine:
        if not self._sqlite:
            connect_args = {}
            if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
                connect_args["connect_timeout"] = max(1, int(math.ceil(self._connect_timeout)))
            return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        if self._path is not None:
            folder = self._path.parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise PoolError(f"Cannot create the folder {folder} of the experience pool database ({err}). "
                                "Fix: point the sqlite URL at a writable folder.") from err
            fault = sqlite_access_fault(self._path)
            if fault:
                raise PoolError(f"Experience pool {self.url}: cannot open: {fault}")
        engine = create_engine(
            url,
            connect_args={"timeout": self._lock_timeout, "check_same_thread": False},
            poolclass=StaticPool if self._path is None else None,
        )
        in_file, busy_ms = self._path is not None, int(self._lock_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if in_file:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def _create_tables(self) -> None:
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK_KEY})
            Base.metadata.create_all(connection)

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turns driver errors into a PoolError naming the database, the fault (``pool_faults``) and its fix."""
        try:
            yield
        except (SQLAlchemyError, sqlite3.Error) as error:
            if self._sqlite:
                fault = sqlite_fault(self._path, error, self._lock_timeout)
            else:
                fault = server_fault(self._parsed, error, self._connect_timeout)
            raise PoolError(f"Experience pool {self.url}: cannot {action}: {fault}") from None

    @contextmanager
    def _transaction(self, action: str) -> Iterator[Session]:
        with self._guard(action), self._unit_of_work.begin() as orm:
            yield orm

    def close(self) -> None:
        """Releases the pool's connections."""
        self.engine.dispose()

    def __enter__(self) -> ExperiencePool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ExperiencePool({self.url!r})"

    def start(self, task: str, features: Mapping[str, Any], params: Mapping[str, Any]) -> int:
        """Records a run that is about to train (status "running") and returns its id."""
        run = Run(
            task=str(task), task_features=_plain(dict(features or {})), params=_plain(dict(params)),
            status="running", versions=_versions(),
        )
        with self._transaction("start a run") as orm:
            orm.add(run)
            orm.flush()
            return run.id

    def finish(
        self,
        run_id: int,
        status: str,
        final_metric: float | None,
        best_metric: float | None = None,
        curve: Sequence[Any] | None = None,
        duration_s: float | None = None,
        metric_name: str = "val_acc",
        direction: str = "maximize",
    ) -> None:
        """Stores the outcome of a started run; its objective is ``final_metric`` made higher-is-better."""
        direction = _direction(direction)
        status, objective = _outcome(_status(status), final_metric, direction)
        values = dict(
            status=status, objective=objective, final_metric=_finite(final_metric),
            best_metric=_finite(best_metric), curve=_plain(curve), duration_s=_finite(duration_s),
            metric_name=metric_name, direction=direction,
        )
        with self._transaction("finish a run") as orm:
            updated = orm.execute(update(Run).where(Run.id == int(run_id)).values(**values)).rowcount
        if updated != 1:
            raise PoolError(
                f"Experience pool {self.url}: run id {run_id} does not exist; pass the id `start()` returned."
            )

    def record(
        self,
        task: str,
        features: Mapping[str, Any],
        params: Mapping[str, Any],
        objective: float | None,
        status: str = "complete",
        **outcome: Any,
    ) -> int:
        """Stores a finished run in one call and returns its id.

        ``objective`` is the metric as measured; it is negated when ``direction="minimize"``.
        ``outcome`` takes ``finish``'s keywords (``best_metric``, ``curve``, ``duration_s``,
        ``metric_name``, ``direction``); ``final_metric`` defaults to ``objective``.
        """
        return self._insert([self._row(task, features, params, objective, status, **outcome)], "record a run")[0]

    def _row(
        self,
        task: str,
        features: Mapping[str, Any] | None,
        params: Mapping[str, Any],
        objective: float | None,
        status: str = "complete",
        final_metric: float | None = None,
        best_metric: float | None = None,
        curve: Sequence[Any] | None = None,
        duration_s: float | None = None,
        metric_name: str = "val_acc",
        direction: str = "maximize",
        versions: Mapping[str, Any] | None = None,
    ) -> Run:
        direction = _direction(direction)
        status, stored = _outcome(_status(status), objective, direction)
        return Run(
            task=str(task), task_features=_plain(dict(features or {})), params=_plain(dict(params)),
            objective=stored, metric_name=metric_name, direction=direction,
            final_metric=_finite(objective if final_metric is None else final_metric),
            best_metric=_finite(best_metric), curve=_plain(curve), status=status,
            duration_s=_finite(duration_s), versions=dict(versions) if versions is not None else _versions(),
        )

    def _insert(self, runs: list[Run], action: str) -> list[int]:
        with self._transaction(action) as orm:
            orm.add_all(runs)
            orm.flush()
            return [run.id for run in runs]

    def count(self, status: str | None = None) -> int:
        """Number of runs, optionally of one status."""
        query = select(func.count()).select_from(Run)
        if status is not None:
            query = query.where(Run.status == _status(status))
        with self._transaction("count runs") as orm:
            return int(orm.execute(query).scalar_one())

    def frame(self, status: str | Sequence[str] | None = "complete") -> pd.DataFrame:
        """The runs as a table: ``task, objective, status, hp_<name>..., f_<name>...`` indexed by run id.

        This is the input format of every mapping. Only completed runs by default, so failed and
        diverged runs never reach a mapping; ``status=None`` returns all.
        """
        query = select(Run.id, Run.task, Run.objective, Run.status, Run.params, Run.task_features).order_by(Run.id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            query = query.where(Run.status.in_([_status(s) for s in statuses]))
        with self._transaction("read runs") as orm:
            rows = orm.execute(query).all()
        records = []
        params: dict[str, None] = {}  # column names in order of first appearance
        features: dict[str, None] = {}
        for row in rows:
            record = {"task": row.task, "objective": row.objective, "status": row.status}
            for name, value in (row.params or {}).items():
                params.setdefault(f"hp_{name}")
                record[f"hp_{name}"] = value
            for name, value in (row.task_features or {}).items():
                features.setdefault(f"f_{name}")
                record[f"f_{name}"] = value
            records.append(record)
        columns = ["task", "objective", "status", *params, *features]
        index = pd.Index([row.id for row in rows], name="run_id")
        frame = pd.DataFrame.from_records(records, columns=columns, index=index)
        frame["objective"] = frame["objective"].astype(float)
        return frame

    def import_frame(
        self,
        df: pd.DataFrame,
        task_col: str,
        param_cols: Sequence[str],
        objective_col: str,
        direction: str,
        feature_cols: Sequence[str] | None = None,
    ) -> int:
        """Stores each row of ``df`` as a completed run (non-finite objectives as diverged).

        Hyperparameter and feature names are the column names without an ``hp_`` / ``f_`` prefix,
        so ``import_frame(pool.frame(), "task", hp_cols, "objective", "maximize", f_cols)`` copies a pool.
        Returns the number of runs stored.
        """
        feature_cols = list(feature_cols or [])
        missing = [c for c in [task_col, *param_cols, objective_col, *feature_cols] if c not in df.columns]
        if missing:
            raise DataError(f"The frame lacks columns {missing}: its columns are {list(df.columns)}.")
        direction = _direction(direction)
        versions = _versions()
        runs = [
            self._row(
                task=record[task_col],
                features={_strip(c, "f_"): record[c] for c in feature_cols},
                params={_strip(c, "hp_"): record[c] for c in param_cols},
                objective=record[objective_col],
                metric_name=objective_col,
                direction=direction,
                versions=versions,
            )
            for record in df.to_dict("records")
        ]
        return len(self._insert(runs, "import a frame")) if runs else 0

    def import_optuna(self, study: Any, task: str, features: Mapping[str, Any] | None = None) -> int:
        """Stores an Optuna study's finished trials (complete or failed) as runs of ``task``.

        Pruned, running and waiting trials are skipped: they have no final outcome.
        Returns the number of runs stored.
        """
        import optuna

        if len(study.directions) != 1:
            raise ConfigError(
                f"Study {study.study_name!r} has {len(study.directions)} objectives: import single-objective studies."
            )
        direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "minimize"
        metric_name = (study.metric_names or ["value"])[0] or "value"
        statuses = {optuna.trial.TrialState.COMPLETE: "complete", optuna.trial.TrialState.FAIL: "failed"}
        versions = _versions()
        runs = [
            self._row(
                task=task,
                features=features,
                params=trial.params,
                objective=trial.value,
                status=statuses[trial.state],
                curve=[[step, value] for step, value in sorted(trial.intermediate_values.items())] or None,
                duration_s=trial.duration.total_seconds() if trial.duration is not None else None,
                metric_name=metric_name,
                direction=direction,
                versions=versions,
            )
            for trial in study.get_trials(deepcopy=False)
            if trial.state in statuses
        ]
        return len(self._insert(runs, "import a study")) if runs else 0
