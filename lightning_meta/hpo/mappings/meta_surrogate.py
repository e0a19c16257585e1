"""A meta-learned surrogate: each HPO task is a few-shot regression problem.

The score of a configuration on a task is predicted as its across-task prior (``prior.py``:
best-on-average, smoothed) plus a bounded correction ``f(task features, encoded hyperparameters,
bound, prior)``. The MLP ``f`` starts at zero and is meta-trained with first-order MAML over
episodes: sample a task, observe ``k`` of its runs (``k`` uniform in
``0..max_shots``; ``k = 0`` trains the zero-shot prediction), adapt the weights on them with a
few SGD steps (``learners.inner_loop.adapt``), and score the adapted weights on other runs of
the same task. At ``suggest`` time the trials already run on the new task are that support set.
An ensemble of ``members`` networks (different seeds) gives the uncertainty.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.mappings.base import Mapping, encode_frame, observed_scores
from lightning_meta.hpo.mappings.observed_residual import affine
from lightning_meta.hpo.mappings.prior import ConfigPrior, priors
from lightning_meta.learners.inner_loop import adapt, forward


class EnsembleMLP(nn.Module):
    """``members`` ReLU MLPs held as one set of stacked weights, trained and run in one pass.

    The output is the input's last column (the prior) plus the MLP's correction, squashed by
    ``tanh`` to at most the bound in the second-to-last column; the last layer starts at zero, so
    an untrained network predicts the prior.

    Weights are ``[members, fan_in, fan_out]``; they may gain a task axis after the member
    axis (``[members, tasks, ...]``, one adapted copy per task of a meta-batch). Inputs broadcast
    against them: ``x [n, d] -> [members, n]``, ``x [members, tasks, n, d] -> [members, tasks, n]``.
    """

    def __init__(self, inputs: int, hidden: int = 64, layers: int = 2, members: int = 5) -> None:
        super().__init__()
        sizes = [inputs] + [hidden] * layers + [1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            scale = (2.0 / fan_in) ** 0.5 if fan_out > 1 else 0.0
            self.weights.append(nn.Parameter(torch.randn(members, fan_in, fan_out) * scale))
            self.biases.append(nn.Parameter(torch.zeros(members, fan_out)))

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b.unsqueeze(-2)
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        bound = x[..., -2]
        return bound * torch.tanh(h.squeeze(-1) / bound) + x[..., -1]


class MetaSurrogate(Mapping):
    """First-order MAML surrogate over (features, hyperparameters); see the module docstring.

    The ``members`` networks of the ensemble differ in initialization and episodes.

    ``adapt_min`` trials are needed before it adapts: their raw objectives are first put on the
    task-normalized scale by matching their mean and spread to the zero-shot predictions.

    ``correction`` bounds how far the prediction may move from the prior, ``correction + growth * k``
    after ``k`` observed trials. With no trial the task features alone may only re-rank
    configurations the other tasks found good (held-out tasks whose features lie outside the
    training range otherwise get wild extrapolations); each observed trial widens the bound. It adapts
    itself, so the kernel correction every other mapping adds is off (``adapt_lengthscale = None``).
    """

    adapt_lengthscale = None

    def __init__(
        self,
        members: int = 5,
        meta_steps: int = 1500,
        meta_batch: int = 8,
        max_shots: int = 10,
        queries: int = 64,
        top_queries: float = 0.5,
        inner_steps: int = 5,
        inner_lr: float = 0.05,
        outer_lr: float = 2e-3,
        hidden: int = 64,
        adapt_min: int = 3,
        correction: float = 0.01,
        growth: float = 0.03,
        seed: int = 0,
    ) -> None:
        if correction <= 0 or growth < 0:
            raise ConfigError(f"MetaSurrogate needs correction > 0 and growth >= 0, got {correction} and {growth}.")
        self.members = members
        self.meta_steps = meta_steps
        self.meta_batch = meta_batch
        self.max_shots = max_shots
        self.queries = queries
        self.top_queries = top_queries
        self.inner_steps = inner_steps
        self.inner_lr = inner_lr
        self.outer_lr = outer_lr
        self.hidden = hidden
        self.adapt_min = adapt_min
        self.correction = correction
        self.growth = growth
        self.seed = seed

    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        encoded = encode_frame(frame, self.space)
        self.prior, held_out = priors(encoded, scores, frame["task"].to_numpy())
        inputs = np.concatenate(
            [self.encoder.frame(frame), encoded, held_out[:, None]], axis=1
        )
        tasks = [np.flatnonzero(frame["task"].to_numpy() == t) for t in frame["task"].unique()]
        data = [
            (torch.tensor(inputs[r], dtype=torch.float32), torch.tensor(scores[r], dtype=torch.float32),
             torch.as_tensor(np.argsort(-scores[r], kind="stable")[: max(1, len(r) // 10)]))
            for r in tasks
        ]
        self.inputs = inputs.shape[1] + 1  # + the correction bound, added per episode
        self.state = self._meta_train(data)

    def _fitted_state(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "weights": self.state, "prior": self.prior.state()}

    def _set_fitted_state(self, state: dict[str, Any]) -> None:
        self.inputs = int(state["inputs"])
        self.state = {name: torch.as_tensor(value, dtype=torch.float32) for name, value in state["weights"].items()}
        self.prior = ConfigPrior.from_state(state["prior"])
        expected = dict(self._network().named_parameters())
        if {n: tuple(p.shape) for n, p in expected.items()} != {n: tuple(t.shape) for n, t in self.state.items()}:
            raise ValueError("the stored weights do not match the network the settings describe")

    def _network(self) -> EnsembleMLP:
        return EnsembleMLP(self.inputs, self.hidden, members=self.members)

    def _meta_train(self, data: list[tuple[Tensor, Tensor, Tensor]]) -> dict[str, Tensor]:
        """First-order MAML; every member draws its own episodes (members train independently)."""
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        net = self._network()
        optimizer = torch.optim.Adam(net.parameters(), lr=self.outer_lr)
        batch = min(self.meta_batch, len(data))
        for _ in range(self.meta_steps):
            episodes = [self._episode([data[i] for i in rng.choice(len(data), size=batch, replace=False)], rng)
                        for _ in range(self.members)]
            support_x, support_y, mask, query_x, query_y = (torch.stack(part) for part in zip(*episodes))
            params = {n: p.unsqueeze(1).expand(p.shape[0], batch, *p.shape[1:]) for n, p in net.named_parameters()}

            def support_loss(current, step):
                error = (forward(net, current, support_x) - support_y) ** 2 * mask
                return (error.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)).sum()

            adapted = adapt(params, support_loss, self.inner_steps, self.inner_lr, first_order=True)
            loss = ((forward(net, adapted, query_x) - query_y) ** 2).mean(dim=(1, 2)).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return {n: p.detach().clone() for n, p in net.named_parameters()}

    def _episode(self, tasks: list[tuple[Tensor, Tensor, Tensor]], rng: np.random.Generator):
        """Support (``k`` random runs, masked to ``max_shots``) and query runs of each task.

        A share ``top_queries`` of the queries comes from the task's best decile: the proposal
        depends only on the top of the surface, so that is where the fit must be sharp.
        """
        sx, sy, masks, qx, qy = [], [], [], [], []
        n_top = int(round(self.top_queries * self.queries))
        for x, y, top in tasks:
            support = torch.as_tensor(rng.choice(len(x), size=self.max_shots, replace=len(x) < self.max_shots))
            query = torch.cat([
                top[torch.as_tensor(rng.integers(0, len(top), size=n_top))],
                torch.as_tensor(rng.integers(0, len(x), size=self.queries - n_top)),
            ])
            shots = int(rng.integers(0, self.max_shots + 1))
            sx.append(self._bounded(x[support], shots))
            sy.append(y[support])
            masks.append((torch.arange(self.max_shots) < shots).float())
            qx.append(self._bounded(x[query], shots))
            qy.append(y[query])
        return torch.stack(sx), torch.stack(sy), torch.stack(masks), torch.stack(qx), torch.stack(qy)

    def _bounded(self, x: Tensor, observed: int) -> Tensor:
        """Inserts the correction bound for ``observed`` trials before the prior (last) column."""
        bound = torch.full((*x.shape[:-1], 1), self.correction + self.growth * observed)
        return torch.cat([x[..., :-1], bound, x[..., -1:]], dim=-1)

    def _inputs(self, features: dict[str, float], x: np.ndarray) -> Tensor:
        """Network inputs before the bound: scaled task features, encoded configuration, prior."""
        head = np.tile(self.scaled_features(features), (len(x), 1))
        return torch.tensor(np.concatenate([head, x, self.prior(x)[:, None]], axis=1), dtype=torch.float32)

    def predict_encoded(self, features, x, observed=None):
        net = self._network()
        support = self._support(net, features, observed)
        queries = self._bounded(self._inputs(features, x), 0 if support is None else len(support[1]))
        params = self._adapted(net, support)
        with torch.no_grad():
            predictions = forward(net, params, queries).numpy().astype(float)
        return predictions.mean(axis=0), predictions.std(axis=0)

    def _support(self, net: EnsembleMLP, features: dict[str, float], observed: pd.DataFrame | None):
        """The observed trials as (inputs, targets on the normalized scale), or None if too few."""
        x, y = observed_scores(observed, self.space)
        if len(y) < max(self.adapt_min, 1):
            return None
        inputs = self._inputs(features, x)
        with torch.no_grad():
            zero_shot = forward(net, self.state, self._bounded(inputs, 0)).mean(dim=0).numpy()
        slope, intercept = affine(y, zero_shot)
        return self._bounded(inputs, len(y)), torch.tensor(slope * y + intercept, dtype=torch.float32)

    def _adapted(self, net: EnsembleMLP, support) -> dict[str, Tensor]:
        if support is None:
            return self.state
        inputs, targets = support
        params = {n: p.clone().requires_grad_(True) for n, p in self.state.items()}
        adapted = adapt(
            params, lambda current, step: ((forward(net, current, inputs) - targets) ** 2).mean(dim=-1).sum(),
            self.inner_steps, self.inner_lr, first_order=True,
        )
        return {n: p.detach() for n, p in adapted.items()}

