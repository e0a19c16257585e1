"""``EpisodicDataModule``: few-shot episodes of any registered data set as Lightning dataloaders.

Each batch is a meta-batch of tasks: ``(support_x [B, N*K, C, H, W], support_y [B, N*K],
query_x [B, N*Q, C, H, W], query_y [B, N*Q])``. Train, validation and test episodes have their
own ways/shots/queries and ``within_alphabet`` (see ``episodes``); validation and test episodes are
fixed by the seed, training episodes change every epoch. Under DDP each rank gets ``meta_batch_size / world_size`` tasks per step, so
the global meta-batch stays what the config says.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from lightning_meta.checks import NonNegativeInt, PositiveInt, check_arguments, checked
from lightning_meta.data.classes import ClassImages
from lightning_meta.data.episodes import EpisodeDataset, EpisodeSampler, EpisodeSpec
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
    """Serves N-way K-shot episodes of ``dataset`` (see ``lightning_meta.data.registry``).

    ``trainval=True`` meta-trains on the train and validation classes together, the protocol of papers
    that report final numbers after model selection (ProtoNet's 1200 Omniglot characters); validation
    then sees training classes, so runs using it should not select checkpoints on it.
    Every argument, ``dataset_kwargs`` included (against the data set's loader), is checked when it is built.
    """

    @checked
    def __init__(
        self,
        dataset: str = "omniglot",
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
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.root = root
        self.dataset_kwargs = dict(dataset_kwargs or {})
        load = loader(dataset)
        check_arguments(load, {"root": root}, "EpisodicDataModule")
        check_arguments(load, self.dataset_kwargs, "EpisodicDataModule", prefix="dataset_kwargs.")
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
        self.classes: dict[str, ClassImages] | None = None
        self._epoch = 0

    def spec(self, stage: str) -> EpisodeSpec:
        """The episode shape of ``stage`` ("train", "val" or "test")."""
        return self.specs[stage]

    def setup(self, stage: str | None = None) -> None:
        """Loads the images once and checks every stage's episode shape against them."""
        if self.classes is None:
            self.classes = load_dataset(self.dataset, self.root, **self.dataset_kwargs)
            if self.trainval:
                self.classes["train"] = self.classes["train"].merged(self.classes["val"])
            for name, spec in self.specs.items():
                spec.check(self.classes[name], f"{self.dataset} {name} split")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        self.setup()
        return self.classes["train"].input_shape

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """How the data set made its pixels (``data.preprocessing.describe``): what a learner records in its
        checkpoint so that ``predict_task`` can prepare new images the same way. None if the loader does not say."""
        self.setup()
        recorded = self.classes["train"].preprocessing
        return dict(recorded) if recorded is not None else None

    def meta_features(self) -> dict[str, float]:
        """Facts about the task distribution, read by the hyperparameter mapping."""
        self.setup()
        train, spec = self.classes["train"], self.specs["train"]
        c, h, w = train.input_shape
        return {"n_classes": train.num_classes, "n_samples": train.min_samples * train.num_classes,
                "channels": c, "height": h, "width": w, "ways": spec.ways, "shots": spec.shots}

    def _per_rank(self, size: int) -> int:
        world = self.trainer.world_size if self.trainer is not None else 1
        if size % world:
            raise ConfigError(f"Batch size {size} does not split evenly over {world} DDP ranks. Fix: use a multiple of {world}.")
        return size // world

    def _dataset(self, stage: str) -> EpisodeDataset:
        self.setup()
        return EpisodeDataset(self.classes[stage], self.specs[stage], self.episodes[stage], (self.seed, STAGE_SEEDS[stage]))

    def _epoch_now(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else self._epoch

    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset("train")
        return DataLoader(
            dataset,
            batch_size=self._per_rank(self.meta_batch_size),
            sampler=EpisodeSampler(len(dataset), self._epoch_now),
            num_workers=self.num_workers,
            persistent_workers=False,
            drop_last=True,
        )

    def _eval_loader(self, stage: str) -> DataLoader:
        return DataLoader(self._dataset(stage), batch_size=self.eval_batch_size, shuffle=False, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
