"""``lightning-meta suggest``: a mapping's proposals for a task, from the command line.

Before a run (or to seed a search by hand) a user asks: given what I know about my task, which
configurations should I try first? This prints the mapping's top-``k`` configurations and its
predicted task-normalized score of each (1 = as good as the best run of a similar task).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings

import numpy as np

from lightning_meta.checks import nearest
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
    for warning in check_features(mapping, features):
        warnings.warn(warning, UserWarning, stacklevel=2)
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


def check_features(mapping: Mapping, features: dict[str, float | str]) -> list[str]:
    """Raises ``ConfigError`` for a feature the mapping was not fit with (naming the nearest it was) or a non-finite
    value; returns one warning per given feature the mapping does not read and per value outside the range its
    training tasks recorded. Why: either would change nothing, or extrapolate, without a word."""
    names = list(mapping.feature_names)
    for name in sorted(set(features) - set(names)):
        near = nearest(name, names)
        raise ConfigError(f"Feature {name!r} is unknown to the mapping{f' (did you mean {near}?)' if near else ''}. "
                          f"Fix: use the names it was fit with: {', '.join(names) or 'none'}.")
    used = set(mapping.used_features())
    unused = [n for n in features if n not in used]
    warnings_ = []
    if unused:
        warnings_.append(f"{type(mapping).__name__} does not read feature(s) {', '.join(unused)} (it reads "
                         f"{', '.join(sorted(used)) or 'none'}): they do not change the proposals.")
    ranges = recorded_ranges(mapping)
    for name, value in features.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"Feature {name}={value} is not a finite number. Fix: give the task's value of {name}.")
        if name in used and name in ranges and isinstance(value, float):
            low, high = ranges[name]
            if not low <= value <= high:
                warnings_.append(f"Feature {name}={value:g} is outside the range its training tasks recorded "
                                 f"[{low:g}, {high:g}]: the proposals extrapolate; check the value.")
    return warnings_


def recorded_ranges(mapping: Mapping) -> dict[str, tuple[float, float]]:
    """``{name: (lowest, highest)}`` of each numeric feature over the mapping's training tasks (a feature all of them
    shared reads as ``(value, value + 1)``: the encoder stores a span of 1 for it)."""
    encoder, column, ranges = mapping.encoder, 0, {}
    for name in encoder.names:
        if name in encoder.categories:
            column += len(encoder.categories[name])
            continue
        low, span = float(encoder.low[column]), float(encoder.span[column])
        ranges[name] = (low, low + span)
        column += 1
    return ranges


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
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            mapping = Mapping.load(args.mapping)
            space = SearchSpace.from_yaml(args.space) if args.space else None
            configs, mean, std = propose(mapping, parse_features(args.features), args.k, space, args.candidates,
                                         args.seed)
    except LightningMetaError as error:
        sys.exit(f"lightning-meta suggest: {error}")
    for warning in said:  # one line each, not Python's two-line warning format
        print(f"lightning-meta suggest: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    print(f"# {type(mapping).__name__} from {args.mapping}; features used: {', '.join(mapping.used_features()) or 'none'}")
    print(format_proposals(configs, mean, std))
