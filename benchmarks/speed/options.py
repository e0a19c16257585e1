"""Which speed options pay off: channels_last, bf16 autocast (Lightning's ``precision="bf16-mixed"``)
and ``torch.compile``, each timed on our own learners against plain fp32, side by side.

Workloads: ProtoNet's Omniglot training episode (60-way 1-shot, 5 queries) and second-order MAML on
Omniglot 5-way 1-shot, meta-batch 32. An option that raises is reported with its error instead of
a time. The loss of the first update is printed beside each time: an option must not change it
beyond rounding (bf16 changes it by its ~3 significant digits).

    OMP_NUM_THREADS=2 python benchmarks/speed/options.py            # writes benchmarks/results/speed_<device>_options.md
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from benchmarks.speed.ours import our_network, our_step  # noqa: E402
from benchmarks.speed.timing import LoopContender, interleaved  # noqa: E402
from benchmarks.speed.workload import Workload, synthetic_episodes  # noqa: E402
from lightning_meta.learners import MAML, ProtoNet  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
WORKLOADS = {
    "ProtoNet, 60-way 1-shot 5 queries (one episode)": Workload("protonet", "omniglot", 60, 1, 5, 1),
    "MAML 2nd order, 5-way 1-shot 15 queries, meta-batch 32": Workload("maml", "omniglot", 5, 1, 15, 32),
}
OPTIONS = ("fp32", "channels_last", "bf16 autocast", "channels_last + bf16 autocast", "torch.compile")


def learner(workload: Workload, option: str):
    """Our learner with the option's layout and compilation (ProtoNet keeps its default BatchNorm mode)."""
    channels_last = "channels_last" in option
    if workload.algo == "protonet":
        model = ProtoNet(our_network(workload), channels_last=channels_last)
    else:
        model = MAML(our_network(workload), inner_lr=workload.inner_lr, channels_last=channels_last)
    if option == "torch.compile":
        model.backbone = torch.compile(model.backbone)
    return model


def step_for(workload: Workload, option: str, device: torch.device):
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if "bf16" in option else None
    return our_step(workload, synthetic_episodes(workload), device, learner=learner(workload, option), autocast=autocast)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    lines = [
        f"# Speed options on {args.device}", "",
        f"Command: `OMP_NUM_THREADS={torch.get_num_threads()} python benchmarks/speed/options.py --device {args.device}`; "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads. "
        f"Median seconds per update over {args.repeats} interleaved rounds x {args.iters} updates, after 2 warm-up "
        "updates (which include torch.compile's compilation); loss = the first update's loss.", "",
        "| workload | option | s / update | speed-up vs fp32 | first loss |", "|---|---|---:|---:|---:|",
    ]
    for label, workload in WORKLOADS.items():
        steps, losses, errors = {}, {}, {}
        for option in OPTIONS:
            try:
                step = step_for(workload, option, device)
                losses[option] = float(step())  # fails here if the option cannot run this learner
                steps[option] = LoopContender(step, device)
            except Exception as err:  # reported in the table, not hidden
                errors[option] = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
        timings = interleaved(steps, device, warmup=2, repeats=args.repeats, iters=args.iters)
        base = timings["fp32"].median
        for option in OPTIONS:
            if option in errors:
                lines.append(f"| {label} | {option} | fails | – | {errors[option]} |")
                continue
            t = timings[option].median
            lines.append(f"| {label} | {option} | {t:.3f} | {base / t:.2f}x | {losses[option]:.5f} |")
            print(lines[-1], flush=True)
    out = RESULTS / f"speed_{args.device}_options.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
