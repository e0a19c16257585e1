"""``lightning-meta suggest``: a mapping's proposals for a task, from the command line.

Before a run (or to seed a search by hand) a user asks: given what I know about my task, which
configurations should I try first? This prints the mapping's top-``k`` configurations and its
predicted task-normalized score of each (1 = as good as the best run of a similar task).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from lightning_meta.errors import ConfigError, LightningMetaError
from lightning_meta.hpo.fit_command import DEFAULT_MAPPING
from lightning_meta.hpo.mappings.base import Candidates, Mapping, encode_candidates
from lightning_meta.hpo.space import SearchSpace


def parse_features(items: list[str]) -> dict[str, float | str]:
    """``["n_classes=20", "freq=1D"]`` -> ``{"n_classes": 20.0, "freq": "1D"}``; ConfigError when malformed.

    A value that is not a number stays text: the mapping one-hot encodes text-valued features it
    learnt as such, and refuses text for a numeric one, naming it.
    """
    features: dict[str, float | str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--features item {item!r} is not NAME=VALUE: write e.g. --features n_classes=20 shots=14.")
        try:
            features[name] = float(value)
        except ValueError:
            features[name] = value
    return features


def propose(
    mapping: Mapping,
    features: dict[str, float | str],
    k: int = 3,
    space: SearchSpace | None = None,
    candidates: Candidates = 2000,
    seed: int = 0,
) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """The top-``k`` configurations among ``candidates`` (see ``Mapping.suggest``), their predicted mean and std.

    With ``space`` (same hyperparameters as the mapping's, possibly narrower ranges) random
    candidates are drawn from it and given ones must lie in it, so every proposal does.
    """
    unknown = sorted(set(features) - set(mapping.feature_names))
    if unknown:
        raise ConfigError(
            f"Features {unknown} are unknown to the mapping; it uses {mapping.feature_names}: fix the names."
        )
    if k < 1:
        raise ConfigError(f"--k {k} is invalid: give k >= 1.")
    if space is not None:
        if space.names != mapping.space.names:
            raise ConfigError(
                f"The space declares {space.names} but the mapping was fit on {mapping.space.names}: "
                "give the same hyperparameters (ranges may be narrower)."
            )
        if isinstance(candidates, int) and not isinstance(candidates, bool):
            candidates = space.sample(candidates, seed)
        else:
            encode_candidates(candidates, space)  # each given one must lie in the narrower space
    configs = mapping.suggest(features, k=k, candidates=candidates, seed=seed)
    mean, std = mapping.predict(features, configs)
    return configs, mean, std


def format_proposals(configs: list[dict], mean: np.ndarray, std: np.ndarray) -> str:
    """One line per proposal: rank, ``name=value`` pairs, predicted score ± std."""
    lines = []
    for rank, (config, m, s) in enumerate(zip(configs, mean, std), start=1):
        values = "  ".join(f"{n}={v:.6g}" if isinstance(v, float) else f"{n}={v}" for n, v in config.items())
        lines.append(f"{rank}  {values}  predicted={m:.3f} ± {s:.3f}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-meta suggest",
        description="Propose hyperparameters for a task from a fitted mapping. The predicted score is "
        "task-normalized: 1 = as good as the best run of a task in the pool, 0 = its 10th percentile.",
    )
    parser.add_argument("--mapping", default=str(DEFAULT_MAPPING), help="saved mapping (default: the shipped one)")
    parser.add_argument("--features", nargs="*", default=[], metavar="NAME=VALUE",
                        help="task features, e.g. n_classes=20 shots=14 (missing ones are imputed)")
    parser.add_argument("--k", type=int, default=3, help="number of proposals (default 3)")
    parser.add_argument("--space", help="YAML search space restricting the proposals (same names, narrower ranges)")
    parser.add_argument("--candidates", type=int, default=2000, help="random candidates scored (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the candidates (default 0)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry of ``lightning-meta suggest``."""
    args = _parser().parse_args(argv)
    try:
        mapping = Mapping.load(args.mapping)
        space = SearchSpace.from_yaml(args.space) if args.space else None
        configs, mean, std = propose(mapping, parse_features(args.features), args.k, space, args.candidates, args.seed)
    except LightningMetaError as error:
        sys.exit(f"lightning-meta suggest: {error}")
    print(f"# {type(mapping).__name__} from {args.mapping}; features used: {', '.join(mapping.feature_names) or 'none'}")
    print(format_proposals(configs, mean, std))
