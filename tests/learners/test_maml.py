"""MAML's meta-gradient against a hand-written reference, and the MAML++ / ANIL options."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_meta.errors import ConfigError
from lightning_meta.learners import MAML
from lightning_meta.learners.inner_loop import _same_strides, forward
from lightning_meta.nets import Conv4


@pytest.fixture(autouse=True)
def _float64():
    """Gradients are compared in float64; the default dtype is restored for the other test modules."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def _mlp():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))
    return net.double()


def _batch(tasks=3, ways=3, shots=2, queries=4):
    g = torch.Generator().manual_seed(1)
    sx = torch.randn(tasks, ways * shots, 1, 4, 4, generator=g, dtype=torch.float64)
    qx = torch.randn(tasks, ways * queries, 1, 4, 4, generator=g, dtype=torch.float64)
    sy = torch.arange(ways).repeat_interleave(shots).repeat(tasks, 1)
    qy = torch.arange(ways).repeat_interleave(queries).repeat(tasks, 1)
    return sx, sy, qx, qy


def _reference_meta_grad(net, batch, lr, steps, first_order):
    """Explicit two-layer MLP MAML written with raw tensors, independent of the library's inner loop."""
    w1, b1, w2, b2 = (p.detach().clone().requires_grad_() for p in (net[1].weight, net[1].bias, net[3].weight, net[3].bias))

    def f(params, x):
        a, b, c, d = params
        return torch.tanh(x.flatten(1) @ a.T + b) @ c.T + d

    total = 0
    for sx, sy, qx, qy in zip(*batch):
        params = [w1, b1, w2, b2]
        for _ in range(steps):
            grads = torch.autograd.grad(F.cross_entropy(f(params, sx), sy), params, create_graph=not first_order)
            params = [p - lr * (g.detach() if first_order else g) for p, g in zip(params, grads)]
        total = total + F.cross_entropy(f(params, qx), qy)
    return torch.autograd.grad(total / len(batch[0]), [w1, b1, w2, b2])


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
def test_meta_gradient_matches_reference(first_order, steps):
    net, batch = _mlp(), _batch()
    learner = MAML(net, inner_lr=0.3, inner_steps=steps, first_order=first_order)
    loss, _ = learner.meta_loss(batch)
    loss.backward()
    ours = [p.grad for p in (net[1].weight, net[1].bias, net[3].weight, net[3].bias)]
    ref = _reference_meta_grad(_mlp(), batch, 0.3, steps, first_order)
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), (a - b).abs().max()


def test_second_order_differs_from_first_order():
    # Guards against the second-order path silently falling back to first order.
    grads = []
    for first_order in (False, True):
        net = _mlp()
        MAML(net, inner_lr=0.5, inner_steps=2, first_order=first_order).meta_loss(_batch())[0].backward()
        grads.append(net[1].weight.grad)
    assert (grads[0] - grads[1]).abs().max() > 1e-6


def test_learned_inner_rates_get_meta_gradients_and_start_at_inner_lr():
    learner = MAML(_mlp(), inner_lr=0.2, inner_steps=2, learn_inner_lr=True)
    learner.meta_loss(_batch())[0].backward()
    for rate in learner.inner_lrs.values():
        assert torch.allclose(rate.data, torch.full_like(rate, 0.2))
        assert rate.grad is not None and rate.grad.abs().sum() > 0


def test_multi_step_loss_weights_anneal_to_the_last_step():
    learner = MAML(_mlp(), inner_steps=4, multi_step_loss=True, msl_epochs=10)
    w0 = learner._msl_weights(4)
    assert torch.allclose(w0, torch.full((4,), 0.25)) and torch.isclose(w0.sum(), torch.tensor(1.0))
    learner.meta_loss(_batch())[0].backward()
    assert learner.backbone[1].weight.grad.abs().sum() > 0


def test_per_step_batchnorm_and_anil_on_conv4():
    torch.manual_seed(0)
    x = _batch(tasks=2, ways=5)
    x = (x[0].repeat(1, 1, 1, 7, 7), x[1], x[2].repeat(1, 1, 1, 7, 7), x[3])
    learner = MAML(Conv4(1, 5, hidden=4, image_size=28).double(), inner_steps=2, per_step_bn=True)
    learner.meta_loss(x)[0].backward()
    assert all(p.grad is not None for p in learner.step_bn.values())
    assert not any("features.0.1" in n for n in learner.adapted_names)  # BN params are learned per step, not adapted
    anil = MAML(Conv4(1, 5, hidden=4, image_size=28).double(), anil=True)
    assert all(n.startswith("head.") for n in anil.adapted_names)
    anil.meta_loss(x)[0].backward()
    assert anil.backbone.features[0][0].weight.grad.abs().sum() > 0  # the body still learns from the query loss


def test_adapt_and_predict_returns_query_logits_without_touching_weights():
    net, (sx, sy, qx, _) = _mlp(), _batch()
    before = [p.clone() for p in net.parameters()]
    logits = MAML(net, inner_steps_eval=5).adapt_and_predict(sx[0], sy[0], qx[0])
    assert logits.shape == (12, 3) and not logits.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_evaluation_in_inference_mode_is_refused_with_the_fix():
    learner = MAML(_mlp())
    with torch.inference_mode(), pytest.raises(ConfigError, match=r"inference_mode=False"):
        learner._episode_accuracies(_batch())


def test_anil_needs_a_head():
    with pytest.raises(ConfigError, match="head"):
        MAML(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), anil=True)


@pytest.mark.parametrize("first_order", [False, True])
def test_batched_tasks_give_the_same_meta_gradient_as_the_task_loop(first_order):
    x = _batch(tasks=3, ways=5)
    x = (x[0].repeat(1, 1, 1, 7, 7), x[1], x[2].repeat(1, 1, 1, 7, 7), x[3])
    grads = []
    for batch_tasks in (False, True):
        torch.manual_seed(0)
        learner = MAML(Conv4(1, 5, hidden=4, image_size=28).double(), inner_steps=2, first_order=first_order,
                       batch_tasks=batch_tasks)
        learner.meta_loss(x)[0].backward()
        grads.append([p.grad.clone() for p in learner.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-10)


def test_batched_tasks_refuse_options_they_do_not_implement():
    with pytest.raises(ConfigError, match="batch_tasks=True supports a Conv4"):
        MAML(Conv4(1, 5, hidden=4), batch_tasks=True, learn_inner_lr=True)


@pytest.mark.parametrize("first_order", [False, True])
def test_channels_last_survives_the_inner_update_and_keeps_the_meta_gradient(first_order):
    # A 1-channel conv weight [64, 1, 3, 3] is channels_last and NCHW at once; the inner update used to give it
    # NCHW strides, so the adapted network ran its first layers NCHW and reordered (26.6 vs 19.7 ms per task).
    batch = tuple(t[:2] for t in _batch(ways=5, shots=1, queries=3))
    batch = (torch.rand(2, 5, 1, 28, 28), batch[1], torch.rand(2, 15, 1, 28, 28), batch[3])
    grads = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        learner = MAML(Conv4(in_channels=1, out_features=5), inner_lr=0.4, first_order=first_order,
                       channels_last=channels_last)
        adapted = learner.adapt(batch[0][0], batch[1][0], steps=2, first_order=first_order)[-1]
        for name, p in learner.backbone.named_parameters():
            assert adapted[name].stride() == p.stride(), name
        if channels_last:
            outputs = []
            hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o)) for m in learner.backbone.modules()
                     if isinstance(m, nn.Conv2d)]
            forward(learner.backbone, adapted, batch[2][0])
            for hook in hooks:
                hook.remove()
            assert all(o.stride(1) == 1 for o in outputs)  # NHWC: channels innermost, first layer included
        loss, _ = learner.meta_loss(batch)
        loss.backward()
        grads[channels_last] = [p.grad for p in learner.backbone.parameters()]
    for a, b in zip(grads[False], grads[True]):
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-10)


def test_same_strides_never_reinterprets_a_different_layout():
    old = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    new = torch.randn(2, 3, 4, 4)  # NCHW: really another layout, so its values must be left alone
    assert _same_strides(new, old) is new
    one_channel = torch.randn(8, 1, 3, 3).contiguous(memory_format=torch.channels_last)
    same = _same_strides(one_channel.contiguous() * 1.0, torch.empty(8, 1, 3, 3).as_strided((8, 1, 3, 3), (9, 1, 3, 1)))
    assert same.stride() == (9, 1, 3, 1) and torch.equal(same, one_channel)
