"""Repeated fits on one task: a Bayesian search whose prior is the mapping and whose kernel is learnt from the pool.

Once a task has recorded runs, the next fit should learn from them: a configuration near a bad run is less
promising than the mapping alone says, one near a good run more. The search is a Gaussian process on the task's
own runs:

* **scale**: the runs' objectives are standardized (mean 0, standard deviation 1), so a result moves the model by
  its rank among the task's runs, whatever the metric's units;
* **prior mean**: the mapping's zero-shot prediction, divided by its spread over the candidates and weighted by
  ``PRIOR_WEIGHT``. Simulated searches over the pool's recorded tasks (``benchmarks/hpo/search_design.py``) put
  weight 0.25 first (0.923 of the best run, against 0.913 for 1 and 0.889 for no prior), also on the family whose
  runs disagree most with the prior (Omniglot ResNet/SGD: 0.687 against 0.670 and 0.650);
* **kernel**: one length scale per hyperparameter and a noise share, chosen by the pooled marginal likelihood of
  the mapping's recorded tasks (``pool_kernel``). On the shipped pool the weight decay's length scale comes out
  8x the learning rate's: the recorded tasks say it matters less, so the search spends fewer fits on it;
* **proposal**: the candidate with the largest expected improvement over the best posterior mean among the runs
  (seed noise makes the best observed run an optimistic incumbent).

Candidates are the mapping's own (every configuration seen in training) plus random draws; none lies within
``MIN_SEPARATION`` of a run in the encoded space, so no configuration is run twice.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from lightning_meta.hpo.mappings.base import Mapping, encode_frame, observed_scores, unique_rows

LENGTHSCALES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)  # in the encoded space ([0, 1] per hyperparameter)
NOISES = (0.02, 0.1, 0.3, 0.6)  # share of a standardized run's variance that is seed noise
MIN_SEPARATION = 0.03  # 0.12 decade of a learning rate searched over four
PRIOR_WEIGHT = 0.25  # the prior's spread against the runs' (benchmarks/results/hpo_search_design.md)
DRAWS = 2000
_KERNELS: weakref.WeakKeyDictionary[Mapping, tuple[np.ndarray, float]] = weakref.WeakKeyDictionary()


def next_config(mapping: Mapping, features: dict[str, Any], observed: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """The configuration to run next on the task whose runs are ``observed`` (pool-frame rows in the space)."""
    space = mapping.space
    candidates = unique_rows(np.concatenate([mapping.candidates(DRAWS, seed), space.encode(space.sample(DRAWS, seed))]))
    ran = encode_frame(observed, space)
    if len(ran):
        candidates = candidates[_gap(candidates, ran) > MIN_SEPARATION]
    prior, _ = mapping.predict_encoded(features, candidates)
    x, y = observed_scores(observed, space)
    if len(y) == 0:
        return space.validate(space.decode(candidates[int(np.argmax(prior))])[0])
    prior_at_runs, _ = mapping.predict_encoded(features, x)
    scale = max(float(np.std(prior)), 1e-6)
    centre = float(np.mean(prior_at_runs))
    z = (y - y.mean()) / y.std() if len(y) > 1 and y.std() > 0 else np.zeros_like(y)
    lengthscales, noise = pool_kernel(mapping)
    at_runs = PRIOR_WEIGHT * (prior_at_runs - centre) / scale
    residual, std = _posterior(x, z - at_runs, np.concatenate([candidates, x]), lengthscales, noise)
    mean = PRIOR_WEIGHT * (prior - centre) / scale + residual[: len(candidates)]
    incumbent = float((at_runs + residual[len(candidates) :]).max())  # the best posterior mean among the runs
    expected = _expected_improvement(mean, std[: len(candidates)], incumbent)
    return space.validate(space.decode(candidates[int(np.argmax(expected))])[0])


def pool_kernel(mapping: Mapping) -> tuple[np.ndarray, float]:
    """Per-hyperparameter length scales and the noise share that best explain the mapping's recorded tasks.

    Each task's runs are standardized and scored by a zero-mean GP's log marginal likelihood, summed over tasks;
    the length scales are chosen one hyperparameter at a time (two passes over ``LENGTHSCALES``) and the noise
    share over ``NOISES``. A mapping without recorded runs gets 0.2 and 0.1. Cached on the mapping.
    """
    if mapping in _KERNELS:
        return _KERNELS[mapping]
    index, dim = mapping.index, mapping.space.dim
    tasks = _standardized_tasks(index) if index is not None else []
    lengthscales, noise = np.full(dim, 0.2), 0.1
    if tasks:
        for _ in range(2):
            for d in range(dim):
                lengthscales[d] = max(LENGTHSCALES, key=lambda s: _likelihood(
                    tasks, np.where(np.arange(dim) == d, s, lengthscales), noise))
            noise = max(NOISES, key=lambda n: _likelihood(tasks, lengthscales, n))
    _KERNELS[mapping] = (lengthscales, noise)
    return lengthscales, noise


def _standardized_tasks(index: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    tasks = []
    for task in np.unique(index.task_of):
        rows = index.task_of == task
        y = index.scores[rows]
        if len(y) >= 4 and y.std() > 0:
            tasks.append((index.x[rows], (y - y.mean()) / y.std()))
    return tasks


def _likelihood(tasks: list[tuple[np.ndarray, np.ndarray]], lengthscales: np.ndarray, noise: float) -> float:
    total = 0.0
    for x, y in tasks:
        gram = (1.0 - noise) * _kernel(x, x, lengthscales) + noise * np.eye(len(y))
        chol = np.linalg.cholesky(gram)
        alpha = np.linalg.solve(chol, y)
        total -= 0.5 * alpha @ alpha + np.log(np.diag(chol)).sum()
    return total


def _gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each row of ``a``'s distance to the nearest row of ``b``."""
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)).min(axis=1)


def _kernel(a: np.ndarray, b: np.ndarray, lengthscales: np.ndarray) -> np.ndarray:
    squared = (((a[:, None, :] - b[None, :, :]) / lengthscales) ** 2).sum(axis=2)
    return np.exp(-0.5 * squared)


def _posterior(x: np.ndarray, residuals: np.ndarray, at: np.ndarray, lengthscales: np.ndarray,
               noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the residual GP (unit variance, ``noise`` of it seed noise) at ``at``."""
    gram = (1.0 - noise) * _kernel(x, x, lengthscales) + noise * np.eye(len(x))
    cross = (1.0 - noise) * _kernel(at, x, lengthscales)
    weights = np.linalg.solve(gram, residuals)
    variance = (1.0 - noise) - np.einsum("ij,ji->i", cross, np.linalg.solve(gram, cross.T))
    return cross @ weights, np.sqrt(np.maximum(variance, 1e-12))


def _expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    z = (mean - best) / std
    return (mean - best) * norm.cdf(z) + std * norm.pdf(z)
