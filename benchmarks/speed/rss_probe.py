"""Peak host memory of meta-training on CPU, one library per fresh process.

``tracemalloc`` does not see tensor storage, and the allocator keeps memory freed during set-up,
so each measurement runs here in a child: set everything up, reset the kernel's peak-RSS mark
(``/proc/self/clear_refs``), train, and report the peak above the resident size before training
(the first update's optimizer state, a few hundred KiB for Conv4, is included).
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def peak_rss_mb(library: str, workload, steps: int = 1, keep_freed: bool = False) -> float:
    """Extra peak resident memory (MiB) that ``steps`` meta-batch updates of ``library`` need."""
    cmd = [sys.executable, "-m", "benchmarks.speed.rss_probe", library, json.dumps(asdict(workload)), str(steps)]
    cmd += ["--keep-freed-memory"] if keep_freed else []
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"Memory probe for {library} on {workload.label} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]


def _status_kib(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M).group(1))


def main() -> None:
    from benchmarks.speed.contenders import build_contender
    from benchmarks.speed.workload import Workload, synthetic_episodes
    from lightning_meta.malloc import keep_freed_memory

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("library")
    parser.add_argument("workload", help="Workload fields as JSON")
    parser.add_argument("steps", type=int)
    parser.add_argument("--keep-freed-memory", action="store_true", help="As the benchmark's parent process did.")
    args = parser.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    workload = Workload(**json.loads(args.workload))
    contender = build_contender(args.library, workload, synthetic_episodes(workload), torch.device("cpu"))
    gc.collect()
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    contender.run(args.steps)
    print(json.dumps({"peak_mb": (_status_kib("VmHWM") - before) / 1024.0}))


if __name__ == "__main__":
    main()
