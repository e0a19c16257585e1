"""Conv4: max-pool blocks pool before the ReLU (the same function as ReLU-then-pool); mean or flattened embeddings."""

import torch
import pytest
import torch.nn.functional as F

from lightning_meta.errors import ConfigError
from lightning_meta.nets import Conv4


def _relu_then_pool(net: Conv4, x: torch.Tensor) -> torch.Tensor:
    h = x
    for conv, bn, *_ in net.features:
        h = F.max_pool2d(F.relu(bn(conv(h))), 2)
    return torch.flatten(h, 1)


def test_pool_before_relu_equals_the_papers_relu_then_pool():
    torch.manual_seed(0)
    net = Conv4(in_channels=1, out_features=None, hidden=8, downsample="pool", image_size=28).double()
    assert [type(m).__name__ for m in net.features[0]] == ["Conv2d", "BatchNorm2d", "MaxPool2d", "ReLU"]
    x = torch.randn(6, 1, 28, 28, dtype=torch.double)
    ours, reference = net(x), _relu_then_pool(net, x)
    assert ours.shape == (6, 8 * 1 * 1) and torch.equal(ours, reference)
    g_ours = torch.autograd.grad(ours.square().sum(), list(net.parameters()))
    g_ref = torch.autograd.grad(reference.square().sum(), list(net.parameters()))
    assert all(torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(g_ours, g_ref))


def test_strided_conv4_can_flatten_its_last_feature_map_like_the_reptile_reference():
    net = Conv4(1, 5, hidden=64, downsample="stride", image_size=28, embedding="flatten")
    assert net.embedding_dim == 2 * 2 * 64  # 28 -> 14 -> 7 -> 4 -> 2 px
    x = torch.randn(3, 1, 28, 28)
    assert net(x).shape == (3, 5)
    assert torch.equal(net.embed(x), torch.flatten(net.features(x), 1))
    assert Conv4(1, 5, downsample="stride").embedding_dim == 64  # the mean stays the default for stride
    with pytest.raises(ConfigError, match="embedding must be one of 'mean', 'flatten' or null"):
        Conv4(1, 5, embedding="max")
