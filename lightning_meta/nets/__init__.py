"""Backbones for few-shot learning. Any ``nn.Module`` works with the learners; these are the standard ones."""

from lightning_meta.nets.conv4 import Conv4
from lightning_meta.nets.embedding_bag import EmbeddingBagEncoder
from lightning_meta.nets.mlp import MLP
from lightning_meta.nets.resnet12 import ResNet12

__all__ = ["Conv4", "EmbeddingBagEncoder", "MLP", "ResNet12"]
