"""ResNet-12 (Oreshkin et al. 2018; Lee et al. 2019): the standard larger few-shot backbone.

Four residual blocks of three 3x3 convs with a 1x1 shortcut, each followed by 2x2 max-pooling,
channels 64-160-320-640 by default, global average pooling to a 640-d embedding.
"""

from __future__ import annotations

from torch import Tensor, nn

from lightning_meta.checks import PositiveInt, PositiveInts, checked


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        convs = []
        for i in range(3):
            convs += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)]
            if i < 2:
                convs.append(nn.LeakyReLU(0.1))
        self.body = nn.Sequential(*convs)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.out = nn.Sequential(nn.LeakyReLU(0.1), nn.MaxPool2d(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x) + self.shortcut(x))


class ResNet12(nn.Module):
    """ResNet-12 embedding network with an optional linear head."""

    @checked
    def __init__(self, in_channels: PositiveInt = 3, out_features: PositiveInt | None = None,
                 channels: PositiveInts = (64, 160, 320, 640)) -> None:
        super().__init__()
        # What MetaLearner records in hparams, so that load_from_checkpoint rebuilds a learner given this module.
        self.init_args = {"in_channels": in_channels, "out_features": out_features, "channels": list(channels)}
        widths = [in_channels, *channels]
        self.features = nn.Sequential(*[_Block(widths[i], widths[i + 1]) for i in range(len(channels))])
        self.embedding_dim = widths[-1]
        self.head = nn.Linear(self.embedding_dim, out_features) if out_features else None

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        z = self.embed(x)
        return self.head(z) if self.head is not None else z
