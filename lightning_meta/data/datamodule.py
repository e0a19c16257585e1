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

from lightning_meta.data.classes import ClassImages
from lightning_meta.data.episodes import EpisodeDataset, EpisodeSampler, EpisodeSpec
from lightning_meta.data.registry import load_dataset
from lightning_meta.errors import ConfigError

STAGE_SEEDS = {"train": 0, "val": 1, "test": 2}


def _spec(value: EpisodeSpec | Mapping | None, fallback: EpisodeSpec | None = None) -> EpisodeSpec:
    if value is None:
        if fallback is None:
            raise ConfigError("Episode shape missing. Fix: give ways, shots and queries, e.g. {ways: 5, shots: 1, queries: 15}.")
        return fallback
    if isinstance(value, EpisodeSpec):
        return value
    unknown = set(value) - {"ways", "shots", "queries", "within_alphabet"}
    if unknown:
        raise ConfigError(f"Unknown episode keys {sorted(unknown)}. Fix: use only ways, shots, queries, within_alphabet.")
    return EpisodeSpec(int(value["ways"]), int(value["shots"]), int(value.get("queries", 15)),
                       bool(value.get("within_alphabet", False)))


class EpisodicDataModule(L.LightningDataModule):
    """Serves N-way K-shot episodes of ``dataset`` (see ``lightning_meta.data.registry``).

    ``trainval=True`` meta-trains on the train and validation classes together, the protocol of papers
    that report final numbers after model selection (ProtoNet's 1200 Omniglot characters); validation
    then sees training classes, so runs using it should not select checkpoints on it.
    """

    def __init__(
        self,
        dataset: str = "omniglot",
        root: str | Path | None = None,
        dataset_kwargs: Mapping | None = None,
        train: EpisodeSpec | Mapping | None = None,
        val: EpisodeSpec | Mapping | None = None,
        test: EpisodeSpec | Mapping | None = None,
        meta_batch_size: int = 32,
        eval_batch_size: int = 8,
        train_episodes: int = 3200,
        val_episodes: int = 200,
        test_episodes: int = 1000,
        num_workers: int = 0,
        seed: int = 42,
        trainval: bool = False,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.root = root
        self.dataset_kwargs = dict(dataset_kwargs or {})
        self.specs = {"train": _spec(train, EpisodeSpec(5, 1, 15))}
        self.specs["test"] = _spec(test, self.specs["train"])
        self.specs["val"] = _spec(val, self.specs["test"])
        if min(meta_batch_size, eval_batch_size, train_episodes, val_episodes, test_episodes) < 1:
            raise ConfigError("meta_batch_size, eval_batch_size and the episode counts must be >= 1.")
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
