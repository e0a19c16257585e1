"""An MNIST-1D-style generator (Greydanus 2020): ten 1-D digit templates under random transforms.

Generated locally from a seed, so a task of any size and noise level exists without a download.
Each class is a smooth template curve; a sample is its template scaled, shifted (circularly),
sheared, plus correlated and white noise, resampled to ``length`` points. Harder than its
10-class size suggests: linear models reach about a third, small CNNs much more.
"""

from __future__ import annotations

import numpy as np

TEMPLATE_SEED = 1234  # the templates are the same for every task: one "alphabet" of 1-D digits


def templates(classes: int = 10, points: int = 12) -> np.ndarray:
    """``[classes, points]`` smooth random curves, fixed by ``TEMPLATE_SEED``."""
    rng = np.random.default_rng(TEMPLATE_SEED)
    raw = np.cumsum(rng.normal(size=(classes, points)), axis=1)
    return (raw - raw.mean(axis=1, keepdims=True)) / raw.std(axis=1, keepdims=True)


def make_mnist1d(
    n: int, seed: int, noise: float = 0.25, max_shift: int = 8, length: int = 40, classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """``(x [n, length] float32, y [n] int64)``; ``noise`` scales both noise terms."""
    rng = np.random.default_rng(seed)
    base = templates(classes)
    y = rng.integers(0, classes, size=n)
    grid = np.linspace(0, base.shape[1] - 1, length)
    curves = np.stack([np.interp(grid, np.arange(base.shape[1]), base[c]) for c in range(classes)])
    x = curves[y] * rng.uniform(0.7, 1.3, size=(n, 1))
    x = x + rng.uniform(-0.5, 0.5, size=(n, 1)) * np.linspace(-1, 1, length)[None, :]  # shear
    shifts = rng.integers(-max_shift, max_shift + 1, size=n)
    x = np.stack([np.roll(row, s) for row, s in zip(x, shifts)])
    correlated = np.cumsum(rng.normal(size=(n, length)), axis=1) / np.sqrt(length)
    x = x + noise * (correlated + rng.normal(size=(n, length)))
    return x.astype(np.float32), y.astype(np.int64)
