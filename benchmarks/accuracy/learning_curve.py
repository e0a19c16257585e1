"""Test accuracy against meta-iterations from one run's checkpoints, and the meta-iterations a target would need.

A time-capped row that misses its paper-anchored target says little about how far off it is. This tests every
checkpoint a run kept (train the run with ``callbacks.model_checkpoint.save_top_k=-1``: one per validation, plus
``last.ckpt``) on the experiment's fixed test episodes, exactly as ``train.py train=false ckpt_path=...`` does,
fits the saturating curve ``acc(n) = a - b * n^(-c)`` (the power law of learning curves) to the points, and reads
off the meta-iterations at which the fit reaches ``--target``. The checkpoints are not chosen between here: the
curve only reports how accuracy grew, so testing all of them is no selection on test data.

    python train.py +experiment=maml_omniglot_5w1s_30min model.lr_schedule=step trainer.max_time=00:00:45:00 \
        callbacks.model_checkpoint.save_top_k=-1 test=false hydra.run.dir=logs/maml_curve
    python -m benchmarks.accuracy.learning_curve logs/maml_curve --experiment maml_omniglot_5w1s_30min --target 97.5 \
        --rate 2.2 --out maml_curve
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import curve_fit

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
_LINE = re.compile(r"Test accuracy: ([0-9.]+)% ± ([0-9.]+)%")


def tested(checkpoint: Path, experiment: str, episodes: int, overrides: list[str]) -> tuple[float, float]:
    """Test accuracy and its 95 % half-width (percent) of ``checkpoint``, as ``train.py`` reports them."""
    command = [sys.executable, str(ROOT / "train.py"), f"+experiment={experiment}", "train=false",
               f"ckpt_path={checkpoint}", f"data.test_episodes={episodes}", "callbacks=none",
               f"hydra.run.dir={checkpoint.parent.parent / 'curve_tests' / checkpoint.stem}", *overrides]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    output = done.stdout + done.stderr
    found = _LINE.search(output)
    if found is None:
        raise SystemExit(f"no test accuracy in the output of {shlex.join(command)}:\n{output[-2000:]}")
    return float(found.group(1)), float(found.group(2))


def step_of(checkpoint: Path) -> int:
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def saturating(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(n, -c)


def fitted(n: np.ndarray, acc: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
    """``saturating``'s (a, b, c) by least squares, each point weighted by its standard error ``sigma``."""
    params, _ = curve_fit(saturating, n, acc, p0=(acc.max() + 1.0, 100.0, 0.5), sigma=sigma, maxfev=20000,
                          bounds=([0.0, 0.0, 0.01], [100.0, np.inf, 3.0]))
    return params


def needed(params: np.ndarray, target: float) -> float:
    """Meta-iterations at which the fitted curve reaches ``target`` (inf when its asymptote stays below)."""
    a, b, c = params
    return float(((a - target) / b) ** (-1.0 / c)) if a > target and b > 0 and c > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="the run's output folder (its checkpoints/ holds the .ckpt files)")
    parser.add_argument("--experiment", required=True, help="the preset whose test episodes score the checkpoints")
    parser.add_argument("--target", type=float, required=True, help="test accuracy to reach, in percent")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=None, help="meta-iterations per second, to state the time")
    parser.add_argument("--out", required=True)
    parser.add_argument("overrides", nargs="*", help="further train.py overrides for the test (e.g. precision)")
    args = parser.parse_args()
    started = time.perf_counter()
    steps = {}  # meta-iterations -> checkpoint; last.ckpt repeats the final epoch's when the run stopped there
    for checkpoint in sorted((args.run / "checkpoints").glob("*.ckpt")):
        steps.setdefault(step_of(checkpoint), checkpoint)
    points = []
    for step, checkpoint in sorted(steps.items()):
        acc, ci = tested(checkpoint, args.experiment, args.episodes, args.overrides)
        points.append({"checkpoint": checkpoint.name, "meta_iterations": step, "acc": acc, "ci95": ci})
        print(points[-1], flush=True)
    n = np.array([p["meta_iterations"] for p in points], dtype=float)
    acc = np.array([p["acc"] for p in points])
    sigma = np.array([max(p["ci95"], 1e-3) / 1.96 for p in points])
    params = fitted(n, acc, sigma)
    need = needed(params, args.target)
    report(args, points, params, need, time.perf_counter() - started)


def report(args, points: list[dict], params: np.ndarray, need: float, seconds: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b, c = params
    hours = f" (about {need / args.rate / 3600:.1f} h at {args.rate:g} meta-iterations/s)" if args.rate and np.isfinite(need) else ""
    lines = [f"# {args.experiment}: test accuracy against meta-iterations", "",
             f"Command: `{shlex.join(['python', '-m', 'benchmarks.accuracy.learning_curve', *sys.argv[1:]])}`; "
             f"{seconds:.0f} s on {platform.machine()}. Each checkpoint the run kept, tested on the preset's fixed "
             f"{args.episodes} test episodes; fit `acc(n) = a - b n^-c` weighted by each point's interval.", "",
             "| checkpoint | meta-iterations | test accuracy [95 % CI] | fit |", "|---|---:|---|---:|"]
    for p in points:
        fit = saturating(np.array([p["meta_iterations"]], dtype=float), *params)[0]
        lines.append(f"| {p['checkpoint']} | {p['meta_iterations']:,} | {p['acc']:.2f} ± {p['ci95']:.2f} % | {fit:.2f} % |")
    lines += ["", f"Fit: a = {a:.2f} %, b = {b:.4g}, c = {c:.3f}. Target {args.target:g} %: "
              + (f"reached by the fit at **{need:,.0f} meta-iterations**{hours}." if np.isfinite(need)
                 else f"**not reached**: the fit levels off at {a:.2f} %."),
              "", f"Raw points: `{args.out}.json`; plot: `{args.out}.png`."]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"points": points, "fit": list(map(float, params)),
                                                          "target": args.target, "needed": need}, indent=1))
    n = np.array([p["meta_iterations"] for p in points], dtype=float)
    grid = np.geomspace(n.min(), max(n.max(), need if np.isfinite(need) else n.max()) * 1.2, 200)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(n, [p["acc"] for p in points], yerr=[p["ci95"] for p in points], fmt="o", capsize=3, label="tested")
    ax.plot(grid, saturating(grid, *params), label="fit")
    ax.axhline(args.target, color="grey", linestyle="--", label=f"target {args.target:g} %")
    ax.set_xscale("log")
    ax.set_xlabel("meta-iterations")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(args.experiment)
    ax.legend()
    plt.tight_layout()
    plt.savefig(RESULTS / f"{args.out}.png", dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
