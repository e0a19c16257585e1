"""Conv4's max-pool blocks pool before the ReLU: the same function and gradients as ReLU-then-pool."""

import torch
import torch.nn.functional as F

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
