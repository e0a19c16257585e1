"""ProtoNet's prototype classifier and Reptile's meta-update direction, checked by hand."""

import torch
import torch.nn.functional as F
from torch import nn

from lightning_meta.learners import ProtoNet, Reptile


def test_protonet_logits_are_negative_squared_distances_to_class_means():
    learner = ProtoNet(nn.Identity())
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    sy = torch.tensor([0, 0, 1])
    query = torch.tensor([[1.0, 1.0]])
    logits = learner.logits(support, sy, query)
    assert torch.allclose(logits, torch.tensor([[-1.0, -10.0]]))


def test_protonet_cosine_distance_is_scaled_cosine_similarity():
    learner = ProtoNet(nn.Identity(), distance="cosine", cosine_scale=5.0)
    logits = learner.logits(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]), torch.tensor([[1.0, 1.0]]))
    assert torch.allclose(logits, torch.full((1, 2), 5.0 / 2**0.5))


def test_protonet_trains_wider_than_it_tests():
    torch.manual_seed(0)
    learner = ProtoNet(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)))
    sx, qx = torch.randn(1, 20, 1, 2, 2), torch.randn(1, 20, 1, 2, 2)
    sy = qy = torch.arange(20).unsqueeze(0)
    loss, _ = learner.meta_loss((sx, sy, qx, qy))  # 20-way training episode
    assert loss.isfinite()
    assert learner.adapt_and_predict(sx[0, :5], sy[0, :5], qx[0]).shape == (20, 5)  # 5-way test episode


def test_reptile_gradient_is_theta_minus_mean_adapted_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    learner = Reptile(net, inner_lr=0.1, inner_steps=3, inner_optimizer="sgd")
    sx = torch.randn(2, 6, 1, 2, 2)
    sy = torch.arange(3).repeat_interleave(2).repeat(2, 1)
    batch = (sx, sy, sx, sy)
    phis = [learner.train_task(sx[i], sy[i], 3)[0] for i in range(2)]
    learner.meta_loss(batch)[0].backward()
    expected = net[1].weight.detach() - (phis[0]["1.weight"] + phis[1]["1.weight"]) / 2
    assert torch.allclose(net[1].weight.grad, expected, atol=1e-6)
    # Plain SGD inner loop: phi = theta - lr * sum of gradients; check one step by hand.
    one = learner.train_task(sx[0], sy[0], 1)[0]["1.weight"]
    w = net[1].weight.detach().clone().requires_grad_()
    F.cross_entropy(sx[0].flatten(1) @ w.T + net[1].bias.detach(), sy[0]).backward()
    assert torch.allclose(one, net[1].weight.detach() - 0.1 * w.grad, atol=1e-6)


def test_reptile_non_transductive_predicts_each_query_with_the_support_set_only():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    sx, sy, qx = torch.randn(6, 1, 2, 2), torch.arange(3).repeat_interleave(2), torch.randn(4, 1, 2, 2)
    trans = Reptile(net, inner_steps_eval=2, transductive=True).adapt_and_predict(sx, sy, qx)
    single = Reptile(net, inner_steps_eval=2, transductive=False).adapt_and_predict(sx, sy, qx)
    alone = Reptile(net, inner_steps_eval=2, transductive=False).adapt_and_predict(sx, sy, qx[:1])
    assert torch.allclose(single[0], alone[0], atol=1e-6)  # a query's prediction ignores the other queries
    assert not torch.allclose(trans, single)


def test_channels_last_keeps_the_loss_and_gradients_and_survives_a_checkpoint(tmp_path):
    from lightning_meta.nets import Conv4

    torch.manual_seed(0)
    batch = (torch.randn(1, 5, 3, 28, 28, dtype=torch.float64), torch.arange(5).unsqueeze(0),
             torch.randn(1, 10, 3, 28, 28, dtype=torch.float64), torch.arange(5).repeat(2).unsqueeze(0))
    results = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        learner = ProtoNet(Conv4(in_channels=3, out_features=None, downsample="pool", image_size=28),
                           channels_last=channels_last).double()  # float64: no max-pool ties flipped by rounding
        weight = next(p for p in learner.backbone.parameters() if p.dim() == 4)
        assert weight.is_contiguous(memory_format=torch.channels_last) == channels_last
        loss, _ = learner.meta_loss(batch)
        loss.backward()
        results.append((loss.detach(), weight.grad.clone()))
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-10)
    assert torch.allclose(results[0][1], results[1][1], rtol=1e-8, atol=1e-10)
    path = tmp_path / "w.pt"
    torch.save(learner.state_dict(), path)
    torch.manual_seed(1)
    fresh = ProtoNet(Conv4(in_channels=3, out_features=None, downsample="pool", image_size=28), channels_last=True).double()
    fresh.load_state_dict(torch.load(path))
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), learner.state_dict().values()))


def test_reptile_task_optimizer_trains_the_weights_torch_optim_does():
    torch.manual_seed(0)
    # No BatchNorm: a bias in front of one has a zero gradient up to rounding, which Adam's g/sqrt(v) amplifies.
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 13 * 13, 5))
    sx, sy = torch.randn(5, 1, 28, 28), torch.arange(5)
    for name, opt_cls, kwargs in (("adam", torch.optim.Adam, {"betas": (0.0, 0.999)}), ("sgd", torch.optim.SGD, {})):
        learner = Reptile(net, inner_lr=0.01, inner_optimizer=name, inner_state="fresh", channels_last=True)
        phi, _ = learner.train_task(sx, sy, 4)
        # The reference: torch.optim's single-tensor optimizer on the same four full-batch steps.
        params = {n: p.detach().clone().requires_grad_() for n, p in net.named_parameters()}
        reference = opt_cls(params.values(), lr=0.01, foreach=False, **kwargs)
        for _ in range(4):
            reference.zero_grad()
            F.cross_entropy(torch.func.functional_call(net, params, (sx,)), sy).backward()
            reference.step()
        for n, p in params.items():
            assert torch.allclose(phi[n], p, atol=1e-6), n
            assert not torch.allclose(phi[n], net.state_dict()[n]), n  # four steps moved every tensor
