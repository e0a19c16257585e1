"""learn2learn's task-set protocol both ways, without learn2learn: a look-alike of its TaskDataset feeds our
learners, and our episodes feed code written for learn2learn (benchmarks/interop/learn2learn_interop.py runs the
same against learn2learn 0.2.0 itself)."""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from lightning_meta.data import EpisodicDataModule
from lightning_meta.data.task_sets import BenchmarkTasksets, learn2learn_tasksets, split_task
from lightning_meta.errors import ConfigError, DataError
from lightning_meta.learners import MAML
from lightning_meta.nets import Conv4


class FakeTaskDataset(Dataset):
    """learn2learn's TaskDataset protocol: NWays(ways), KShots(2 * shots), LoadData, RemapLabels drawn with Python's
    ``random``; ``sample()`` returns ``(data, labels)`` of one task. No ConsecutiveLabels: classes come interleaved."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, ways: int, shots: int) -> None:
        self.x, self.y, self.ways, self.k = x, y, ways, 2 * shots
        self.by_class = {int(c): (y == c).nonzero().flatten().tolist() for c in y.unique()}

    def sample(self):
        classes = random.sample(sorted(self.by_class), self.ways)
        rows = [(random.sample(self.by_class[c], self.k), label) for label, c in enumerate(classes)]
        order = [(i, label) for j in range(self.k) for members, label in rows for i in [members[j]]]
        return self.x[[i for i, _ in order]], torch.tensor([label for _, label in order])

    def __len__(self) -> int:
        return 1000

    def __getitem__(self, i: int):
        return self.sample()


def fake_tasksets(ways: int = 3, shots: int = 1) -> BenchmarkTasksets:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12 * 6, 1, 16, 16, generator=g)
    y = torch.arange(12).repeat_interleave(6)
    return BenchmarkTasksets(*(FakeTaskDataset(x, y, ways, shots) for _ in range(3)))


def test_a_task_is_split_as_learn2learns_examples_split_it():
    data = torch.arange(8.0)[:, None]
    labels = torch.tensor([7, 3, 7, 3, 7, 3, 7, 3])  # two classes, four samples each, interleaved
    sx, sy, qx, qy = split_task(data, labels)
    # stable sort by label: class 3 = items 1, 3, 5, 7 (support 1, 5; query 3, 7); class 7 = 0, 2, 4, 6
    assert sx.flatten().tolist() == [1, 5, 0, 4] and qx.flatten().tolist() == [3, 7, 2, 6]
    assert sy.tolist() == [0, 0, 1, 1] and qy.tolist() == [0, 0, 1, 1]
    with pytest.raises(DataError, match=r"needs >= 2 classes of one even count each\. Fix: sample tasks with NWays"):
        split_task(torch.zeros(5, 1), torch.tensor([0, 0, 1, 1, 1]))


def test_task_set_episodes_are_a_pure_function_of_the_index_and_take_their_shape_from_the_tasks():
    ts = fake_tasksets(ways=4, shots=2)
    dm = EpisodicDataModule(dataset=ts, train_episodes=6, val_episodes=2, test_episodes=2)
    dm.setup()
    assert (dm.spec("train").ways, dm.spec("train").shots, dm.spec("train").queries) == (4, 2, 2)
    episodes = dm.episode_dataset("train")
    random.seed(1)
    first = episodes[3]
    random.seed(2)
    assert all(torch.equal(a, b) for a, b in zip(first, episodes[3]))
    assert not torch.equal(first[0], episodes[4][0])
    assert first[1].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ConfigError, match=r"gives 4-way 2-shot tasks with 2 queries, but train= says 5/1/15"):
        EpisodicDataModule(dataset=ts, train={"ways": 5, "shots": 1}).setup()


def test_a_learn2learn_task_set_trains_our_maml():
    dm = EpisodicDataModule(dataset=fake_tasksets(), train_episodes=4, val_episodes=2, test_episodes=2,
                            meta_batch_size=2, eval_batch_size=2)
    learner = MAML(Conv4(1, out_features=3, hidden=4, image_size=16), inner_steps=1)
    before = [p.detach().clone() for p in learner.parameters()]
    trainer = L.Trainer(max_steps=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, inference_mode=False)
    trainer.fit(learner, datamodule=dm)
    acc = trainer.test(learner, datamodule=dm, verbose=False)[0]["test_acc"]
    assert 0.0 <= acc <= 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.parameters()))


def test_our_episodes_feed_code_written_for_learn2learn():
    x = torch.arange(10 * 4, dtype=torch.float32)[:, None]
    dm = EpisodicDataModule(dataset=TensorDataset(x, torch.arange(10).repeat_interleave(4)),
                            dataset_kwargs={"ratios": [0.6, 0.2, 0.2]}, train={"ways": 2, "shots": 2, "queries": 2})
    tasksets = learn2learn_tasksets(dm)
    data, labels = tasksets.train.sample()
    # what learn2learn's MAML example does with a batch
    adaptation = np.zeros(data.size(0), dtype=bool)
    adaptation[np.arange(2 * 2) * 2] = True
    sx, sy, qx, qy = dm.episode_dataset("train")[0]
    assert torch.equal(data[torch.from_numpy(adaptation)], sx) and torch.equal(labels[torch.from_numpy(adaptation)], sy)
    assert torch.equal(data[torch.from_numpy(~adaptation)], qx) and torch.equal(labels[torch.from_numpy(~adaptation)], qy)
    assert torch.equal(tasksets.train.sample()[0][0::2], dm.episode_dataset("train")[1][0])
    round_trip = learn2learn_tasksets(EpisodicDataModule(dataset=fake_tasksets(ways=2, shots=1), train_episodes=3))
    assert round_trip.train.sample()[1].tolist() == [0, 0, 1, 1]  # learn2learn's task sets, handed back unchanged
    with pytest.raises(DataError, match="as many queries as shots per class, got shots=1, queries=15"):
        learn2learn_tasksets(EpisodicDataModule(dataset="omniglot"))
