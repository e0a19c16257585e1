"""``EpisodicDataModule``: few-shot episodes of a registered data set, or of any labelled ``Dataset``, as Lightning
dataloaders.

Each batch is a meta-batch of tasks: ``(support_x [B, N*K, C, H, W], support_y [B, N*K],
query_x [B, N*Q, C, H, W], query_y [B, N*Q])``. Train, validation and test episodes have their
own ways/shots/queries and ``within_alphabet`` (see ``episodes``); validation and test episodes are
fixed by the seed, training episodes change every epoch. Under DDP each rank gets ``meta_batch_size / world_size`` tasks per step, so
the global meta-batch stays what the config says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch import Tensor
from torch.utils.data import DataLoader

from lightning_meta.checks import NonNegativeInt, PositiveInt, check_arguments, checked
from lightning_meta.data.classes import ClassImages
from lightning_meta.data.episodes import EpisodeDataset, EpisodeSampler, EpisodeSpec
from lightning_meta.data.labelled import is_dataset, labelled_splits
from lightning_meta.data.task_sets import TaskSetEpisodes, task_set_splits
from lightning_meta.data.registry import load_dataset, loader
from lightning_meta.errors import ConfigError

STAGE_SEEDS = {"train": 0, "val": 1, "test": 2}


def _spec(value: EpisodeSpec | Mapping | None, fallback: EpisodeSpec, stage: str) -> EpisodeSpec:
    if value is None:
        return fallback
    if isinstance(value, EpisodeSpec):
        return value
    given = dict(value)
    check_arguments(EpisodeSpec, given, "EpisodicDataModule", prefix=f"{stage}.")
    if not {"ways", "shots"} <= set(given):
        raise ConfigError(f"EpisodicDataModule got {stage}={given}, without ways or shots. Fix: give both, e.g. "
                          f"{stage}: {{ways: 5, shots: 1, queries: 15}}.")
    return EpisodeSpec(**{"queries": 15, **given})


class EpisodicDataModule(L.LightningDataModule):
    """Serves N-way K-shot episodes of ``dataset``: a registered name (``lightning_meta.data.registry``), a labelled
    map-style ``Dataset`` whose classes ``dataset_kwargs`` split (``split`` or ``ratios``), or a dict of them per split
    (``{"train": ds, "val": ds, "test": ds}``); see ``lightning_meta.data.labelled`` for how labels are found. Task
    sets in learn2learn's protocol (a dict of them, or ``get_tasksets``' result) serve their own tasks, split as
    learn2learn's examples split them (``lightning_meta.data.task_sets``).

    ``trainval=True`` meta-trains on the train and validation classes together, the protocol of papers
    that report final numbers after model selection (ProtoNet's 1200 Omniglot characters); validation
    then sees training classes, so runs using it should not select checkpoints on it.
    ``augmentation`` (e.g. a torchvision ``transforms.v2`` pipeline, or its Hydra config) transforms each training
    input, reproducibly per episode; validation and test episodes, and ``predict_task``, never see it.
    Every argument, ``dataset_kwargs`` included (against the data set's loader), is checked when it is built.
    """

    @checked
    def __init__(
        self,
        dataset: str | Any = "omniglot",
        root: str | Path | None = None,
        dataset_kwargs: Mapping[str, Any] | None = None,
        train: EpisodeSpec | Mapping[str, Any] | None = None,
        val: EpisodeSpec | Mapping[str, Any] | None = None,
        test: EpisodeSpec | Mapping[str, Any] | None = None,
        meta_batch_size: PositiveInt = 32,
        eval_batch_size: PositiveInt = 8,
        train_episodes: PositiveInt = 3200,
        val_episodes: PositiveInt = 200,
        test_episodes: PositiveInt = 1000,
        num_workers: NonNegativeInt = 0,
        seed: NonNegativeInt = 42,
        trainval: bool = False,
        augmentation: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.root = root
        self.dataset_kwargs = dict(dataset_kwargs or {})
        self.task_sets = None if isinstance(dataset, str) else task_set_splits(dataset)
        if isinstance(dataset, str):
            load = loader(dataset)
            check_arguments(load, {"root": root}, "EpisodicDataModule")
        elif self.task_sets is not None:
            if root is not None or self.dataset_kwargs or trainval or augmentation is not None:
                raise ConfigError("Task sets serve their own tasks: root, dataset_kwargs, trainval and augmentation do not "
                                  "apply to them. Fix: drop them, and build the task sets (with their transforms) as you want.")
            load = None
        else:
            if not (isinstance(dataset, Mapping) or is_dataset(dataset)):
                raise ConfigError(f"EpisodicDataModule got dataset={dataset!r:.60}, which is neither a registered name nor a "
                                  "data set. Fix: give dataset a name (e.g. omniglot), a map-style Dataset, a dict of them "
                                  "per split, or learn2learn task sets.")
            if root is not None:
                raise ConfigError(f"EpisodicDataModule got root={root!r} with a data set object: root locates a registered "
                                  "data set's files. Fix: drop root (the data set object already knows its files).")
            load = labelled_splits
        if load is not None:
            check_arguments(load, self.dataset_kwargs, "EpisodicDataModule", prefix="dataset_kwargs.")
        self._given_specs = {"train": train is not None, "val": val is not None, "test": test is not None}
        self.specs = {"train": _spec(train, EpisodeSpec(5, 1, 15), "train")}
        self.specs["test"] = _spec(test, self.specs["train"], "test")
        self.specs["val"] = _spec(val, self.specs["test"], "val")
        for stage in ("test", "val"):  # test first: val inherits its shape
            if self.specs[stage].queries < 1:
                raise ConfigError(f"EpisodicDataModule got {stage}.queries=0 (val defaults to test, test to train), but "
                                  f"evaluation measures accuracy on query images. Fix: set {stage}.queries >= 1 (e.g. 15).")
        self.meta_batch_size = meta_batch_size
        self.eval_batch_size = eval_batch_size
        self.episodes = {"train": train_episodes, "val": val_episodes, "test": test_episodes}
        self.num_workers = num_workers
        self.seed = seed
        self.trainval = trainval
        self.augmentation = augmentation
        self.classes: dict[str, ClassImages] | None = None
        self._task_set_specs_read = False
        self._epoch = 0

    def spec(self, stage: str) -> EpisodeSpec:
        """The episode shape of ``stage`` ("train", "val" or "test")."""
        return self.specs[stage]

    def setup(self, stage: str | None = None) -> None:
        """Loads the images once and checks every stage's episode shape against them."""
        if self.task_sets is not None:
            if not self._task_set_specs_read:
                self._take_task_set_specs()
        elif self.classes is None:
            if isinstance(self.dataset, str):
                self.classes = load_dataset(self.dataset, self.root, **self.dataset_kwargs)
            else:
                self.classes = labelled_splits(self.dataset, **self.dataset_kwargs)
            if self.trainval:
                self.classes["train"] = self.classes["train"].merged(self.classes["val"])
            for name, spec in self.specs.items():
                spec.check(self.classes[name], f"{self.dataset_name} {name} split")

    def _take_task_set_specs(self) -> None:
        """Each stage's episode shape is its task set's; a shape given for the stage must agree with it."""
        for stage, task_set in self.task_sets.items():
            found = TaskSetEpisodes(task_set, 1, (self.seed, STAGE_SEEDS[stage])).spec
            given = self.specs[stage]
            if self._given_specs.get(stage) and (given.ways, given.shots, given.queries) != (found.ways, found.shots, found.queries):
                raise ConfigError(f"The {stage} task set gives {found.ways}-way {found.shots}-shot tasks with {found.queries} "
                                  f"queries, but {stage}= says {given.ways}/{given.shots}/{given.queries}. Fix: drop {stage}= "
                                  "(the task set decides) or build the task set with that shape.")
            self.specs[stage] = found
        self._task_set_specs_read = True

    @property
    def dataset_name(self) -> str:
        """The registered name, or the data set's class for a data set object (for messages)."""
        if isinstance(self.dataset, str):
            return self.dataset
        if isinstance(self.dataset, Mapping):
            return "/".join(sorted({type(d).__name__ for d in self.dataset.values()}))
        return type(self.dataset).__name__

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(C, H, W) for images; the shape of one input otherwise (token ids ``(L,)``, features ``(D,)``)."""
        self.setup()
        if self.task_sets is not None:
            return tuple(self.episode_dataset("train")[0][0].shape[1:])
        return self.classes["train"].input_shape

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """How the data set made its pixels (``data.preprocessing.describe``): what a learner records in its
        checkpoint so that ``predict_task`` can prepare new images the same way. None if the loader does not say."""
        self.setup()
        if self.task_sets is not None:
            return None
        recorded = self.classes["train"].preprocessing
        return dict(recorded) if recorded is not None else None

    def meta_features(self) -> dict[str, float]:
        """Facts about the task distribution, read by the hyperparameter mapping."""
        self.setup()
        spec = self.specs["train"]
        facts: dict[str, float] = {"ways": spec.ways, "shots": spec.shots}
        if self.task_sets is None:
            train = self.classes["train"]
            facts.update(n_classes=train.num_classes, n_samples=train.min_samples * train.num_classes)
        shape = self.input_shape
        if len(shape) == 3:
            facts.update(channels=shape[0], height=shape[1], width=shape[2])
        else:
            facts["input_dim"] = int(np.prod(shape))
        return facts

    def _per_rank(self, size: int) -> int:
        world = self.trainer.world_size if self.trainer is not None else 1
        if size % world:
            raise ConfigError(f"Batch size {size} does not split evenly over {world} DDP ranks. Fix: use a multiple of {world}.")
        return size // world

    @property
    def training_augmentation(self) -> str | None:
        """The augmentation in words (its repr), what a checkpoint records as applied in training only."""
        return None if self.augmentation is None else repr(self.augmentation)

    def episode_dataset(self, stage: str) -> EpisodeDataset | TaskSetEpisodes:
        """The episodes of ``stage`` ("train", "val" or "test"): item ``i`` is episode ``i`` of this seed and stage."""
        self.setup()
        if self.task_sets is not None:
            return TaskSetEpisodes(self.task_sets[stage], self.episodes[stage], (self.seed, STAGE_SEEDS[stage]))
        augment = self.augmentation if stage == "train" else None
        return EpisodeDataset(self.classes[stage], self.specs[stage], self.episodes[stage], (self.seed, STAGE_SEEDS[stage]),
                              augment)

    def _epoch_now(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else self._epoch

    def train_dataloader(self) -> DataLoader:
        dataset = self.episode_dataset("train")
        return DataLoader(
            dataset,
            batch_size=self._per_rank(self.meta_batch_size),
            sampler=EpisodeSampler(len(dataset), self._epoch_now),
            num_workers=self.num_workers,
            persistent_workers=False,
            drop_last=True,
        )

    def _eval_loader(self, stage: str) -> DataLoader:
        return DataLoader(self.episode_dataset(stage), batch_size=self.eval_batch_size, shuffle=False, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
