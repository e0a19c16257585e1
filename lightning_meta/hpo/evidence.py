"""The rule that decides between the user's own values and a change: first, do no harm.

A module's values are its author's best guess. The callback changes them only when the recorded tasks like
this one say that a change is better by a margin:

1. **Neighbours.** The recorded tasks within ``max_distance`` of this one (``TaskIndex.distances``), at most
   ``neighbours`` of them, nearest first. Fewer than ``min_sources``: nothing resembles this task, keep.
2. **Candidates.** The mapping's proposals, the best runs of each neighbour, the user's values times
   10^±0.5 and 10^±1 (one log-scaled hyperparameter at a time), and for each of these every mix that changes
   only some of the hyperparameters and keeps the user's value of the others.
3. **Gain.** On each neighbour, the candidate's score minus the score at the user's values, both read from
   that task's runs (``TaskIndex.score_at``, task-normalized: 1 = the task's best run, 0 = its 10th
   percentile). Neighbours are weighted by ``1 / (distance + 0.1)``. The units of evidence are families (the
   part of a task name before ``/``; the callback names a task ``ModuleClass/DataModuleClass``): the tasks of
   another family count as one unit, their weighted mean gain; the tasks of the new task's own family count one
   by one. The gain is the weighted mean over units, its uncertainty the weighted standard deviation over
   ``sqrt(units)``; fewer than ``min_sources`` units: keep. Ten runs of one model on ten data sets agree with each
   other far more than the next model agrees with them, so counting them as ten confirmations made the rule sure
   of changes that did not carry over to another model (``benchmarks/results/hpo_applicability.md``).
4. **Change** to the candidate with the highest ``gain - uncertainty`` (the lower bound), only if that bound is
   at least ``margin``; otherwise keep the user's values. Among candidates within ``margin`` of the best bound,
   the one that changes the fewest of the user's values wins: a change to one more hyperparameter must pay.

The margin (0.05: a twentieth of the span between a task's 10th-percentile run and its best) is above the
seed noise of a single training on the pool's tasks, so a change is made only where the neighbours agree it
pays more than re-running with another seed would move the score.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.mappings.task_index import TaskIndex
from lightning_meta.hpo.space import SearchSpace

MARGIN = 0.05
MAX_DISTANCE = 1.75  # calibrated leave-one-family-out on the shipped pool: benchmarks/results/hpo_applicability.md
NEIGHBOURS = 10  # enough that the evidence usually spans several families
MIN_SOURCES = 2
_MULTIPLES = (-1.0, -0.5, 0.5, 1.0)  # log10 steps around the user's value


@dataclass
class Evidence:
    """Why the callback kept or changed the user's values.

    ``neighbours``: the recorded tasks weighed, as ``(task, distance)``; ``distance``: to the nearest recorded
    task (inf when the mapping keeps no task index); ``gain`` and ``gain_std``: the predicted gain of the
    applied configuration over the user's values in task-normalized score, and its uncertainty (0 when kept);
    ``unlike``: the recorded tasks hold too little like this one to weigh a change at all.
    """

    changed: bool
    reason: str
    neighbours: list[tuple[str, float]] = field(default_factory=list)
    distance: float = math.inf
    gain: float = 0.0
    gain_std: float = 0.0
    unlike: bool = False


def weigh(
    mapping: Mapping,
    features: dict[str, Any],
    defaults: dict[str, Any],
    proposals: list[dict[str, Any]],
    names: list[str],
    *,
    margin: float = MARGIN,
    max_distance: float = MAX_DISTANCE,
    neighbours: int = NEIGHBOURS,
    min_sources: int = MIN_SOURCES,
    family: str | None = None,
) -> tuple[dict[str, Any] | None, Evidence]:
    """The values to change (None: keep the user's values of ``names``) and the evidence for it.

    ``defaults`` holds the user's value of each name in ``names`` (the hyperparameters the callback can set);
    ``proposals`` are the mapping's top configurations over its whole space; ``family`` is the new task's own
    family, whose recorded tasks count one by one (None: every recorded family counts as one unit).
    """
    index: TaskIndex | None = mapping.index
    if index is None:
        return None, Evidence(False, "the mapping keeps no record of its training tasks (re-fit it to compare)")
    nearest = index.nearest(features, neighbours)
    near = [(i, d) for i, d in nearest if d <= max_distance]
    closest = f"nearest: {index.names[nearest[0][0]]}, distance {nearest[0][1]:.2f}" if nearest else "the pool is empty"
    listed = [(index.names[i], d) for i, d in near]
    first = nearest[0][1] if nearest else math.inf
    if len(near) < min_sources:
        some = f"only {len(near)} recorded task resembles" if near else "no recorded task resembles"
        return None, Evidence(False, f"{some} this one ({closest}, threshold {max_distance:g})", listed, first,
                              unlike=True)
    families = [index.family(i) for i, _ in near]
    sources = [(f, i) if f == family else (f,) for f, (i, _) in zip(families, near)]
    if len(set(sources)) < min_sources:
        return None, Evidence(False, f"the {len(near)} similar recorded tasks ({closest}) are all runs of one other "
                                     f"family, {families[0]!r}, which cannot tell whether its best values carry over "
                                     "to another", listed, first, unlike=True)
    space = mapping.space
    base = _full(space, defaults, proposals[0])
    candidates = _candidates(space, base, proposals, names, index, [i for i, _ in near])
    if not candidates:
        return None, Evidence(False, "no configuration differs from your values in what can be set", listed, first)
    x = space.encode([base] + candidates)
    scores = np.stack([index.score_at(i, x) for i, _ in near])  # row 0: the user's values
    gains, weights = _by_source(scores[:, 1:] - scores[:, :1], 1.0 / (np.array([d for _, d in near]) + 0.1), sources)
    mean = weights @ gains / weights.sum()
    std = np.sqrt(weights @ (gains - mean) ** 2 / weights.sum()) / math.sqrt(len(weights))
    best = _parsimonious(mean - std, [sum(c[n] != base[n] for n in names) for c in candidates], margin)
    evidence = Evidence(False, "", listed, first, float(mean[best]), float(std[best]))
    kinds = len(set(families))
    similar = f"{len(near)} similar recorded tasks of {kinds} famil{'y' if kinds == 1 else 'ies'} ({closest})"
    if mean[best] - std[best] < margin:
        evidence.reason = (f"{similar} predict no gain over your values above the margin "
                           f"(best {mean[best]:+.3f} ± {std[best]:.3f}, margin {margin:g})")
        evidence.gain = evidence.gain_std = 0.0
        return None, evidence
    evidence.changed = True
    evidence.reason = f"{similar} predict {mean[best]:+.3f} ± {std[best]:.3f} over your values"
    return {n: v for n, v in candidates[best].items() if n in names and v != base[n]}, evidence


def _by_source(gains: np.ndarray, weights: np.ndarray, sources: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Step 3's units of evidence: one row of gains per source (its tasks' weighted mean), weighted by the sum of
    its tasks' weights."""
    names = list(dict.fromkeys(sources))
    member = np.array([[s == n for s in sources] for n in names], dtype=float) * weights
    return member @ gains / member.sum(axis=1, keepdims=True), member.sum(axis=1)


def _parsimonious(bound: np.ndarray, changes: list[int], margin: float) -> int:
    """The candidate with the best lower bound among those within ``margin`` of the best that change the fewest
    of the user's values: a change to one more hyperparameter must itself pay."""
    eligible = np.flatnonzero(bound >= bound.max() - margin)
    fewest = min(changes[i] for i in eligible)
    return int(max((i for i in eligible if changes[i] == fewest), key=lambda i: bound[i]))


def _full(space: SearchSpace, values: dict[str, Any], filler: dict[str, Any]) -> dict[str, Any]:
    """A configuration of the whole space: ``values`` clipped into it, ``filler`` where a value is unknown."""
    config = {}
    for p in space.params:
        value = values.get(p.name)
        if p.type == "categorical":
            config[p.name] = value if value in list(p.choices) else filler[p.name]
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            config[p.name] = p.check(p.clip(value))
        else:
            config[p.name] = filler[p.name]
    return config


def _candidates(space: SearchSpace, base: dict[str, Any], proposals: list[dict[str, Any]], names: list[str],
                index: TaskIndex, near: list[int]) -> list[dict[str, Any]]:
    """Step 2 of the rule: every configuration worth weighing, each changing only ``names``, none equal to ``base``."""
    pool = [dict(p) for p in proposals]
    for task in near:
        rows = np.flatnonzero(index.task_of == task)
        top = rows[np.argsort(-index.scores[rows], kind="stable")[:3]]
        pool += space.decode(index.x[top])
    for p in space.params:
        if p.name in names and p.log and p.type == "float":
            for step in _MULTIPLES:
                pool.append({**base, p.name: base[p.name] * 10**step})
    out, seen = [], set()
    for config in pool:
        changed = [n for n in names if config.get(n) != base[n]]
        for size in range(1, len(changed) + 1):
            for subset in itertools.combinations(changed, size):
                mixed = _full(space, {**base, **{n: config[n] for n in subset}}, base)
                key = tuple(np.round(space.encode([mixed])[0], 9))
                if key not in seen and mixed != base:
                    seen.add(key)
                    out.append(mixed)
    return out
