"""How long ``suggest`` over a few hundred given candidates takes, and how much of it is checking them.

Candidates used to be checked one dict at a time (``space.validate`` per candidate, then again inside
``space.encode``); they are now checked once, column by column (``encode_candidates``). This times both checks and a
whole ``suggest`` call of the shipped mapping over the same candidates:

    python benchmarks/hpo/suggest_speed.py --candidates 220 --repeats 50
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from lightning_meta.hpo.mappings.base import Mapping, encode_candidates

ROOT = Path(__file__).resolve().parents[2]


def timed(call, repeats: int) -> float:
    """Median wall milliseconds of ``call()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=220)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    mapping = Mapping.load(ROOT / "lightning_meta/assets/mapping/default.mapping")
    configs = mapping.space.sample(args.candidates, seed=0)
    features = {"opt_sgd": 0.0, "opt_adaptive": 1.0}
    space = mapping.space  # the earlier path: each dict validated, then validated again inside encode
    per_dict = timed(lambda: space.encode([space.validate(c) for c in configs]), args.repeats)
    once = timed(lambda: encode_candidates(configs, mapping.space), args.repeats)
    whole = timed(lambda: mapping.suggest(features, k=5, candidates=configs), args.repeats)
    print(f"{args.candidates} candidates, median of {args.repeats} calls, {platform.processor() or platform.machine()}:")
    print(f"  checked per dict, then encoded: {per_dict:.2f} ms")
    print(f"  checked once, column by column: {once:.2f} ms")
    print(f"  suggest(k=5, candidates=...) of the shipped mapping: {whole:.2f} ms")


if __name__ == "__main__":
    main()
