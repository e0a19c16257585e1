"""Meta-training speed of the generic Dataset path against the specialised one, on the shipped Omniglot.

The same images, served two ways: ``dataset="omniglot"`` (``ClassImages``: uint8 arrays, rotations derived on the
fly) and a dict of ``TensorDataset``s holding every class, rotations included, as float tensors (what a user who
already holds the data would pass). Both give identical episodes (``tests/data/test_labelled_datasets.py``), so any
difference is the cost of serving them. Each arm trains the preset's learner through Lightning's ``Trainer``; the
arms alternate, ``--repeats`` times, and the median tasks/s is reported. Episode assembly alone is timed too.

    OMP_NUM_THREADS=2 python -m benchmarks.data.generic_speed --out benchmarks/results/generic_dataset_speed.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import TensorDataset

from lightning_meta.data import EpisodicDataModule
from lightning_meta.data.omniglot import load_omniglot

REPO = Path(__file__).resolve().parents[2]
PRESETS = {"protonet": "protonet_omniglot_5w1s", "maml": "maml_omniglot_5w1s"}


class Clock(L.Callback):
    """Wall time from the start of batch ``warmup`` to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.seconds = warmup, None, None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup and self.start is None:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, module) -> None:
        self.seconds = time.perf_counter() - self.start


def tensor_splits() -> dict[str, TensorDataset]:
    """Every class of each Vinyals split (4 rotations each) as one float TensorDataset per split."""
    out = {}
    for stage, classes in load_omniglot().items():
        xs = [classes.get(c, range(classes.num_samples(c))) for c in range(classes.num_classes)]
        sizes = torch.tensor([len(x) for x in xs])
        out[stage] = TensorDataset(torch.cat(xs), torch.arange(len(xs)).repeat_interleave(sizes))
    return out


def tasks_per_second(learner: str, dataset, steps: int, warmup: int) -> float:
    with initialize_config_dir(str(REPO / "conf"), version_base=None):
        cfg = compose("config", overrides=[f"+experiment={PRESETS[learner]}", "data.num_workers=0"])
    if dataset is None:
        dm = instantiate(cfg.data)
    else:  # the preset's episode shapes and counts, the data set object in place of the registered name
        settings = OmegaConf.to_container(cfg.data, resolve=True)
        settings.pop("_target_")
        dm = EpisodicDataModule(**{**settings, "dataset": dataset, "dataset_kwargs": {}})
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    clock = Clock(warmup)
    trainer = L.Trainer(max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
                        inference_mode=False, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    return (steps - warmup) * cfg.data.meta_batch_size / clock.seconds


def episodes_per_second(dataset, count: int = 2000) -> float:
    dm = EpisodicDataModule(dataset=dataset if dataset is not None else "omniglot", train={"ways": 5, "shots": 1, "queries": 15})
    episodes = dm.episode_dataset("train")
    start = time.perf_counter()
    for i in range(count):
        episodes[i]
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", nargs="+", default=["protonet", "maml"], choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    generic = tensor_splits()
    arms = {"specialised (dataset=omniglot)": None, "generic (TensorDataset per split)": generic}
    rows = []
    assembly = {name: statistics.median(episodes_per_second(ds) for _ in range(args.repeats)) for name, ds in arms.items()}
    for learner in args.learners:
        measured = {name: [] for name in arms}
        for _ in range(args.repeats):
            for name, ds in arms.items():  # alternate the arms so that drift of the machine hits both
                measured[name].append(tasks_per_second(learner, ds, args.steps, args.warmup))
                print(learner, name, f"{measured[name][-1]:.1f} tasks/s", flush=True)
        base = statistics.median(measured["specialised (dataset=omniglot)"])
        for name, values in measured.items():
            rows.append((learner, name, statistics.median(values), min(values), max(values), statistics.median(values) / base))
    lines = [
        "# Generic Dataset path vs. the specialised Omniglot path: meta-training speed",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, CPU. "
        f"Command: `OMP_NUM_THREADS={torch.get_num_threads()} python -m benchmarks.data.generic_speed --steps {args.steps} "
        f"--warmup {args.warmup} --repeats {args.repeats}`. Each arm trains the preset through Lightning's Trainer for "
        f"{args.steps} meta-iterations; tasks/s counts the {args.steps - args.warmup} after the first {args.warmup}; the "
        f"arms alternate, {args.repeats} times; median (min-max). The episodes of the two arms are identical.",
        "",
        "| learner (preset) | episode source | tasks/s, median (min-max) | ratio to specialised |",
        "|---|---|---|---:|",
    ]
    for learner, name, med, low, high, ratio in rows:
        lines.append(f"| {learner} (`+experiment={PRESETS[learner]}`) | {name} | {med:.1f} ({low:.1f}-{high:.1f}) | {ratio:.3f} |")
    lines += ["", "Episode assembly alone (5-way 1-shot 15 queries, 2,000 training episodes, no model), median of "
              f"{args.repeats}:", "", "| episode source | episodes/s |", "|---|---:|"]
    lines += [f"| {name} | {value:.0f} |" for name, value in assembly.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
