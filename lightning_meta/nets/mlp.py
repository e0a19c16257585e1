"""MLP: the backbone for feature vectors (tabular data), with the same interface as ``Conv4``.

Linear-BatchNorm-ReLU blocks give the embedding (``embed``); with ``out_features`` a linear ``head`` gives
logits, one per way, as MAML and Reptile adapt; with ``out_features=None`` the network returns the
embedding (ProtoNet). Inputs of any shape ``[N, ...]`` are flattened to ``[N, D]``.
"""

from __future__ import annotations

from torch import Tensor, nn

from lightning_meta.checks import PositiveInt, PositiveInts, checked


class MLP(nn.Module):
    """Linear-BN-ReLU blocks of widths ``hidden``, then a linear head (or none, for embeddings)."""

    @checked
    def __init__(
        self,
        in_features: PositiveInt,
        out_features: PositiveInt | None = 5,
        hidden: PositiveInts = (64, 64),
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        # What MetaLearner records in hparams, so that load_from_checkpoint rebuilds a learner given this module.
        self.init_args = {"in_features": in_features, "out_features": out_features, "hidden": list(hidden),
                          "batch_norm": batch_norm}
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), *([nn.BatchNorm1d(h)] if batch_norm else []), nn.ReLU()]
            width = h
        self.features = nn.Sequential(*layers)
        self.embedding_dim = width
        self.head = nn.Linear(width, out_features) if out_features else None

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x.flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        z = self.embed(x)
        return self.head(z) if self.head is not None else z
