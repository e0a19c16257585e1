"""How a mapping's prediction for a task moves towards the trials already run on that task.

A mapping fit on other tasks predicts the new task's score zero-shot. Once a few trials of the task
itself are known, the prediction is wrong by a residual at each of them, and that error is local: a
region the other tasks rated too low is probably too low around each trial as well. The correction
is the residuals smoothed by a Gaussian kernel in the encoded space (``lengthscale``), shrunk
towards zero far from every trial. Raw objectives are first put on the predicted (task-normalized)
scale by ``affine``, which keeps their order, so the corrected prediction stays a normalized score.
"""

from __future__ import annotations

import numpy as np


def affine(y: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """``slope, intercept`` putting raw objectives ``y`` on the predicted (normalized) scale.

    The spread and centre of ``y`` are matched to those of the zero-shot predictions of the same
    configurations; the order of the trials is kept (better stays better).
    """
    spread_y = float(np.std(y))
    if spread_y < 1e-12:
        return 0.0, float(np.mean(predicted))
    slope = max(float(np.std(predicted)), 0.05) / spread_y
    return slope, float(np.mean(predicted) - slope * np.mean(y))


def residual_correction(
    x: np.ndarray,
    observed_x: np.ndarray,
    observed_y: np.ndarray,
    predicted_at_observed: np.ndarray,
    lengthscale: float,
    shrink: float = 0.5,
) -> np.ndarray:
    """The additive correction at each row of ``x`` (``[n, dim]``) from the observed trials' residuals.

    ``sum_i k(x, x_i) r_i / (shrink + sum_i k(x, x_i))``: at a trial the correction approaches its
    residual, between trials it is their kernel-weighted mean, far from all of them it is zero.
    """
    slope, intercept = affine(observed_y, predicted_at_observed)
    residuals = slope * observed_y + intercept - predicted_at_observed
    squared = (
        (x**2).sum(axis=1)[:, None] + (observed_x**2).sum(axis=1)[None, :] - 2.0 * x @ observed_x.T
    )
    kernel = np.exp(-np.maximum(squared, 0.0) / (2.0 * lengthscale**2))
    return kernel @ residuals / (shrink + kernel.sum(axis=1))


def helps(observed_x: np.ndarray, observed_y: np.ndarray, predicted: np.ndarray, lengthscale: float) -> bool:
    """Whether the correction ranks the observed trials better than the zero-shot prediction does, each trial
    predicted from the others (leave-one-out, Spearman correlation with the objectives). When adapting does not
    help on the trials at hand, the mapping keeps its zero-shot answer."""
    from scipy.stats import spearmanr

    n = len(observed_y)
    if n < 3 or np.ptp(observed_y) <= 0:
        return False
    loo = np.array([
        predicted[i] + residual_correction(observed_x[i : i + 1], np.delete(observed_x, i, axis=0),
                                           np.delete(observed_y, i), np.delete(predicted, i), lengthscale)[0]
        for i in range(n)
    ])
    adapted, zero_shot = spearmanr(loo, observed_y)[0], spearmanr(predicted, observed_y)[0]
    adapted = -1.0 if np.isnan(adapted) else adapted
    return adapted > (-1.0 if np.isnan(zero_shot) else zero_shot)
