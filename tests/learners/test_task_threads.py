"""task_threads: tasks of a meta-batch on several threads give the sequential meta-gradient and accuracies."""

import pytest
import torch
from torch import nn

from lightning_meta.errors import ConfigError
from lightning_meta.learners import MAML, ProtoNet, Reptile
from lightning_meta.learners.inner_loop import forward
from lightning_meta.learners.task_threads import chunks, map_tasks
from lightning_meta.nets import Conv4


@pytest.fixture
def same_kernels():
    """float64, and the sequential reference on one intra-op thread like the workers: Reptile's inner Adam
    turns the ~1e-16 rounding noise of a zero gradient (conv biases before BatchNorm) into lr-sized steps,
    so kernels that sum in another order would differ by more than the threading does."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


def _batch(tasks=5, ways=3, shots=1, queries=2, size=16):
    g = torch.Generator().manual_seed(3)
    sx = torch.randn(tasks, ways * shots, 1, size, size, generator=g)
    qx = torch.randn(tasks, ways * queries, 1, size, size, generator=g)
    sy = torch.arange(ways).repeat_interleave(shots).repeat(tasks, 1)
    qy = torch.arange(ways).repeat_interleave(queries).repeat(tasks, 1)
    return sx, sy, qx, qy


def _net(out_features=3):
    torch.manual_seed(0)
    return Conv4(1, out_features, hidden=8, image_size=16)


def _meta_step(learner, batch):
    learner.zero_grad(set_to_none=True)
    loss, acc = learner.meta_loss(batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in learner.named_parameters() if p.grad is not None}
    return loss.detach(), acc, grads


@pytest.mark.parametrize(
    "make",
    [
        lambda threads: MAML(_net(), inner_lr=0.4, inner_steps=2, task_threads=threads),
        lambda threads: MAML(_net(), inner_lr=0.4, first_order=True, task_threads=threads),
        lambda threads: MAML(_net(), inner_steps=2, learn_inner_lr=True, multi_step_loss=True, per_step_bn=True,
                             task_threads=threads),
        lambda threads: MAML(_net(), anil=True, task_threads=threads),
        lambda threads: Reptile(_net(), inner_steps=3, task_threads=threads),
        lambda threads: ProtoNet(_net(None), bn_mode="transductive", task_threads=threads),
    ],
    ids=["maml", "fomaml", "maml++", "anil", "reptile", "protonet"],
)
def test_threads_give_the_sequential_meta_gradient(make, same_kernels):
    batch = _batch()
    loss1, acc1, grads1 = _meta_step(make(1), batch)
    loss3, acc3, grads3 = _meta_step(make(3), batch)  # chunks of 2, 2 and 1 tasks
    assert grads1.keys() == grads3.keys() and grads1
    torch.testing.assert_close(loss3, loss1)
    torch.testing.assert_close(acc3, acc1)
    for name in grads1:
        torch.testing.assert_close(grads3[name], grads1[name], rtol=1e-9, atol=1e-12, msg=name)


def test_threads_evaluate_every_episode_in_order():
    batch = _batch(tasks=7)
    one, three = MAML(_net(), task_threads=1), MAML(_net(), task_threads=3)
    torch.testing.assert_close(three._episode_accuracies(batch), one._episode_accuracies(batch))
    assert three._episode_accuracies(batch).shape == (7,)


def test_workers_run_under_the_callers_autocast_and_grad_mode():
    batch = _batch()
    fp32 = MAML(_net(), task_threads=1).meta_loss(batch)[0]
    with torch.autocast("cpu", torch.bfloat16):
        bf16_seq = MAML(_net(), task_threads=1).meta_loss(batch)[0]
        bf16_threads = MAML(_net(), task_threads=2).meta_loss(batch)[0]
    assert bf16_seq.item() != fp32.item()  # autocast changes the numbers, so the comparison below means something
    torch.testing.assert_close(bf16_threads, bf16_seq)
    with torch.no_grad():
        modes = map_tasks(lambda chunk: torch.is_grad_enabled(), 4, 2)
    assert modes == [False, False]


def test_concurrent_calls_on_one_module_each_see_their_own_weights():
    net = nn.Linear(2, 1)
    own = net.weight.detach().clone()
    x = torch.tensor([[1.0, 2.0]])
    threads_before = torch.get_num_threads()

    def run(chunk: range) -> list[float]:  # chunk 0 calls with weights 1, chunk 1 with weights 2, interleaved
        params = {"weight": torch.full((1, 2), float(chunk[0] + 1)), "bias": torch.zeros(1)}
        return [forward(net, params, x).item() for _ in range(300)]

    first, second = map_tasks(run, 2, 2)
    assert set(first) == {3.0} and set(second) == {6.0}
    assert torch.equal(net.weight, own)
    assert torch.get_num_threads() == threads_before


def test_chunks_are_contiguous_near_equal_and_never_empty():
    assert chunks(5, 3) == [range(0, 2), range(2, 3), range(3, 5)]
    assert chunks(2, 4) == [range(0, 1), range(1, 2)]
    assert chunks(32, 2) == [range(0, 16), range(16, 32)]


def test_running_batchnorm_with_threads_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="bn_mode=transductive"):
        ProtoNet(_net(None), bn_mode="running", task_threads=2)
    with pytest.raises(ConfigError, match="task_threads must be an integer >= 1"):
        MAML(_net(), task_threads=0)
    with pytest.raises(ConfigError, match="choose one"):
        MAML(_net(), batch_tasks=True, task_threads=2)
