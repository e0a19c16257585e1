"""learning_curve.py: the fitted power law recovers a known curve and reads off where it crosses a target."""

from __future__ import annotations

import math

import numpy as np

from benchmarks.accuracy.learning_curve import fitted, needed, saturating


def test_the_fit_of_a_known_curve_gives_the_meta_iterations_its_target_needs():
    n = np.array([500, 1000, 1500, 2000, 3000, 4000, 6000], dtype=float)
    truth = (98.5, 60.0, 0.55)
    acc = saturating(n, *truth) + np.random.default_rng(0).normal(0.0, 0.02, len(n))
    params = fitted(n, acc)
    exact = ((98.5 - 97.5) / 60.0) ** (-1 / 0.55)  # where the true curve reaches 97.5
    assert abs(needed(params, 97.5) - exact) / exact < 0.2
    assert math.isclose(saturating(np.array([needed(truth, 97.5)]), *truth)[0], 97.5)


def test_a_target_above_the_curves_ceiling_is_never_reached():
    assert needed(np.array([96.0, 50.0, 0.5]), 97.5) == math.inf
