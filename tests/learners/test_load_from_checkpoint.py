"""``load_from_checkpoint`` of a learner whose backbone was passed as an ``nn.Module`` (the Python API)."""

import lightning as L
import pytest
import torch
from torch import nn

from lightning_meta.errors import ConfigError
from lightning_meta.learners import MAML, ProtoNet, Reptile
from lightning_meta.nets import Conv4, ResNet12


def _save(model: L.LightningModule, path) -> None:
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)


def _episode():
    g = torch.Generator().manual_seed(0)
    return torch.randn(5, 1, 28, 28, generator=g), torch.arange(5), torch.randn(10, 1, 28, 28, generator=g)


@pytest.mark.parametrize("cls", [MAML, Reptile, ProtoNet])
def test_a_shipped_backbone_module_is_rebuilt_from_the_checkpoint_alone(tmp_path, cls):
    torch.manual_seed(0)
    out = None if cls is ProtoNet else 5
    model = cls(Conv4(in_channels=1, out_features=out, hidden=8), lr=0.01)
    _save(model, tmp_path / "m.ckpt")
    loaded = cls.load_from_checkpoint(tmp_path / "m.ckpt", map_location="cpu")
    assert isinstance(loaded.backbone, Conv4) and loaded.hparams.backbone["hidden"] == 8
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    if cls is not Reptile:  # Reptile's 50 evaluation steps are slow for a unit test
        model.eval(), loaded.eval()
        assert torch.allclose(model.adapt_and_predict(*_episode()), loaded.adapt_and_predict(*_episode()))


def test_resnet12_records_its_arguments_too(tmp_path):
    model = ProtoNet(ResNet12(in_channels=1, channels=(4, 4, 4, 4)))
    _save(model, tmp_path / "r.ckpt")
    assert ProtoNet.load_from_checkpoint(tmp_path / "r.ckpt").backbone.init_args["channels"] == [4, 4, 4, 4]


class MyNet(nn.Module):
    """A user's backbone: it keeps no record of its constructor arguments."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, width), nn.ReLU(), nn.Linear(width, 5))

    def forward(self, x):
        return self.net(x)


def test_any_other_module_is_passed_again_and_the_error_says_so(tmp_path):
    torch.manual_seed(0)
    model = MAML(MyNet(16), inner_lr=0.1)
    _save(model, tmp_path / "u.ckpt")
    with pytest.raises(ConfigError, match=r"tests\.learners\.test_load_from_checkpoint\.MyNet.*backbone=MyNet"):
        MAML.load_from_checkpoint(tmp_path / "u.ckpt")
    loaded = MAML.load_from_checkpoint(tmp_path / "u.ckpt", backbone=MyNet(16))
    assert loaded.hparams.inner_lr == 0.1
    assert torch.equal(loaded.backbone.net[1].weight, model.backbone.net[1].weight)


def test_a_checkpoint_without_any_backbone_entry_asks_for_it(tmp_path):
    # checkpoints written before backbones were recorded have no 'backbone' hyperparameter at all
    model = MAML(MyNet(4))
    _save(model, tmp_path / "old.ckpt")
    ckpt = torch.load(tmp_path / "old.ckpt", weights_only=False)
    del ckpt["hyper_parameters"]["backbone"]
    torch.save(ckpt, tmp_path / "old.ckpt")
    with pytest.raises(ConfigError, match=r"load_from_checkpoint\(path, backbone=MyNet"):
        MAML.load_from_checkpoint(tmp_path / "old.ckpt")
