"""``adapt_and_predict`` refuses a support set it cannot learn from, in one line, instead of NaN or silent logits."""

import pytest
import torch

from lightning_meta.data.preprocessing import describe
from lightning_meta.errors import DataError
from lightning_meta.learners import MAML, ProtoNet, Reptile
from lightning_meta.nets import Conv4


def _learner(name: str):
    torch.manual_seed(0)
    if name == "protonet":
        return ProtoNet(Conv4(1, None, hidden=8))
    net = Conv4(1, 5, hidden=8)
    return MAML(net, inner_steps_eval=1) if name == "maml" else Reptile(net, inner_steps_eval=1)


def _task(labels, size: int = 28, queries: int = 4):
    g = torch.Generator().manual_seed(0)
    labels = torch.as_tensor(labels)
    return torch.rand(len(labels), 1, size, size, generator=g), labels, torch.rand(queries, 1, size, size, generator=g)


def _predict(learner, *task):
    learner.eval()
    with torch.enable_grad():
        return learner.adapt_and_predict(*task)


LEARNERS = ["protonet", "maml", "reptile"]


@pytest.mark.parametrize("name", LEARNERS)
@pytest.mark.parametrize("labels, shown", [
    ([1, 2, 3, 4, 5], r"\[1, 2, 3, 4, 5\]"),  # numbered from 1
    ([0, 0, 2, 3, 4], r"\[0, 2, 3, 4\]"),  # class 1 missing: ProtoNet's prototype would be 0/0
    ([0, 1, 2, 3, -1], r"\[-1, 0, 1, 2, 3\]"),
])
def test_labels_other_than_0_to_n_minus_1_are_refused(name, labels, shown):
    with pytest.raises(DataError, match=rf"Support labels must be the class indices 0\.\.N-1, each used at least once, "
                                        rf"got the classes {shown}\. Fix: number the task's N classes 0\.\.N-1"):
        _predict(_learner(name), *_task(labels))


def test_the_nan_logits_the_check_prevents():
    # what ProtoNet computes for a support set without class 1 when nothing checks it
    learner = _learner("protonet")
    sx, sy, qx = _task([0, 0, 2, 3, 4])
    with torch.no_grad():
        z = learner.backbone(torch.cat([sx, qx]))
        assert learner.logits(z[:5], sy, z[5:]).isnan().any()


@pytest.mark.parametrize("name", ["maml", "reptile"])
@pytest.mark.parametrize("ways", [3, 6])
def test_a_fixed_width_head_needs_as_many_classes(name, ways):
    with pytest.raises(DataError, match=rf"adapts a 5-way head but the support set has {ways} classes\. Fix: give "
                                        rf"support sets of exactly 5 classes"):
        _predict(_learner(name), *_task(list(range(ways))))


@pytest.mark.parametrize("name", LEARNERS)
def test_labels_that_are_not_one_int64_per_image_are_refused(name):
    sx, sy, qx = _task([0, 1, 2, 3, 4])
    with pytest.raises(DataError, match=r"one int64 class index per support image, got torch\.float32 of shape \(5,\)"):
        _predict(_learner(name), sx, sy.float(), qx)
    with pytest.raises(DataError, match=r"got torch\.int64 of shape \(4,\) for 5 images"):
        _predict(_learner(name), sx, sy[:4], qx)


@pytest.mark.parametrize("name", LEARNERS)
def test_images_of_another_shape_than_the_learner_takes_are_refused(name):
    learner = _learner(name)
    sx, sy, qx = _task([0, 1, 2, 3, 4])
    with pytest.raises(DataError, match=r"Support inputs \(5, 1, 28, 28\) and query inputs \(4, 1, 14, 14\) must be"):
        _predict(learner, sx, sy, qx[:, :, :14, :14])
    learner.preprocessing = describe(28, 1, "ink")  # as training or a checkpoint records it
    with pytest.raises(DataError, match=r"was trained on 1x28x28 images but the task's are 1x32x32\. Fix: prepare"):
        _predict(learner, *_task([0, 1, 2, 3, 4], size=32))
    assert _predict(learner, sx, sy, qx).shape == (4, 5)  # the shape it was trained on
