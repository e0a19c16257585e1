"""Episodic few-shot data: task sampling, data set loaders and the Lightning DataModule."""

from lightning_meta.data.classes import ClassImages
from lightning_meta.data.datamodule import EpisodicDataModule
from lightning_meta.data.episodes import EpisodeDataset, EpisodeSampler, EpisodeSpec
from lightning_meta.data.registry import LOADERS, load_dataset

__all__ = ["ClassImages", "EpisodeDataset", "EpisodeSampler", "EpisodeSpec", "EpisodicDataModule", "LOADERS", "load_dataset"]
