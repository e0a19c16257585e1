"""Repeated fits on one task: a Bayesian search whose prior is the mapping.

Once a task has recorded runs, the next fit should learn from them: a configuration near a bad run is less
promising than the mapping alone says, one near a good run more. The search models the task's score as the
mapping's zero-shot prediction plus a Gaussian-process residual fit on the task's own runs (their objectives put on
the prediction's normalized scale, ``observed_residual.affine``), and proposes the candidate with the largest
expected improvement over the best run so far. Candidates are the mapping's own (every configuration seen in
training) plus random draws; none repeats a run or lies within ``MIN_SEPARATION`` of one in the encoded space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from lightning_meta.hpo.mappings.base import Mapping, encode_frame, observed_scores, unique_rows
from lightning_meta.hpo.mappings.observed_residual import affine

LENGTHSCALE = 0.15  # of the residual GP, in the encoded space ([0, 1] per hyperparameter): 0.6 decade of lr
SIGNAL = 0.1  # prior variance of the residual, in normalized score (1 = a task's best run, 0 its 10th percentile)
NOISE = 0.01  # variance of one run's score around its configuration's (seed noise)
MIN_SEPARATION = 0.02
DRAWS = 2000


def next_config(mapping: Mapping, features: dict[str, Any], observed: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """The configuration to run next on the task whose runs are ``observed`` (pool-frame rows in the space)."""
    space = mapping.space
    candidates = unique_rows(np.concatenate([mapping.candidates(DRAWS, seed), space.encode(space.sample(DRAWS, seed))]))
    ran = encode_frame(observed, space)
    if len(ran):
        gap = np.sqrt(((candidates[:, None, :] - ran[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
        candidates = candidates[gap > MIN_SEPARATION]
    prior, _ = mapping.predict_encoded(features, candidates)
    x, y = observed_scores(observed, space)
    if len(y) == 0:
        return space.validate(space.decode(candidates[int(np.argmax(prior))])[0])
    prior_at_runs, _ = mapping.predict_encoded(features, x)
    slope, intercept = affine(y, prior_at_runs)
    scores = slope * y + intercept
    mean, std = _posterior(x, scores - prior_at_runs, candidates)
    expected = _expected_improvement(prior + mean, std, scores.max())
    return space.validate(space.decode(candidates[int(np.argmax(expected))])[0])


def _kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
    return SIGNAL * np.exp(-squared / (2.0 * LENGTHSCALE**2))


def _posterior(x: np.ndarray, residuals: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the residual GP at ``at`` given the runs' residuals."""
    gram = _kernel(x, x) + NOISE * np.eye(len(x))
    cross = _kernel(at, x)
    weights = np.linalg.solve(gram, residuals)
    variance = SIGNAL - np.einsum("ij,ji->i", cross, np.linalg.solve(gram, cross.T))
    return cross @ weights, np.sqrt(np.maximum(variance, 1e-12))


def _expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    z = (mean - best) / std
    return (mean - best) * norm.cdf(z) + std * norm.pdf(z)
