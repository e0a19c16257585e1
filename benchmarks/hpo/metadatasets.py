"""Loaders of the public HPO meta-datasets into the experience-pool frame format.

Each loader returns a :class:`MetaDataset`: the search space and one frame in the format of
``ExperiencePool.frame()`` (``task``, ``objective``, ``status``, ``hp_<name>``, ``f_<name>``)
holding EVERY configuration of every task, so the same frame trains a mapping (on the other
tasks) and scores it (regret against the task's full table). Objectives are "higher is better".

The tables carry no dataset descriptions, so the task meta-features are the OpenML facts of
each data set (instances, features, classes), transcribed below and used on a log scale. These facts
describe the benchmark tables only, so the module lives with the benchmarks, not in the library.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_meta.errors import DataError
from lightning_meta.hpo.space import SearchSpace

DATA_ENV = "LIGHTNING_META_HPO_DATA"

# OpenML facts per data set: (instances, features, classes); classes = 0 for regression.
_HPOBENCH_FACTS = {
    "australian": (690, 14, 2),
    "blood_transfusion": (748, 4, 2),
    "car": (1728, 6, 4),
    "credit_g": (1000, 20, 2),
    "kc1": (2109, 21, 2),
    "phoneme": (5404, 5, 2),
    "segment": (2310, 19, 7),
    "vehicle": (846, 18, 4),
}
_FCNET_FACTS = {
    "naval_propulsion": (11934, 15, 0),
    "parkinsons_telemonitoring": (5875, 19, 0),
    "protein_structure": (45730, 9, 0),
    "slice_localization": (53500, 384, 0),
}
_LCBENCH_FACTS = {
    3945: (50000, 230, 2), 7593: (581012, 54, 7), 34539: (32769, 9, 2), 126025: (48842, 14, 2),
    126026: (34465, 118, 2), 126029: (45211, 16, 2), 146212: (58000, 9, 7), 167104: (690, 14, 2),
    167149: (3196, 36, 2), 167152: (2000, 216, 10), 167161: (1000, 20, 2), 167168: (846, 18, 4),
    167181: (2109, 21, 2), 167184: (748, 4, 2), 167185: (1080, 856, 9), 167190: (5404, 5, 2),
    167200: (98050, 28, 2), 167201: (67557, 42, 3), 168329: (65196, 27, 100), 168330: (83733, 54, 4),
    168331: (58310, 180, 10), 168335: (130064, 50, 2), 168868: (76000, 170, 2), 168908: (5418, 1636, 2),
    168910: (8237, 800, 7), 189354: (539383, 7, 2), 189862: (2984, 144, 2), 189865: (5124, 20, 2),
    189866: (425240, 78, 2), 189873: (416188, 60, 355), 189905: (1728, 6, 4), 189906: (2310, 19, 7),
    189908: (70000, 784, 10), 189909: (44819, 6, 3),
}

HPOBENCH_MLP_SPACE = {
    "alpha": {"type": "float", "low": 1e-8, "high": 1.0, "log": True},
    "batch_size": {"type": "int", "low": 4, "high": 256, "log": True},
    "depth": {"type": "int", "low": 1, "high": 3},
    "learning_rate_init": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
    "width": {"type": "int", "low": 16, "high": 1024, "log": True},
}
FCNET_SPACE = {
    "activation_fn_1": {"type": "categorical", "choices": ["relu", "tanh"]},
    "activation_fn_2": {"type": "categorical", "choices": ["relu", "tanh"]},
    "batch_size": {"type": "int", "low": 8, "high": 64, "log": True},
    "dropout_1": {"type": "float", "low": 0.0, "high": 0.6},
    "dropout_2": {"type": "float", "low": 0.0, "high": 0.6},
    "init_lr": {"type": "float", "low": 5e-4, "high": 0.1, "log": True},
    "lr_schedule": {"type": "categorical", "choices": ["const", "cosine"]},
    "n_units_1": {"type": "int", "low": 16, "high": 512, "log": True},
    "n_units_2": {"type": "int", "low": 16, "high": 512, "log": True},
}
LCBENCH_SPACE = {
    "batch_size": {"type": "int", "low": 16, "high": 512, "log": True},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
    "momentum": {"type": "float", "low": 0.1, "high": 0.99},
    "weight_decay": {"type": "float", "low": 1e-5, "high": 0.1},
    "num_layers": {"type": "int", "low": 1, "high": 5},
    "max_units": {"type": "int", "low": 64, "high": 1024, "log": True},
    "max_dropout": {"type": "float", "low": 0.0, "high": 1.0},
}


@dataclass
class MetaDataset:
    """A benchmark: its search space and the full table of every task in pool-frame format."""

    name: str
    space: SearchSpace
    frame: pd.DataFrame

    @property
    def tasks(self) -> list[str]:
        return sorted(self.frame["task"].unique())

    def table(self, task: str) -> pd.DataFrame:
        """Every configuration evaluated on ``task`` (the reference for regret)."""
        return self.frame[self.frame["task"] == task].reset_index(drop=True)

    def without(self, task: str) -> pd.DataFrame:
        """The frame of all other tasks (the training set of a leave-one-task-out fold)."""
        return self.frame[self.frame["task"] != task].reset_index(drop=True)

    def features(self, task: str) -> dict[str, float]:
        """The meta-features of ``task`` as the mapping's ``features`` argument expects them."""
        row = self.frame.loc[self.frame["task"] == task].iloc[0]
        return {c[2:]: float(row[c]) for c in self.frame.columns if c.startswith("f_")}


def default_root() -> Path:
    """``$LIGHTNING_META_HPO_DATA`` or ``../shared/data/hpo`` beside the repository."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hpo"


def load(name: str, root: str | Path | None = None) -> MetaDataset:
    """Loads ``hpobench_mlp``, ``fcnet`` or ``lcbench`` by name."""
    loaders = {"hpobench_mlp": load_hpobench_mlp, "fcnet": load_fcnet, "lcbench": load_lcbench}
    if name not in loaders:
        raise DataError(f"Unknown HPO meta-dataset {name!r}: choose one of {sorted(loaders)}.")
    return loaders[name](root)


def load_hpobench_mlp(root: str | Path | None = None) -> MetaDataset:
    """HPOBench tabular sklearn-MLP: 8 tasks x 30,000 configs; objective = mean val balanced acc."""
    raw = pd.read_csv(_file(root, "hpobench_mlp/hpobench_mlp_tabular.csv.gz"))
    objective = raw.filter(regex=r"^val_bal_acc_s\d$").mean(axis=1)
    return MetaDataset(
        "hpobench_mlp",
        SearchSpace.from_dict(HPOBENCH_MLP_SPACE),
        _frame(raw["dataset"], objective, raw[list(HPOBENCH_MLP_SPACE)], _HPOBENCH_FACTS),
    )


def load_fcnet(root: str | Path | None = None) -> MetaDataset:
    """FCNet tabular: 4 regression tasks x 62,208 configs; objective = -log10(mean val MSE).

    The MSE spans up to 11 orders of magnitude within a task (divergent runs reach 4e7 where the
    best is 2e-4), so on its own scale every good configuration normalizes to ~1 and the mappings
    cannot tell a 1e-4 from a 1e-3 run; the log keeps the ranking and spreads the good end.
    """
    raw = pd.read_csv(_file(root, "fcnet/fcnet_tabular.csv.gz"))
    objective = -np.log10(raw.filter(regex=r"^val_mse_s\d$").mean(axis=1))
    return MetaDataset(
        "fcnet",
        SearchSpace.from_dict(FCNET_SPACE),
        _frame(raw["dataset"], objective, raw[list(FCNET_SPACE)], _FCNET_FACTS),
    )


def load_lcbench(root: str | Path | None = None) -> MetaDataset:
    """LCBench via the YAHPO surrogate sample: 34 tasks x 2,000 configs; objective = final val acc."""
    path = _file(root, "yahpo_lcbench/lcbench_surrogate_sample.npz")
    try:
        with np.load(path) as npz:
            task_ids, hp_names = npz["task_ids"], [str(n) for n in npz["hp_names"]]
            configs, y_names, final = npz["configs"], [str(n) for n in npz["y_names"]], npz["final"]
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"Cannot read {path}: {err}. Restore the file from the data set's MANIFEST.md.") from err
    names = pd.read_csv(_file(root, "yahpo_lcbench/instances.csv")).set_index("openml_task_id")["dataset_name"]
    n_tasks, n_configs = len(task_ids), len(configs)
    hps = pd.DataFrame(np.tile(configs, (n_tasks, 1)), columns=hp_names)[list(LCBENCH_SPACE)]
    for name, spec in LCBENCH_SPACE.items():
        if spec["type"] == "int":
            hps[name] = hps[name].round().astype(int)
    tasks = pd.Series(np.repeat([names.get(int(t), str(t)) for t in task_ids], n_configs))
    objective = final[:, :, y_names.index("val_accuracy")].reshape(-1).astype(float) / 100.0
    facts = {names.get(int(t), str(t)): _LCBENCH_FACTS[int(t)] for t in task_ids}
    return MetaDataset("lcbench", SearchSpace.from_dict(LCBENCH_SPACE), _frame(tasks, pd.Series(objective), hps, facts))


def _file(root: str | Path | None, relative: str) -> Path:
    base = Path(root) if root is not None else default_root()
    path = base / relative
    if not path.is_file():
        raise DataError(
            f"HPO meta-dataset file {path} is missing: pass root= (or set ${DATA_ENV}) to the folder "
            "holding hpobench_mlp/, fcnet/ and yahpo_lcbench/."
        )
    return path


def _frame(tasks: pd.Series, objective: pd.Series, hps: pd.DataFrame, facts: dict) -> pd.DataFrame:
    frame = pd.DataFrame({"task": tasks.astype(str).to_numpy(), "objective": objective.to_numpy(dtype=float)})
    frame["status"] = "complete"
    for name in hps.columns:
        frame[f"hp_{name}"] = hps[name].to_numpy()
    for i, feature in enumerate(("log_n_samples", "log_n_features", "log_n_classes")):
        frame[f"f_{feature}"] = frame["task"].map({t: math.log1p(v[i]) for t, v in facts.items()})
    return frame
