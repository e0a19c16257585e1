"""learn2learn 0.2.0 and lightning_meta on the same Omniglot tasks, both ways, with learn2learn itself installed
(``../shared/tools/install-learn2learn.sh``-style build; the test suite uses a look-alike instead).

1. learn2learn's own task pipeline (``MetaDataset`` -> ``TaskDataset`` with ``NWays``, ``KShots(2 * shots)``,
   ``LoadData``, ``RemapLabels``, ``ConsecutiveLabels``) feeds our ``MAML`` through Lightning's ``Trainer``.
2. The same ``MAML`` trained on our own episodes, for the same number of meta-iterations.
3. learn2learn's MAML example loop (``l2l.algorithms.MAML``, ``clone``/``adapt``, even/odd split) trained on our
   episodes, handed over by ``learn2learn_tasksets``.

Every arm tests on 5-way 1-shot tasks with the same Conv4 and settings (inner lr 0.4, one inner step, meta-batch 32,
Adam 1e-3); arms 1-2 test on their own source's episodes, arm 3 on ours.

    OMP_NUM_THREADS=2 python -m benchmarks.interop.learn2learn_interop --steps 150 --out benchmarks/results/learn2learn_interop.md
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import learn2learn as l2l
import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lightning_meta.data import EpisodicDataModule
from lightning_meta.data.omniglot import load_omniglot
from lightning_meta.data.task_sets import BenchmarkTasksets, learn2learn_tasksets
from lightning_meta.learners import MAML
from lightning_meta.nets import Conv4

WAYS, SHOTS, INNER_LR, META_BATCH = 5, 1, 0.4, 32


def l2l_tasksets(test_tasks: int) -> BenchmarkTasksets:
    """learn2learn's pipeline over the Vinyals splits (rotations as classes), as its Omniglot example builds it."""
    sets = []
    for stage, classes in load_omniglot().items():
        xs = [classes.get(c, range(classes.num_samples(c))) for c in range(classes.num_classes)]
        ds = TensorDataset(torch.cat(xs), torch.arange(len(xs)).repeat_interleave(torch.tensor([len(x) for x in xs])))
        meta = l2l.data.MetaDataset(ds)
        t = l2l.data.transforms
        transforms = [t.NWays(meta, WAYS), t.KShots(meta, 2 * SHOTS), t.LoadData(meta), t.RemapLabels(meta),
                      t.ConsecutiveLabels(meta)]
        sets.append(l2l.data.TaskDataset(meta, task_transforms=transforms, num_tasks=-1 if stage == "train" else test_tasks))
    return BenchmarkTasksets(*sets)


def network(seed: int = 0) -> Conv4:
    torch.manual_seed(seed)
    return Conv4(1, WAYS, 64, "stride", 28)


def train_ours(dataset, steps: int, test_tasks: int) -> tuple[float, float, float]:
    """Our MAML through the Trainer: (test accuracy, its 95 % CI, seconds)."""
    dm = EpisodicDataModule(dataset=dataset, train={"ways": WAYS, "shots": SHOTS, "queries": SHOTS} if isinstance(dataset, str) else None,
                            meta_batch_size=META_BATCH, train_episodes=steps * META_BATCH, val_episodes=1,
                            test_episodes=test_tasks, eval_batch_size=50)
    learner = MAML(network(), inner_lr=INNER_LR, inner_steps=1, inner_steps_eval=1, channels_last=True)
    trainer = L.Trainer(max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, inference_mode=False)
    start = time.perf_counter()
    trainer.fit(learner, datamodule=dm)
    seconds = time.perf_counter() - start
    result = trainer.test(learner, datamodule=dm, verbose=False)[0]
    return result["test_acc"], result["test_acc_ci95"], seconds


def fast_adapt(batch, learner, loss, shots: int, ways: int) -> tuple[torch.Tensor, torch.Tensor]:
    """learn2learn's example, as written there: even positions adapt, odd positions evaluate."""
    data, labels = batch
    adaptation = np.zeros(data.size(0), dtype=bool)
    adaptation[np.arange(shots * ways) * 2] = True
    evaluation = torch.from_numpy(~adaptation)
    adaptation = torch.from_numpy(adaptation)
    learner.adapt(loss(learner(data[adaptation]), labels[adaptation]))
    predictions = learner(data[evaluation])
    return loss(predictions, labels[evaluation]), (predictions.argmax(1) == labels[evaluation]).float().mean()


def train_l2l_loop(steps: int, test_tasks: int) -> tuple[float, float, float]:
    """learn2learn's MAML loop on our episodes (handed over by ``learn2learn_tasksets``)."""
    dm = EpisodicDataModule(dataset="omniglot", train={"ways": WAYS, "shots": SHOTS, "queries": SHOTS},
                            test_episodes=test_tasks)
    tasksets = learn2learn_tasksets(dm)
    maml = l2l.algorithms.MAML(network(), lr=INNER_LR, first_order=False)
    optimizer = torch.optim.Adam(maml.parameters(), 1e-3)
    loss = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        for _ in range(META_BATCH):
            error, _ = fast_adapt(tasksets.train.sample(), maml.clone(), loss, SHOTS, WAYS)
            (error / META_BATCH).backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    accs = [float(fast_adapt(tasksets.test[i], maml.clone(), loss, SHOTS, WAYS)[1]) for i in range(test_tasks)]
    return float(np.mean(accs)), 1.96 * float(np.std(accs)) / np.sqrt(len(accs)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--test-tasks", type=int, default=600)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = [
        ("learn2learn TaskDataset (NWays, KShots, LoadData, RemapLabels, ConsecutiveLabels)", "lightning_meta MAML + Trainer",
         train_ours(l2l_tasksets(args.test_tasks), args.steps, args.test_tasks)),
        ("lightning_meta episodes (dataset=omniglot)", "lightning_meta MAML + Trainer",
         train_ours("omniglot", args.steps, args.test_tasks)),
        ("lightning_meta episodes via learn2learn_tasksets()", "learn2learn example loop (l2l.algorithms.MAML)",
         train_l2l_loop(args.steps, args.test_tasks)),
    ]
    lines = [
        "# learn2learn interop: its task pipeline feeds our MAML, our episodes feed its training loop",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, CPU; learn2learn {l2l.__version__}, torch "
        f"{torch.__version__}. Command: `OMP_NUM_THREADS={torch.get_num_threads()} python -m "
        f"benchmarks.interop.learn2learn_interop --steps {args.steps} --test-tasks {args.test_tasks}`.",
        "",
        f"Second-order MAML, Conv4 (64 filters, strided), {WAYS}-way {SHOTS}-shot with {SHOTS} query per class (the "
        f"even/odd convention of learn2learn's examples), inner lr {INNER_LR}, one inner step in training and test, "
        f"meta-batch {META_BATCH}, Adam 1e-3, {args.steps} meta-iterations, the same initial weights; test: "
        f"{args.test_tasks} tasks of the test characters of the task source, mean ± 95 % CI.",
        "",
        "| task source | training loop | test accuracy | training time |",
        "|---|---|---|---:|",
    ]
    for source, loop, (acc, ci, seconds) in rows:
        lines.append(f"| {source} | {loop} | {100 * acc:.2f} ± {100 * ci:.2f} % | {seconds:.0f} s |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
