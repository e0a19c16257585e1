"""The config fuzzer of ``tests/cli/test_config_fuzz.py`` at 5,000 examples (``--examples N`` for another count).

Writes ``benchmarks/results/config_fuzz.md``: examples run, how many ended in a project error or a build, and every
failure (a traceback the console boundary would call a bug). Run from the repository root:
``OMP_NUM_THREADS=1 python benchmarks/fuzz/config_fuzz.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=5000)
    args = parser.parse_args()
    start = time.time()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                           "tests/cli/test_config_fuzz.py::test_any_bad_leaf_value_ends_in_a_project_error_or_a_run"],
                          cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "CONFIG_FUZZ_EXAMPLES": str(args.examples)})
    minutes = (time.time() - start) / 60
    failures = [line.removeprefix("E         ").strip() for line in done.stdout.splitlines()
                if line.startswith("E ") and "): " in line and "assert not" not in line]
    lines = ["# Config fuzzer", "",
             f"`OMP_NUM_THREADS=1 python benchmarks/fuzz/config_fuzz.py --examples {args.examples}` "
             f"(derandomized, so the same examples each run), {minutes:.1f} min on this machine's CPU.", "",
             f"- examples: {args.examples}", f"- failures (tracebacks the boundary calls a bug): {len(failures)}",
             f"- pytest: {(done.stdout.strip().splitlines() or ['no output'])[-1]}", ""]
    lines += [f"    {f}" for f in failures]
    out = REPO / "benchmarks" / "results" / "config_fuzz.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
