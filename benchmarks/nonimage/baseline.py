"""Non-meta-learned baselines on the test episodes of a text or tabular experiment: the episodes ``train.py`` tests on.

The experiment's config (``+experiment=...`` and any overrides, exactly as given to ``train.py``) is composed with
Hydra and its datamodule built, so the episodes are the same fixed, seeded ones. Each episode is solved from its
support set alone, on fixed features: for token ids, bag-of-words counts (one column per hashed token id; padding
left out); for feature vectors, the values as served (already standardized with the training classes' statistics).

- ``nearest_centroid``: the class whose mean support vector is nearest (cosine similarity of L2-normalized counts
  for text, Euclidean distance for features).
- ``logistic_regression``: scikit-learn's L2-regularized logistic regression (C=1) fitted on the support set.

Prints, per baseline, the mean accuracy ± 1.96·std/√N over the N test episodes, as ``train.py`` reports a learner's.

    python benchmarks/nonimage/baseline.py +experiment=protonet_text
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from sklearn.linear_model import LogisticRegression
from torch import Tensor

from lightning_meta.configs import CONF_DIR

Solver = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(support features, support labels, query features) -> predicted query labels."""


def bag_of_words(ids: Tensor, vocab_size: int, padding_idx: int = 0) -> np.ndarray:
    """Counts ``[N, vocab_size]`` of each token id per row of ``ids`` ``[N, L]``, the padding column zero."""
    counts = torch.zeros(ids.shape[0], vocab_size).scatter_add_(1, ids, torch.ones(ids.shape, dtype=torch.float32))
    counts[:, padding_idx] = 0
    return counts.numpy()


def nearest_centroid(metric: str) -> Solver:
    """Nearest class mean of the support set, by ``"cosine"`` similarity or ``"euclidean"`` distance."""

    def solve(xs: np.ndarray, ys: np.ndarray, xq: np.ndarray) -> np.ndarray:
        if metric == "cosine":
            xs = xs / np.maximum(np.linalg.norm(xs, axis=1, keepdims=True), 1e-12)
            xq = xq / np.maximum(np.linalg.norm(xq, axis=1, keepdims=True), 1e-12)
        centroids = np.stack([xs[ys == c].mean(0) for c in range(ys.max() + 1)])
        if metric == "cosine":
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
            return (xq @ centroids.T).argmax(1)
        return ((xq[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)

    return solve


def logistic_regression(xs: np.ndarray, ys: np.ndarray, xq: np.ndarray) -> np.ndarray:
    """Fitted on the columns the support set uses: a column that is zero on every support row gets weight 0 under
    the L2 penalty, so leaving it out changes no prediction and makes 16,384-column bags of words fast."""
    used = np.any(xs != 0, axis=0)
    return LogisticRegression(C=1.0, max_iter=1000).fit(xs[:, used], ys).predict(xq[:, used])


def evaluate(datamodule, features: Callable[[Tensor], np.ndarray], solvers: dict[str, Solver]) -> dict[str, np.ndarray]:
    """Per-episode query accuracy of every solver on the datamodule's test episodes."""
    accs: dict[str, list[float]] = {name: [] for name in solvers}
    for sx, sy, qx, qy in datamodule.test_dataloader():
        for b in range(sx.shape[0]):
            xs, xq = features(sx[b]), features(qx[b])
            ys, yq = sy[b].numpy(), qy[b].numpy()
            for name, solve in solvers.items():
                accs[name].append(float((solve(xs, ys, xq) == yq).mean()))
    return {name: np.asarray(a) for name, a in accs.items()}


def main(overrides: Sequence[str]) -> dict[str, tuple[float, float, int]]:
    """Composes ``train.py``'s config with ``overrides``, runs the baselines; returns name -> (acc, ci95, episodes)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    datamodule = instantiate(cfg.data)
    datamodule.setup("test")
    backbone = cfg.model.backbone
    if "vocab_size" in backbone:  # token ids
        def features(x: Tensor) -> np.ndarray:
            return bag_of_words(x, backbone.vocab_size, backbone.padding_idx)
        metric, what = "cosine", "bag-of-words counts"
    else:
        def features(x: Tensor) -> np.ndarray:
            return x.flatten(1).double().numpy()
        metric, what = "euclidean", "standardized features"
    start = time.perf_counter()
    accs = evaluate(datamodule, features, {"nearest_centroid": nearest_centroid(metric),
                                           "logistic_regression": logistic_regression})
    seconds = time.perf_counter() - start
    spec = datamodule.spec("test")
    results = {}
    for name, a in accs.items():
        ci95 = 1.96 * a.std(ddof=1) / len(a) ** 0.5
        results[name] = (float(a.mean()), float(ci95), len(a))
        print(f"{name} on {what}: {100 * a.mean():.2f}% ± {100 * ci95:.2f}% (95% CI), {len(a)} test episodes "
              f"{spec.ways}-way {spec.shots}-shot {spec.queries} queries")
    print(f"({seconds:.0f} s)")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
