"""EmbeddingBagEncoder: the backbone for token ids (text), with the same interface as ``Conv4``.

A sequence of token ids ``[N, L]`` becomes the mean of its tokens' embeddings (padding ids left out), then
Linear-BatchNorm-ReLU blocks give the embedding (``embed``); with ``out_features`` a linear ``head`` gives logits
(MAML, Reptile), with ``out_features=None`` the network returns the embedding (ProtoNet). The mean is computed
from ``nn.Embedding`` and a mask rather than ``nn.EmbeddingBag``, whose backward has no derivative of its own:
second-order MAML differentiates through the inner loop's gradients.
"""

from __future__ import annotations

from torch import Tensor, nn

from lightning_meta.checks import NonNegativeInt, PositiveInt, PositiveInts, checked
from lightning_meta.nets.mlp import MLP


class EmbeddingBagEncoder(MLP):
    """Mean of token embeddings, then the ``MLP``'s Linear-BN-ReLU blocks of widths ``hidden`` and head (or none)."""

    @checked
    def __init__(
        self,
        vocab_size: PositiveInt,
        out_features: PositiveInt | None = 5,
        embedding_dim: PositiveInt = 64,
        hidden: PositiveInts = (64,),
        batch_norm: bool = True,
        padding_idx: NonNegativeInt = 0,
    ) -> None:
        super().__init__(embedding_dim, out_features, hidden, batch_norm)
        # What MetaLearner records in hparams, so that load_from_checkpoint rebuilds a learner given this module.
        self.init_args = {"vocab_size": vocab_size, "out_features": out_features, "embedding_dim": embedding_dim,
                          "hidden": list(hidden), "batch_norm": batch_norm, "padding_idx": padding_idx}
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)

    def embed(self, x: Tensor) -> Tensor:
        ids = x.long()  # token ids stored in any integer (or float) dtype
        keep = (ids != self.padding_idx).unsqueeze(-1)
        bag = (self.embedding(ids) * keep).sum(1) / keep.sum(1).clamp(min=1)
        return super().embed(bag)
