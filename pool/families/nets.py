"""The networks of the task families: MLPs, small 2-D CNNs and ResNets, a 1-D CNN, a Transformer encoder, a GRU
and an LSTM.

Their sizes span more than 30x in parameters (a 2-16-2 MLP holds 82, the ResNet up to 76k), so
the pool covers models whose good learning rates differ.
"""

from __future__ import annotations

from torch import Tensor, nn


def mlp(inputs: int, classes: int, hidden: int = 64, layers: int = 2) -> nn.Sequential:
    """``layers`` hidden ReLU layers of width ``hidden``."""
    sizes = [inputs] + [hidden] * layers
    blocks: list[nn.Module] = [nn.Flatten()]
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        blocks += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(sizes[-1], classes))


def cnn2d(classes: int, image_size: int, width: int = 16, channels: int = 1) -> nn.Sequential:
    """Two conv-BN-ReLU-max-pool blocks and a linear head."""
    blocks: list[nn.Module] = []
    for fan_in in (channels, width):
        blocks += [nn.Conv2d(fan_in, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*blocks, nn.Flatten(), nn.Linear(width * (image_size // 4) ** 2, classes))


class _Residual(nn.Module):
    """A basic residual block (two 3x3 convs, BN) that halves the side and changes the width."""

    def __init__(self, fan_in: int, fan_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(fan_in, fan_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(fan_out), nn.ReLU(),
            nn.Conv2d(fan_out, fan_out, 3, padding=1, bias=False), nn.BatchNorm2d(fan_out),
        )
        self.skip = nn.Sequential(nn.Conv2d(fan_in, fan_out, 1, stride=2, bias=False), nn.BatchNorm2d(fan_out))

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.relu(self.body(x) + self.skip(x))


def resnet(classes: int, width: int = 16, channels: int = 1) -> nn.Sequential:
    """Stem + two residual stages (``width`` -> 2x -> 4x) + global average pooling."""
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        _Residual(width, 2 * width), _Residual(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, classes),
    )


def cnn1d(classes: int, length: int, width: int = 32) -> nn.Sequential:
    """Two 1-D conv-ReLU-pool blocks over a sequence of ``length`` values and a linear head."""
    return nn.Sequential(
        nn.Unflatten(1, (1, length)),
        nn.Conv1d(1, width, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(width, width, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Flatten(), nn.Linear(width * (length // 4), classes),
    )


class TokenTransformer(nn.Module):
    """Token and position embeddings, ``layers`` Transformer encoder layers, mean pooling, a linear head."""

    def __init__(self, vocab: int, classes: int, length: int, width: int = 32, layers: int = 2, heads: int = 2) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(length, width)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.tokens(x) + self.positions.weight[: x.shape[1]]
        return self.head(self.norm(self.encoder(h)).mean(dim=1))


class TokenGRU(nn.Module):
    """Token embedding, a GRU, and a linear head on the last state (``per_token=False``: one label per sequence)
    or on every state (``per_token=True``: a language model, logits ``[batch, vocab, length]``)."""

    def __init__(self, vocab: int, outputs: int, width: int = 64, per_token: bool = False) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.gru = nn.GRU(width, width, batch_first=True)
        self.head = nn.Linear(width, outputs)
        self.per_token = per_token

    def forward(self, x: Tensor) -> Tensor:
        states, last = self.gru(self.tokens(x))
        if self.per_token:
            return self.head(states).transpose(1, 2)
        return self.head(last[-1])


class SequenceLSTM(nn.Module):
    """An LSTM over a sequence: of tokens (``vocab``: an embedding first) or of scalars (``vocab=None``: a signal,
    one value per step, projected to ``width``). A linear head on the last state of the top layer, or on every
    state (``per_token=True``: a language model, logits ``[batch, outputs, length]``)."""

    def __init__(self, vocab: int | None, outputs: int, width: int = 64, layers: int = 1, per_token: bool = False) -> None:
        super().__init__()
        self.inputs = nn.Linear(1, width) if vocab is None else nn.Embedding(vocab, width)
        self.lstm = nn.LSTM(width, width, num_layers=layers, batch_first=True)
        self.head = nn.Linear(width, outputs)
        self.per_token = per_token

    def forward(self, x: Tensor) -> Tensor:
        h = self.inputs(x.unsqueeze(-1) if x.is_floating_point() else x)
        states, (last, _) = self.lstm(h)
        if self.per_token:
            return self.head(states).transpose(1, 2)
        return self.head(last[-1])
