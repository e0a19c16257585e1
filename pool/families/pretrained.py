"""Networks pretrained here on other data, for the fine-tuning family.

A CNN is trained on the Omniglot background alphabets that no other family uses (``PRETRAIN_ALPHABETS``), then
each fine-tuning task loads its weights, replaces the head, and trains on an evaluation alphabet: new classes
from a shifted distribution, as a user fine-tunes a network trained on someone else's data. The weights are
cached as a plain ``state_dict`` (read back with ``weights_only=True``, so the file cannot run code), keyed by
the network's shape, so every trial and every worker fine-tunes the same network.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pool.families import nets

PRETRAIN_ALPHABETS = ["Asomtavruli_(Georgian)", "Blackfoot_(Canadian_Aboriginal_Syllabics)", "Japanese_(hiragana)",
                      "Japanese_(katakana)", "Malay_(Jawi_-_Arabic)", "Mkhedruli_(Georgian)",
                      "Ojibwe_(Canadian_Aboriginal_Syllabics)", "Inuktitut_(Canadian_Aboriginal_Syllabics)"]
PRETRAIN_EPOCHS = 10


def cache_dir() -> Path:
    """``$LIGHTNING_META_CACHE`` or the system's temporary folder."""
    return Path(os.environ.get("LIGHTNING_META_CACHE", Path(tempfile.gettempdir()) / "lightning_meta_cache"))


def pretrained_cnn(classes: int, image_size: int, width: int) -> nn.Sequential:
    """``nets.cnn2d`` with the pretrained body and a fresh ``classes``-way head."""
    body = _pretrained_body(image_size, width)
    net = nets.cnn2d(classes, image_size, width=width)
    state = {k: v for k, v in body.items() if not k.startswith(f"{len(net) - 1}.")}
    net.load_state_dict(state, strict=False)
    return net


def _pretrained_body(image_size: int, width: int) -> dict[str, torch.Tensor]:
    path = cache_dir() / f"omniglot_cnn2d_s{image_size}_w{width}_e{PRETRAIN_EPOCHS}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    state = _pretrain(image_size, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")  # workers racing each write a whole file
    torch.save(state, partial)
    partial.replace(path)
    return state


def _pretrain(image_size: int, width: int) -> dict[str, torch.Tensor]:
    """Adam at 1e-3, batch 64, ``PRETRAIN_EPOCHS`` epochs over the pretraining alphabets' 20 drawings each."""
    from pool.tasks import alphabet_images

    xs, ys, offset = [], [], 0
    for alphabet in PRETRAIN_ALPHABETS:
        x_train, y_train, x_val, y_val = alphabet_images(alphabet, image_size)
        xs += [x_train, x_val]
        ys += [y_train + offset, y_val + offset]
        offset += int(y_train.max()) + 1
    x, y = torch.cat(xs).float(), torch.cat(ys).long()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nets.cnn2d(offset, image_size, width=width)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        order = np.random.default_rng(0)
        for _ in range(PRETRAIN_EPOCHS):
            for batch in torch.as_tensor(order.permutation(len(x))).split(64):
                optimizer.zero_grad()
                nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
                optimizer.step()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}
