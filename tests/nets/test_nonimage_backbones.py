"""MLP and EmbeddingBagEncoder: the shapes the learners need, padding left out of the bag, rebuilt from init_args."""

import pytest
import torch
from hydra.utils import instantiate

from lightning_meta.errors import ConfigError
from lightning_meta.learners.base import backbone_hparam
from lightning_meta.nets import MLP, EmbeddingBagEncoder


def test_mlp_gives_logits_per_way_or_an_embedding():
    x = torch.randn(7, 16)
    assert MLP(16, 5, hidden=[32, 8])(x).shape == (7, 5)
    net = MLP(16, None, hidden=[32, 8], batch_norm=False)
    assert net.head is None and net(x).shape == (7, 8) and net.embedding_dim == 8
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())


def test_embedding_bag_ignores_padding_and_takes_float_ids():
    torch.manual_seed(0)
    net = EmbeddingBagEncoder(vocab_size=50, out_features=None, embedding_dim=8, hidden=[4]).eval()
    short = torch.tensor([[3, 7, 0, 0, 0]])
    assert torch.allclose(net(short), net(torch.tensor([[3, 7]])))
    assert not torch.allclose(net(short), net(torch.tensor([[3, 7, 7]])))
    assert torch.equal(net(short), net(short.float()))  # a float shape probe (preflight) gets the same ids


def test_second_order_gradients_reach_the_embedding():
    # MAML differentiates through the inner loop's gradient: the masked mean of nn.Embedding supports it
    net = EmbeddingBagEncoder(vocab_size=30, out_features=3, embedding_dim=4, hidden=[4])
    x, y = torch.randint(1, 30, (6, 5)), torch.arange(6) % 3
    params = dict(net.named_parameters())
    loss = torch.nn.functional.cross_entropy(torch.func.functional_call(net, params, x), y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    adapted = {k: v - 0.5 * g for (k, v), g in zip(params.items(), grads)}
    torch.nn.functional.cross_entropy(torch.func.functional_call(net, adapted, x), y).backward()
    assert net.embedding.weight.grad is not None and net.embedding.weight.grad.abs().sum() > 0


def test_checkpoints_rebuild_both_backbones_from_their_recorded_arguments():
    for net in (MLP(16, 5, hidden=[12]), EmbeddingBagEncoder(100, None, embedding_dim=6, hidden=[5, 3])):
        rebuilt = instantiate(backbone_hparam(net))
        assert type(rebuilt) is type(net)
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}


def test_bad_widths_are_refused_when_built():
    with pytest.raises(ConfigError, match="in_features=0, but in_features must be an integer >= 1"):
        MLP(in_features=0)
    with pytest.raises(ConfigError, match=r"hidden=\[\], but hidden must be a non-empty list of integers >= 1"):
        EmbeddingBagEncoder(vocab_size=100, hidden=[])
