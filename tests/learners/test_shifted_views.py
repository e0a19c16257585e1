"""Test-time shifted views (ProtoNet's ``test_shift``): what the views are, and that only evaluation uses them."""

from __future__ import annotations

import pytest
import torch

from lightning_meta.errors import ConfigError
from lightning_meta.learners import ProtoNet
from lightning_meta.learners.shifted_views import mean_over_views, shifted_views
from lightning_meta.nets import Conv4


def test_the_views_are_the_image_and_its_eight_shifts_with_the_edge_repeated():
    x = torch.zeros(2, 1, 5, 5)
    x[:, :, 2, 2] = 1.0  # one ink pixel in the centre
    views = shifted_views(x, 1).reshape(9, 2, 1, 5, 5)
    assert torch.equal(views[0], x)
    ink = {tuple(torch.nonzero(v[0, 0]).flatten().tolist()) for v in views}
    assert ink == {(2 + dy, 2 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    edge = torch.ones(1, 1, 3, 3)
    edge[..., :, 0] = 5.0  # a bright left column: shifted right, it fills the uncovered border too
    moved_right = shifted_views(edge, 1)[4, 0]  # offsets (0, 0), then row-major over (dy, dx): (0, -1) is fifth
    assert (moved_right[:, :2] == 5.0).all() and (moved_right[:, 2] == 1.0).all()


def test_mean_over_views_averages_each_image_over_its_own_views():
    embeddings = torch.arange(9 * 2, dtype=torch.float32).reshape(9, 2, 1)  # view v, image i -> 2v + i
    assert torch.equal(mean_over_views(embeddings.reshape(18, 1), 2), torch.tensor([[8.0], [9.0]]))


def test_protonet_uses_the_views_in_evaluation_only():
    torch.manual_seed(0)
    plain = ProtoNet(Conv4(1, None, 8, "pool", 28))
    shifted = ProtoNet(Conv4(1, None, 8, "pool", 28), test_shift=2)
    shifted.load_state_dict(plain.state_dict())
    sx, sy, qx = torch.rand(5, 1, 28, 28), torch.arange(5), torch.rand(10, 1, 28, 28)
    for model in (plain, shifted):
        model.train()
    assert torch.allclose(plain.adapt_and_predict(sx, sy, qx), shifted.adapt_and_predict(sx, sy, qx))
    for model in (plain, shifted):
        model.eval()
    with torch.no_grad():
        assert not torch.allclose(plain.adapt_and_predict(sx, sy, qx), shifted.adapt_and_predict(sx, sy, qx))
    assert shifted.hparams.test_shift == 2


def test_shifting_inputs_that_are_not_images_is_a_one_line_error():
    with pytest.raises(ConfigError, match="Fix: set model.test_shift=0"):
        shifted_views(torch.zeros(4, 16), 1)
