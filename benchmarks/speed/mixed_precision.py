"""bf16 autocast as a speed lever: what it buys per learner, and how far its meta-gradient is from float64's.

A faster update is only a lever if it still computes the meta-gradient. For each learner on the Omniglot 5-way
1-shot workload this measures, from the same weights and episodes:

* agreement: the cosine and the relative norm of the difference between the update's gradient under
  ``torch.autocast("cpu", torch.bfloat16)`` (what ``trainer.precision=bf16-mixed`` runs) and the same learner's
  gradient in float64; float32 beside it as the yardstick (meta-batch 4);
* speed: tasks/s of the float32 and the bf16 update with ``task_threads`` = the torch threads, timed interleaved
  (meta-batch 32, as ``run.py``), beside learn2learn's same update in float32 and under the same autocast (its step
  wrapped whole, as a user of its examples would) when this interpreter can import it.

    OMP_NUM_THREADS=2 python -m benchmarks.speed.mixed_precision
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.speed.baseline_l2l import NOT_INSTALLED, l2l_step, l2l_version
from benchmarks.speed.machine import describe
from benchmarks.speed.ours import our_learner, our_network, our_step
from benchmarks.speed.timing import LoopContender, Step, interleaved
from benchmarks.speed.workload import Workload, synthetic_episodes, workloads

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def gradient(workload: Workload, dtype: torch.dtype, bf16: bool) -> torch.Tensor:
    """The flattened gradient of one update's loss, the learner's weights in ``dtype``, under bf16 autocast or not."""
    learner = our_learner(workload, our_network(workload)).to("cpu", dtype)
    e = synthetic_episodes(workload, seed=1).to("cpu", dtype)
    with torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext():
        loss, _ = learner.meta_loss((e.support_x, e.support_y, e.query_x, e.query_y))
    loss.backward()
    return torch.cat([p.grad.flatten().double() for p in learner.parameters() if p.grad is not None])


def agreement(workload: Workload) -> dict[str, tuple[float, float]]:
    """``precision -> (cosine, relative norm of the difference)`` against float64."""
    small = replace(workload, meta_batch=4)
    exact = gradient(small, torch.float64, False)
    out = {}
    for name, bf16 in (("float32", False), ("bf16 autocast", True)):
        got = gradient(small, torch.float32, bf16)
        out[name] = (float(torch.nn.functional.cosine_similarity(got, exact, dim=0)),
                     float((got - exact).norm() / exact.norm()))
    return out


def speed(workload: Workload, repeats: int) -> dict[str, float]:
    """Tasks/s of the float32 and the bf16 update, task threads on, and learn2learn's in both, interleaved."""
    episodes, device, threads = synthetic_episodes(workload), torch.device("cpu"), torch.get_num_threads()
    bf16 = torch.autocast("cpu", torch.bfloat16)
    contenders = {
        "float32": LoopContender(our_step(workload, episodes, device, task_threads=threads), device),
        "bf16 autocast": LoopContender(our_step(workload, episodes, device, task_threads=threads, autocast=bf16), device),
    }
    if l2l_version() != NOT_INSTALLED:
        contenders["learn2learn float32"] = LoopContender(l2l_step(workload, episodes, device), device)
        contenders["learn2learn bf16 autocast"] = LoopContender(_under(bf16, l2l_step(workload, episodes, device)), device)
    timings = interleaved(contenders, device, warmup=1, repeats=repeats, iters=2, budget_s=30.0)
    return {name: workload.meta_batch / timing.median for name, timing in timings.items()}


def _under(autocast: contextlib.AbstractContextManager, step: Step) -> Step:
    def run() -> object:
        with autocast:
            return step()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="speed_mixed_precision")
    args = parser.parse_args()
    began = time.perf_counter()
    lines = ["# bf16 autocast as a speed lever: speed and meta-gradient agreement per learner", "",
             "| machine | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in describe(torch.device("cpu")).items()], "",
             "Agreement: cosine / relative norm of the difference between the update's gradient and the same "
             "learner's float64 gradient (same weights and episodes, meta-batch 4). Speed: tasks/s with task_threads "
             f"= {torch.get_num_threads()}, meta-batch 32, interleaved rounds, median.", "",
             "| learner | float32 agreement | bf16 agreement | float32 tasks/s | bf16 tasks/s | bf16 / float32 | "
             "learn2learn float32 / bf16 tasks/s | ours bf16 / learn2learn float32 | ours bf16 / learn2learn bf16 |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for workload in workloads("cpu"):
        if workload.image != "omniglot" or workload.ways != 5:
            continue
        agree, rate = agreement(workload), speed(workload, args.repeats)
        cell = lambda name: f"{agree[name][0]:.4f} / {agree[name][1]:.3f}"  # noqa: E731
        ours = rate["bf16 autocast"]
        theirs = (f"{rate['learn2learn float32']:.1f} / {rate['learn2learn bf16 autocast']:.1f} | "
                  f"{ours / rate['learn2learn float32']:.2f}x | {ours / rate['learn2learn bf16 autocast']:.2f}x"
                  if "learn2learn float32" in rate else "not installed | – | –")
        lines.append(f"| {workload.algo} ({workload.inner_steps} inner step{'s' * (workload.inner_steps > 1)}) | "
                     f"{cell('float32')} | {cell('bf16 autocast')} | {rate['float32']:.1f} | "
                     f"{ours:.1f} | {ours / rate['float32']:.2f}x | {theirs} |")
        print(lines[-1], flush=True)
    lines += ["", f"Command: `OMP_NUM_THREADS={torch.get_num_threads()} python -m benchmarks.speed.mixed_precision`; "
              f"{time.perf_counter() - began:.0f} s on {platform.machine()}."]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
