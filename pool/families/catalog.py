"""The task families of the experience pool: data x model x optimizer, each with its own good settings.

A family fixes the kind of data, the network and the optimizer a user's code builds; its tasks
vary the data set (which alphabet or table, how many samples, image size, noise), the model size
and the batch size. Eleven families: their best learning rates differ by orders of magnitude (SGD
against Adam; 100 samples against 20,000; recurrent nets against MLPs), which is what a task-conditional
mapping must learn.
Budgets (epochs) are small so that one training takes about a second on one CPU core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lightning_meta.errors import ConfigError
from pool.families import nets, pretrained, sources
from pool.families.arrays import ArrayDataModule
from pool.families.classifier import DEFAULT_LR, DEFAULT_WEIGHT_DECAY, Classifier, Optimizer, Regressor

BACKGROUND = ["Alphabet_of_the_Magi", "Anglo-Saxon_Futhorc", "Arcadian", "Armenian", "Balinese", "Bengali",
              "Braille", "Cyrillic", "Early_Aramaic", "Futurama", "Greek", "Gujarati", "Hebrew", "Korean",
              "Latin", "Sanskrit", "Tagalog", "Tifinagh", "N_Ko", "Grantha", "Syriac_(Estrangelo)", "Burmese_(Myanmar)"]


@dataclass(frozen=True)
class Task:
    """One task of a family: how to build its data and its model, its training budget, and what scores it."""

    family: str
    name: str
    data: Callable[[], sources.Arrays]
    net: Callable[[int, tuple[int, ...]], object]
    optimizer: Optimizer
    batch_size: int
    epochs: int
    facts: tuple[tuple[str, float], ...] = ()
    regression: bool = False
    monitor: str = "val_acc"
    default_lr: float | None = None  # the module's own value when the family's user would pick another
    default_weight_decay: float | None = None

    @property
    def key(self) -> str:
        """``family/name``: the task's name in the pool."""
        return f"{self.family}/{self.name}"

    def build(self, trial_seed: int = 0, lr: float | None = None, weight_decay: float | None = None
              ) -> tuple[Classifier, ArrayDataModule]:
        """The module (the task's defaults unless ``lr``/``weight_decay``) and datamodule of this task."""
        x_train, y_train, x_val, y_val = self.data()
        datamodule = ArrayDataModule(x_train, y_train, x_val, y_val, batch_size=self.batch_size,
                                     seed=trial_seed, facts=dict(self.facts))
        net = self.net(datamodule.num_classes, datamodule.input_shape)
        module = Regressor if self.regression else Classifier
        lr = self.default_lr if lr is None else lr
        weight_decay = self.default_weight_decay if weight_decay is None else weight_decay
        return module(net, self.optimizer, lr=lr, weight_decay=weight_decay), datamodule

    def defaults(self) -> dict[str, float]:
        """The module's own ``lr`` and ``weight_decay``: what its user starts from."""
        return {"lr": DEFAULT_LR[self.optimizer] if self.default_lr is None else self.default_lr,
                "weight_decay": DEFAULT_WEIGHT_DECAY[self.optimizer] if self.default_weight_decay is None
                else self.default_weight_decay}

    @property
    def mode(self) -> str:
        """Whether ``monitor`` is maximised or minimised."""
        return "min" if "loss" in self.monitor else "max"


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


OPTIMIZERS: tuple[Optimizer, ...] = ("adamw", "adam", "sgd")


def _text_transformer() -> list[Task]:
    """Transformer encoders from scratch on token sequences; AdamW at 3e-4 with weight decay 0.01 is the usual
    start for them (Adam and SGD keep the Classifier's defaults)."""
    settings = [(600, 2, 12, 16, 0.6, 16, 1, 32, 4), (600, 4, 20, 24, 1.0, 32, 1, 16, 8), (1000, 3, 16, 32, 0.5, 32, 2, 32, 3),
                (1000, 5, 24, 16, 0.8, 16, 2, 32, 10), (1500, 2, 32, 24, 0.4, 32, 1, 64, 6), (1500, 4, 12, 32, 0.7, 32, 2, 64, 3),
                (2000, 3, 20, 16, 0.5, 16, 1, 64, 12), (2000, 6, 16, 24, 0.9, 32, 2, 32, 4), (2500, 2, 24, 32, 0.3, 32, 1, 64, 5),
                (2500, 4, 32, 16, 0.6, 16, 2, 64, 8), (3000, 3, 12, 24, 0.4, 32, 1, 128, 6), (3000, 5, 20, 32, 0.7, 32, 2, 64, 3),
                (800, 3, 16, 24, 1.2, 16, 1, 16, 6), (1200, 6, 24, 16, 0.5, 32, 2, 32, 5)]
    tasks = []
    for i, (n, classes, vocab, length, sharp, width, layers, batch, epochs) in enumerate(settings):
        optimizer = OPTIMIZERS[i % 3]
        tasks.append(Task(
            "text_transformer", f"n{n}_c{classes}_v{vocab}_l{length}_s{sharp:g}_w{width}x{layers}_e{epochs}_{optimizer}",
            lambda n=n, c=classes, v=vocab, L=length, s=sharp, i=i: sources.markov_sequences(n, c, v, L, s, seed=100 + i),
            lambda c, shape, v=vocab, w=width, k=layers: nets.TokenTransformer(v, c, shape[0], width=w, layers=k),
            optimizer, batch, epochs, (("vocab", float(vocab)), ("sequence_length", float(length))),
            default_lr=3e-4 if optimizer == "adamw" else None,
        ))
    return tasks


def _markov_tasks(family: str, classify: list[tuple], lm: list[tuple], seed: int, classifier: Callable,
                  language_model: Callable, lm_layers: str = "") -> list[Task]:
    """A recurrent family's token tasks: classifying sequences by the Markov chain that emitted them (``val_acc``,
    data seeds ``seed + i``) and character-level language models of second-order sources (``val_loss``, minimised;
    seeds ``seed + 100 + i``). ``classifier(vocab, classes, width)`` and ``language_model(vocab, width)`` build the
    networks; ``lm_layers`` tags the language models' names (e.g. ``x2``)."""
    tasks = []
    for i, (n, classes, vocab, length, sharp, width, batch, epochs) in enumerate(classify):
        optimizer = OPTIMIZERS[(i + 1) % 3]
        tasks.append(Task(
            family, f"classify_n{n}_c{classes}_v{vocab}_l{length}_w{width}_e{epochs}_{optimizer}",
            lambda n=n, c=classes, v=vocab, L=length, s=sharp, i=i: sources.markov_sequences(n, c, v, L, s, seed=seed + i),
            lambda c, shape, v=vocab, w=width: classifier(v, c, w), optimizer, batch, epochs,
            (("vocab", float(vocab)), ("sequence_length", float(length))),
        ))
    for i, (n, vocab, length, sharp, width, batch, epochs) in enumerate(lm):
        optimizer = OPTIMIZERS[(i + 2) % 3]
        tasks.append(Task(
            family, f"lm_n{n}_v{vocab}_l{length}_w{width}{lm_layers}_e{epochs}_{optimizer}",
            lambda n=n, v=vocab, L=length, s=sharp, i=i: sources.markov_text(n, v, L, s, seed=seed + 100 + i),
            lambda c, shape, v=vocab, w=width: language_model(v, w), optimizer, batch, epochs,
            (("vocab", float(vocab)), ("sequence_length", float(length))), monitor="val_loss",
        ))
    return tasks


def _sequence_gru() -> list[Task]:
    """GRUs from scratch: sequence classification (``val_acc``) and character-level language models
    (``val_loss``, minimised)."""
    settings = [(800, 3, 12, 24, 0.6, 32, 32, 6), (1500, 5, 20, 32, 0.8, 64, 64, 4), (2500, 2, 16, 16, 0.4, 32, 64, 8),
                (1000, 4, 24, 24, 1.0, 64, 32, 3), (3000, 6, 12, 32, 0.5, 32, 128, 5), (600, 2, 20, 16, 0.7, 64, 16, 10),
                (2000, 3, 32, 24, 0.6, 32, 64, 4)]
    lm = [(600, 16, 24, 1.5, 32, 32, 6), (1200, 24, 32, 2.0, 64, 32, 4), (2000, 12, 16, 1.0, 32, 64, 8),
          (800, 32, 24, 2.5, 64, 16, 3), (1500, 20, 32, 1.5, 32, 64, 5), (3000, 16, 24, 2.0, 64, 128, 4),
          (1000, 28, 16, 1.2, 32, 32, 10)]
    return _markov_tasks("sequence_gru", settings, lm, 200, lambda v, c, w: nets.TokenGRU(v, c, width=w),
                         lambda v, w: nets.TokenGRU(v, v, width=w, per_token=True))


def _sequence_lstm() -> list[Task]:
    """LSTMs from scratch, a second recurrent family beside the GRUs: MNIST-1D signals read one value per step
    (``val_acc``), token classification over longer sequences, and two-layer character-level language models
    (``val_loss``, minimised)."""
    signals = [(800, 0.1, 32, 32, 8), (1500, 0.3, 64, 64, 4), (3000, 0.2, 32, 128, 5), (600, 0.4, 64, 16, 10),
               (2000, 0.1, 64, 64, 6)]
    tokens = [(1200, 4, 16, 48, 0.5, 32, 32, 5), (2500, 3, 24, 40, 0.7, 64, 64, 4), (800, 2, 12, 64, 0.4, 32, 16, 6),
              (2000, 5, 20, 48, 0.6, 64, 64, 3)]
    lm = [(1000, 20, 24, 1.5, 32, 32, 6), (2500, 16, 32, 2.0, 64, 64, 4), (600, 24, 16, 1.2, 32, 16, 8),
          (1500, 12, 24, 1.0, 64, 32, 5), (3000, 28, 32, 2.5, 32, 128, 4)]
    tasks = []
    for i, (n, noise, width, batch, epochs) in enumerate(signals):
        optimizer = OPTIMIZERS[i % 3]
        tasks.append(Task(
            "sequence_lstm", f"signal_n{n}_noise{noise:g}_w{width}_e{epochs}_{optimizer}",
            lambda n=n, noise=noise, i=i: sources.mnist1d(n, noise, seed=500 + i),
            lambda c, shape, w=width: nets.SequenceLSTM(None, c, width=w), optimizer, batch, epochs,
            (("noise", noise), ("sequence_length", 40.0)),
        ))
    return tasks + _markov_tasks("sequence_lstm", tokens, lm, 600, lambda v, c, w: nets.SequenceLSTM(v, c, width=w),
                                 lambda v, w: nets.SequenceLSTM(v, v, width=w, layers=2, per_token=True), "x2")


def _regression_mlp() -> list[Task]:
    """MLP regression on tables, mean squared error, scored by validation R²."""
    settings = [("diabetes", 442, 0.0, 32, 16, 20), ("diabetes", 442, 0.0, 128, 32, 40), ("friedman1", 500, 1.0, 64, 32, 20),
                ("friedman1", 3000, 0.5, 64, 64, 8), ("friedman2", 500, 50.0, 32, 16, 15), ("friedman2", 2000, 100.0, 128, 64, 10),
                ("friedman3", 800, 0.1, 64, 32, 12), ("friedman3", 3000, 0.05, 32, 128, 6), ("linear", 300, 5.0, 32, 16, 30),
                ("linear", 1500, 20.0, 64, 64, 10), ("linear", 4000, 50.0, 128, 128, 5), ("friedman1", 1200, 2.0, 128, 32, 6),
                ("friedman2", 1000, 20.0, 64, 32, 25), ("linear", 800, 10.0, 64, 32, 15)]
    tasks = []
    for i, (name, n, noise, hidden, batch, epochs) in enumerate(settings):
        optimizer = OPTIMIZERS[i % 3]
        tasks.append(Task(
            "regression_mlp", f"{name}_n{n}_noise{noise:g}_h{hidden}_e{epochs}_{optimizer}",
            lambda name=name, n=n, noise=noise, i=i: sources.regression_table(name, n, noise, seed=400 + i),
            lambda c, shape, h=hidden: nets.mlp(shape[0], 1, hidden=h), optimizer, batch, epochs,
            regression=True, monitor="val_r2",
        ))
    return tasks


FINETUNE_DEFAULT_LR: dict[str, float] = {"adamw": 1e-4, "adam": 1e-4, "sgd": 1e-3}


def _finetune_cnn() -> list[Task]:
    """A CNN pretrained here on other alphabets (``pretrained.py``), fine-tuned on an evaluation alphabet: new
    classes, shifted drawings. Fine-tuning starts low: 1e-4 for Adam and AdamW, 1e-3 for SGD."""
    from pool.tasks import alphabets

    tasks = []
    for i, alphabet in enumerate(alphabets("evaluation", 14)[:14]):
        width, shots, epochs = (16, 32)[i % 2], (5, 10, 14)[i % 3], (8, 20)[(i // 2) % 2]
        optimizer = OPTIMIZERS[i % 3]
        tasks.append(Task(
            "finetune_cnn", f"{alphabet}_w{width}_k{shots}_e{epochs}_{optimizer}",
            lambda a=alphabet, k=shots: sources.omniglot_alphabet(a, 14, k),
            lambda c, shape, w=width: pretrained.pretrained_cnn(c, shape[-1], w), optimizer, 16, epochs,
            (("image_size", 14.0), ("shots", float(shots))), default_lr=FINETUNE_DEFAULT_LR[optimizer],
        ))
    return tasks


def _catalog() -> dict[str, list[Task]]:
    families = [_omniglot_cnn(), _omniglot_resnet(), _digits_mlp(), _tabular_mlp(), _mnist1d_cnn(), _small_tables_mlp(),
                _text_transformer(), _sequence_gru(), _regression_mlp(), _finetune_cnn(), _sequence_lstm()]
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
    raise ConfigError(f"Unknown task {key!r}: see pool.families.all_tasks().")

