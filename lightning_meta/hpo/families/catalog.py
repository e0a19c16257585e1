"""The task families of the experience pool: data x model x optimizer, each with its own good settings.

A family fixes the kind of data, the network and the optimizer a user's code builds; its tasks
vary the data set (which alphabet or table, how many samples, image size, noise), the model size
and the batch size. Six families: their best learning rates differ by orders of magnitude (SGD
against Adam; 100 samples against 20,000), which is what a task-conditional mapping must learn.
Budgets (epochs) are small so that one training takes about a second on one CPU core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.families import nets, sources
from lightning_meta.hpo.families.arrays import ArrayDataModule
from lightning_meta.hpo.families.classifier import Classifier, Optimizer

BACKGROUND = ["Alphabet_of_the_Magi", "Anglo-Saxon_Futhorc", "Arcadian", "Armenian", "Balinese", "Bengali",
              "Braille", "Cyrillic", "Early_Aramaic", "Futurama", "Greek", "Gujarati", "Hebrew", "Korean",
              "Latin", "Sanskrit", "Tagalog", "Tifinagh", "N_Ko", "Grantha", "Syriac_(Estrangelo)", "Burmese_(Myanmar)"]


@dataclass(frozen=True)
class Task:
    """One task of a family: how to build its data and its model, and its training budget."""

    family: str
    name: str
    data: Callable[[], sources.Arrays]
    net: Callable[[int, tuple[int, ...]], object]
    optimizer: Optimizer
    batch_size: int
    epochs: int
    facts: tuple[tuple[str, float], ...] = ()

    @property
    def key(self) -> str:
        """``family/name``: the task's name in the pool."""
        return f"{self.family}/{self.name}"

    def build(self, trial_seed: int = 0, lr: float | None = None, weight_decay: float | None = None
              ) -> tuple[Classifier, ArrayDataModule]:
        """The module (optimizer defaults unless ``lr``/``weight_decay``) and datamodule of this task."""
        x_train, y_train, x_val, y_val = self.data()
        datamodule = ArrayDataModule(x_train, y_train, x_val, y_val, batch_size=self.batch_size,
                                     seed=trial_seed, facts=dict(self.facts))
        net = self.net(datamodule.num_classes, datamodule.input_shape)
        return Classifier(net, self.optimizer, lr=lr, weight_decay=weight_decay), datamodule


def _omniglot_cnn() -> list[Task]:
    tasks = []
    for i, alphabet in enumerate(BACKGROUND[:12]):
        size, shots = (28, 5) if i % 3 == 2 else (14, (5, 10, 14)[i % 3])
        batch = (16, 32, 64)[i % 3]
        width = (8, 16, 32)[(i // 3) % 3]
        tasks.append(Task(
            "omniglot_cnn_adam", f"{alphabet}_s{size}_k{shots}_w{width}",
            lambda a=alphabet, s=size, k=shots: sources.omniglot_alphabet(a, s, k),
            lambda c, shape, w=width: nets.cnn2d(c, shape[-1], width=w), "adam", batch, 10,
            (("image_size", float(size)), ("shots", float(shots))),
        ))
    return tasks


def _omniglot_resnet() -> list[Task]:
    tasks = []
    for i, alphabet in enumerate(BACKGROUND[12:22]):
        width = (8, 16)[i % 2]
        batch = (32, 64)[(i // 2) % 2]
        tasks.append(Task(
            "omniglot_resnet_sgd", f"{alphabet}_w{width}",
            lambda a=alphabet: sources.omniglot_alphabet(a, 14, 14),
            lambda c, shape, w=width: nets.resnet(c, width=w), "sgd", batch, 6,
            (("image_size", 14.0), ("shots", 14.0)),
        ))
    return tasks


def _digits_mlp() -> list[Task]:
    settings = [(200, 32, 16), (200, 128, 32), (400, 64, 16), (400, 256, 64), (800, 32, 32),
                (800, 128, 64), (1200, 64, 32), (1797, 32, 64), (1797, 128, 128), (1797, 256, 32)]
    return [
        Task("digits_mlp_sgd", f"n{n}_h{hidden}_b{batch}",
             lambda n=n: sources.sklearn_table("digits", seed=0, subsample=n),
             lambda c, shape, h=hidden: nets.mlp(shape[0], c, hidden=h), "sgd", batch, 12)
        for n, hidden, batch in settings
    ]


def _tabular_mlp() -> list[Task]:
    settings = [(300, 10, 2, 0.0, 32), (300, 40, 5, 0.1, 32), (1000, 10, 2, 0.3, 64), (1000, 40, 2, 0.0, 32),
                (2000, 20, 5, 0.1, 64), (3000, 10, 3, 0.0, 128), (3000, 40, 5, 0.3, 64), (6000, 20, 2, 0.1, 128),
                (10000, 10, 5, 0.0, 256), (10000, 40, 3, 0.2, 128), (20000, 20, 2, 0.0, 256), (20000, 40, 5, 0.1, 256)]
    return [
        Task("tabular_mlp_adamw", f"n{n}_d{d}_c{c}_noise{noise:g}",
             lambda n=n, d=d, c=c, noise=noise: sources.generated_table(n, d, c, noise, seed=n + d + c),
             lambda classes, shape: nets.mlp(shape[0], classes, hidden=64), "adamw", batch, 5,
             (("label_noise", noise),))
        for n, d, c, noise, batch in settings
    ]


def _mnist1d_cnn() -> list[Task]:
    settings = [(500, 0.1, 32), (500, 0.4, 16), (1000, 0.25, 32), (1000, 0.5, 64), (2000, 0.1, 64),
                (2000, 0.4, 32), (4000, 0.25, 128), (4000, 0.5, 64), (8000, 0.1, 128), (8000, 0.4, 256)]
    return [
        Task("mnist1d_cnn_adam", f"n{n}_noise{noise:g}_b{batch}",
             lambda n=n, noise=noise: sources.mnist1d(n, noise, seed=n),
             lambda c, shape: nets.cnn1d(c, shape[0], width=16), "adam", batch, 6, (("noise", noise),))
        for n, noise, batch in settings
    ]


def _small_tables_mlp() -> list[Task]:
    data = [
        ("iris", lambda: sources.sklearn_table("iris", seed=0)),
        ("wine", lambda: sources.sklearn_table("wine", seed=0)),
        ("breast_cancer", lambda: sources.sklearn_table("breast_cancer", seed=0)),
        ("moons_n200", lambda: sources.shapes_2d("moons", 200, 0.2, seed=0)),
        ("moons_n2000", lambda: sources.shapes_2d("moons", 2000, 0.3, seed=0)),
        ("circles_n300", lambda: sources.shapes_2d("circles", 300, 0.1, seed=0)),
        ("circles_n3000", lambda: sources.shapes_2d("circles", 3000, 0.2, seed=0)),
        ("moons_n600", lambda: sources.shapes_2d("moons", 600, 0.1, seed=1)),
        ("digits_n150", lambda: sources.sklearn_table("digits", seed=3, subsample=150)),
        ("circles_n1000", lambda: sources.shapes_2d("circles", 1000, 0.15, seed=2)),
    ]
    return [
        Task("small_tables_mlp_adam", name, load, lambda c, shape: nets.mlp(shape[0], c, hidden=16, layers=1),
             "adam", 16 if "n2000" not in name and "n3000" not in name else 64, 20)
        for name, load in data
    ]


def _catalog() -> dict[str, list[Task]]:
    families = [_omniglot_cnn(), _omniglot_resnet(), _digits_mlp(), _tabular_mlp(), _mnist1d_cnn(), _small_tables_mlp()]
    return {tasks[0].family: tasks for tasks in families}


FAMILIES: dict[str, list[Task]] = _catalog()


def all_tasks(families: list[str] | None = None) -> list[Task]:
    """Every task of the named families (all by default), in catalogue order."""
    names = list(FAMILIES) if families is None else list(families)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ConfigError(f"Unknown task families {unknown}: use some of {list(FAMILIES)}.")
    return [task for name in names for task in FAMILIES[name]]


def task_by_key(key: str) -> Task:
    """The task named ``family/name``."""
    for task in all_tasks():
        if task.key == key:
            return task
    raise ConfigError(f"Unknown task {key!r}: see lightning_meta.hpo.families.all_tasks().")

