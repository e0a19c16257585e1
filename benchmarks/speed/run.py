"""Speed of the meta-learners against learn2learn 0.2.0, side by side in one process.

    python benchmarks/speed/run.py [--device cpu|cuda] [--quick] [--out benchmarks/results/speed_<device>]

1. Correctness: our second-order MAML meta-gradients (``MAML.meta_loss`` and the task-batched
   path) against an independent float64 reference; exits with status 1 when one is off by more
   than 1e-4 (float64, CPU) / 1e-3 (float32, GPU). learn2learn's is checked and reported too.
2. Timing: the meta-training step (forward, backward, optimizer step) of MAML, first-order MAML,
   Reptile and ProtoNet on Omniglot and miniImageNet shapes, ours and learn2learn's on the same
   synthetic episodes from the same initial weights, interleaved; medians over repeats.
3. Peak memory (CUDA allocator peak; on CPU the peak-RSS increase in a fresh process per
   contender) and the arithmetic floor (FLOPs of our step at the machine's large-matmul rate).
4. ``<out>.md``, ``<out>.json`` and ``<out>.png``.

Run it with an interpreter that can import both libraries for the comparison (learn2learn 0.2.0
via ``../shared/tools/install-learn2learn.sh PYTHON``, then ``pip install -e . --no-deps``);
without learn2learn only our side is measured and the script says the baseline was skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from benchmarks.speed import correctness  # noqa: E402
from benchmarks.speed.baseline_l2l import NOT_INSTALLED, l2l_meta_gradient, l2l_version  # noqa: E402
from benchmarks.speed.contenders import BATCHED, OURS, THEIRS, THREADED, available, build_contender  # noqa: E402
from benchmarks.speed.floor import count_flops, matmul_flops_per_second  # noqa: E402
from benchmarks.speed.machine import describe  # noqa: E402
from benchmarks.speed.ours import our_network, our_step  # noqa: E402
from benchmarks.speed.report import Floor, Row, markdown, plot, plot_bars, to_json  # noqa: E402
from benchmarks.speed.rss_probe import peak_rss_mb  # noqa: E402
from benchmarks.speed.timing import interleaved  # noqa: E402
from benchmarks.speed.workload import Workload, synthetic_episodes, workloads  # noqa: E402
from lightning_meta.malloc import keep_freed_memory  # noqa: E402


def check_meta_gradients(device: torch.device, quick: bool) -> list[correctness.Check]:
    """Our (and, when importable, learn2learn's) meta-gradient against the float64 reference."""
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    w = Workload("maml", "omniglot", ways=5, shots=1, queries=15 if not quick else 5, meta_batch=4, inner_steps=2)
    net, episodes = our_network(w), synthetic_episodes(w, seed=1)
    reference = correctness.reference_meta_gradient(net, episodes, w.inner_lr, w.inner_steps)
    candidates = {OURS: correctness.our_meta_gradient(w, device, dtype), BATCHED: correctness.batched_meta_gradient(w, device, dtype)}
    if l2l_version() != NOT_INSTALLED:
        candidates[THEIRS] = l2l_meta_gradient(w, device, dtype)
    with _no_tf32():
        return [correctness.check(name, grad, net, episodes, reference, device, dtype) for name, grad in candidates.items()]


class _no_tf32:
    """TF32 would make a float32 GPU check measure TF32 rounding, not the algorithm."""

    def __enter__(self) -> None:
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved


def floor_of(workload: Workload, device: torch.device, matmul_rate: float) -> Floor:
    """FLOPs per task of our update, against the matmul rate. Every learner's FLOPs grow linearly with the
    tasks of a meta-batch, so a 2-task update is counted: exact, and cheap where one update takes a minute."""
    small = replace(workload, meta_batch=2)
    return Floor(count_flops(our_step(small, synthetic_episodes(small), device)) // 2, matmul_rate)


def measure(workload: Workload, libraries: list[str], device: torch.device, args: argparse.Namespace) -> list[Row]:
    """Times ``libraries`` on ``workload`` side by side; peak memory as the device allows."""
    episodes = synthetic_episodes(workload)
    try:
        contenders = {lib: build_contender(lib, workload, episodes, device) for lib in libraries}
        timings = interleaved(contenders, device, warmup=args.warmup, repeats=args.repeats, iters=args.iters,
                              budget_s=args.budget)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return [Row(workload, lib, "out of memory") for lib in libraries]
    rows = []
    for lib, timing in timings.items():
        peak = timing.peak_bytes / 2**20 if timing.peak_bytes is not None else None
        if device.type == "cpu" and not args.no_memory:
            peak = peak_rss_mb(lib, workload, keep_freed=not args.no_keep_freed_memory)
        rows.append(Row(
            workload, lib, "ok", tasks_per_s=workload.meta_batch / timing.median,
            repeat_tasks_per_s=[workload.meta_batch / s for s in timing.repeat_medians], peak_mb=peak,
        ))
    return rows


def write_results(out: Path, rows: list[Row], floors: dict, machine: dict[str, str], checks: list[correctness.Check],
                  matmul_rate: float, args: argparse.Namespace, began: float) -> None:
    """``<out>.md``, ``.json`` and ``.png`` of the rows so far (rewritten after every workload)."""
    device = torch.device(args.device)
    settings = {**{k: v for k, v in vars(args).items() if k != "out"}, "seconds": round(time.perf_counter() - began, 1),
                "meta_gradient_checks": [vars(c) | {"passed": c.passed} for c in checks]}
    notes = [
        f"Meta-gradient check (second-order MAML, 2 inner steps, vs an independent float64 reference): "
        + "; ".join(f"{c.name} {c.max_relative_error:.1e} ({c.dtype})" for c in checks) + ".",
        f"Timing: {args.warmup} warm-up update(s), then up to {args.repeats} rounds x {args.iters} timed update(s) per"
        f" contender, alternating (at least 2 rounds; fewer than {args.repeats} when the rounds would exceed"
        f" {args.budget} s); median seconds per update -> tasks/s (range: medians of single rounds).",
        "Same synthetic episodes and the same initial Conv4 weights for both libraries; BatchNorm uses batch"
        " statistics (transductive) in both. MAML: inner SGD lr 0.4, meta Adam lr 1e-3. Reptile: 5 inner Adam steps"
        " on the support set. ProtoNet: one forward per episode in both (BatchNorm statistics stay per episode). Ours"
        " with channels_last weights, as the shipped model configs set them; learn2learn's networks as its examples"
        " build them (NCHW).",
        f"Threads: ours, batched and learn2learn use the {torch.get_num_threads()} torch thread(s) inside each kernel;"
        f" 'task threads' is ours with task_threads={torch.get_num_threads()}: that many tasks at once, one thread each.",
        "Peak memory: " + ("CUDA max_memory_allocated above the pre-run allocation." if device.type == "cuda"
                           else "increase of peak RSS over one update, each contender in a fresh process."),
        f"Floor: FLOPs of our update (FlopCounterMode) at the {matmul_rate / 1e9:.1f} GFLOP/s of a large fp32 matmul.",
    ]
    if l2l_version() == NOT_INSTALLED:
        notes.append(f"learn2learn baseline skipped: not importable by {sys.executable}.")
    title = f"Meta-training speed on {device.type.upper()}: lightning_meta vs learn2learn"
    out.with_suffix(".md").write_text(markdown(rows, floors, machine, title, notes))
    out.with_suffix(".json").write_text(to_json(rows, floors, machine, settings))
    png = out.with_suffix(".png")
    if device.type == "cpu":
        plot_bars(rows, png)
    else:
        plot(rows, "tasks_per_s", "tasks / s", png)
        plot(rows, "peak_mb", "peak memory (MiB)", out.with_name(out.name + "_memory.png"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="One small workload, few repeats (under 2 minutes on a CPU).")
    parser.add_argument("--out", type=Path, help="Output path without suffix (default benchmarks/results/speed_<device>).")
    parser.add_argument("--warmup", type=int, help="Untimed meta-batch updates per contender first.")
    parser.add_argument("--repeats", type=int, help="Timed rounds, contenders alternating within each round.")
    parser.add_argument("--iters", type=int, help="Meta-batch updates timed one by one per round.")
    parser.add_argument("--only", help="Run only workloads whose label contains this text, e.g. 'maml omniglot 5w1s'.")
    parser.add_argument("--budget", type=float, help="Seconds of timed rounds per workload; fewer rounds (>= 2) when "
                        "the warm-up says the rounds would take longer (default: 120 on CPU, none otherwise).")
    parser.add_argument("--no-memory", action="store_true", help="Skip the per-contender memory probes on CPU.")
    parser.add_argument("--no-keep-freed-memory", action="store_true", help="Leave glibc's default of returning large "
                        "freed blocks to the kernel (train.py keeps them: lightning_meta/malloc.py); applies to all.")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no GPU: run on a GPU machine or use --device cpu.")
    device = torch.device(args.device)
    defaults = (1, 2, 1) if args.quick else (1, 5, 2) if device.type == "cpu" else (5, 10, 10)
    for name, value in zip(("warmup", "repeats", "iters"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.budget is None and device.type == "cpu" and not args.quick:
        args.budget = 120.0
    out = args.out or REPO / "benchmarks" / "results" / f"speed_{device.type}"
    out.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()

    kept = keep_freed_memory() if not args.no_keep_freed_memory else False
    machine = {**describe(device), "freed memory kept for reuse (all libraries, as train.py)": "yes" if kept else "no"}
    print("\n".join(f"{k}: {v}" for k, v in machine.items()), flush=True)
    checks = check_meta_gradients(device, args.quick)
    for c in checks:
        print(f"meta-gradient check {c.name} ({c.dtype}, {c.device}): max relative error {c.max_relative_error:.2e}"
              f" (tolerance {c.tolerance:.0e}) {'PASSED' if c.passed else 'FAILED'}", flush=True)
    failed = [c for c in checks if c.name in (OURS, BATCHED) and not c.passed]
    if failed:
        for c in failed:
            print(f"FAILED: {c.name} MAML meta-gradient is off by {c.max_relative_error:.2e}; not timing a wrong algorithm.",
                  file=sys.stderr)
        return 1

    libraries = [OURS, THREADED, BATCHED, THEIRS]
    if l2l_version() == NOT_INSTALLED:
        print(f"learn2learn is not importable by {sys.executable}: baseline skipped, measuring {OURS} only.", flush=True)
    matmul_rate = matmul_flops_per_second(device, n=1024 if args.quick else 2048)
    print(f"large-matmul rate: {matmul_rate / 1e9:.1f} GFLOP/s", flush=True)
    rows, floors = [], {}
    for w in workloads(device.type, args.quick):
        if args.only and args.only not in w.label:
            continue
        libs = [lib for lib in libraries if available(lib, w)]
        floors[w] = floor_of(w, device, matmul_rate)
        rows += measure(w, libs, device, args)
        line = "  ".join(f"{r.library} {r.tasks_per_s:.1f} tasks/s" if r.tasks_per_s else f"{r.library} {r.status}"
                         for r in rows if r.workload == w)
        print(f"{w.label}: {line}", flush=True)
        write_results(out, rows, floors, machine, checks, matmul_rate, args, began)
    print(f"wrote {out.with_suffix('.md')}, .json and .png in {time.perf_counter() - began:.0f} s")

    return 0


if __name__ == "__main__":
    sys.exit(main())
