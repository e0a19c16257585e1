"""Task meta-features: what the mapping knows about a new task before choosing its hyperparameters.

``task_features`` reads cheap facts that already exist (parameter count, class count, input shape,
data set size, batch size, the optimizer family ``configure_optimizers`` builds); it never builds a
dataloader or takes a step. A datamodule may state its own facts through the
protocol ``meta_features() -> dict[str, float]``, which overrides what is read from attributes.
``probe_features`` spends a few forward/backward passes on a deep copy of the model: initial loss,
gradient norm and the loss drop after one SGD step at a few learning rates (how the loss surface
looks from the starting point). Both are deterministic, so every DDP rank computes the same values.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.model_kind import layer_shares, pretrained_share
from lightning_meta.hpo.run_facts import objective_features, trainer_features

LossFn = Callable[[nn.Module, Any], Tensor]
"""``loss_fn(model, batch)`` returns the scalar training loss of ``model`` on ``batch``."""

_DATASET_ATTRS = ("train_dataset", "dataset_train", "train_set", "dataset")
_HPARAM_FACTS = {"num_classes": "n_classes", "n_classes": "n_classes", "ways": "ways", "shots": "shots",
                 "n_way": "ways", "k_shot": "shots"}
_DIVERGED_DROP = -10.0  # relative loss drop reported when the step sends the loss to inf/nan


def _number(key: str, value: Any, source: str) -> float:
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source} gives {key}={value!r}: meta-features must be numbers.") from None
    if not math.isfinite(number):
        raise ConfigError(f"{source} gives {key}={value!r}: meta-features must be finite numbers.")
    return number


def _shape_facts(shape: Any) -> dict[str, float]:
    if isinstance(shape, int):
        return {"input_dim": float(shape)}
    shape = [int(s) for s in shape]
    if len(shape) == 3:
        return {"channels": float(shape[0]), "height": float(shape[1]), "width": float(shape[2])}
    if len(shape) == 2:
        return {"height": float(shape[0]), "width": float(shape[1])}
    return {"input_dim": float(math.prod(shape))}


def model_features(model: nn.Module) -> dict[str, float]:
    """Size and kind of the model: log10 of its trainable parameter count, how many layers hold them, the
    share of parameters per layer kind and whether its weights were trained before ``fit``
    (``model_kind.py``)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    count = sum(p.numel() for p in trainable)
    layers = sum(1 for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False)))
    return {"log_n_params": math.log10(max(count, 1)), "n_layers": float(layers), **layer_shares(model),
            "pretrained": pretrained_share(model)}


_ADAPTIVE = {"Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta", "SparseAdam"}


def _first_optimizer(returned: Any) -> torch.optim.Optimizer | None:
    """The first optimizer in any of the shapes ``configure_optimizers`` may return."""
    if isinstance(returned, torch.optim.Optimizer):
        return returned
    if isinstance(returned, Mapping):
        return _first_optimizer(returned.get("optimizer"))
    if isinstance(returned, (list, tuple)) and returned:
        return _first_optimizer(returned[0])
    return None


def optimizer_features(model: nn.Module) -> dict[str, float]:
    """How the optimizer the module builds steps, read from what ``configure_optimizers`` returns.

    The best learning rates of SGD and of Adam differ by orders of magnitude, so the mapping must
    know which kind the user's code builds. The features describe the mechanism rather than the
    class, so an optimizer the pool never saw still lands near its relatives: ``opt_sgd`` (plain
    or momentum SGD), ``opt_adaptive`` (per-weight step sizes: Adam, AdamW, RMSprop, ...),
    ``opt_decoupled_wd`` (AdamW's decoupled weight decay) and ``opt_momentum`` (SGD's momentum).
    Building an optimizer takes no step and changes no weight; a module that cannot build its
    optimizer before fit (e.g. it reads the trainer) gives nothing.
    """
    build = getattr(model, "configure_optimizers", None)
    if not callable(build) or getattr(type(model), "configure_optimizers", None) is pl.LightningModule.configure_optimizers:
        return {}  # Lightning's default only warns that it is not implemented
    try:
        optimizer = _first_optimizer(build())
    except Exception:  # the fit itself will report a broken configure_optimizers
        return {}
    if optimizer is None:
        return {}
    name = type(optimizer).__name__
    sgd = isinstance(optimizer, torch.optim.SGD)
    return {
        "opt_sgd": float(sgd),
        "opt_adaptive": float(name in _ADAPTIVE),
        "opt_decoupled_wd": float(name == "AdamW"),
        "opt_momentum": float(optimizer.param_groups[0].get("momentum", 0.0)) if sgd else 0.0,
    }


def _batch_size(datamodule: Any) -> float | None:
    value = getattr(datamodule, "batch_size", None)
    if value is None:
        value = (getattr(datamodule, "hparams", None) or {}).get("batch_size")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def datamodule_features(datamodule: Any) -> dict[str, float]:
    """Facts a datamodule exposes as attributes or hparams, then its ``meta_features()`` on top."""
    facts: dict[str, float] = {}
    hparams = getattr(datamodule, "hparams", None) or {}
    for key, name in _HPARAM_FACTS.items():
        if key in hparams and hparams[key] is not None:
            facts[name] = _number(key, hparams[key], "datamodule.hparams")
    for key, name in _HPARAM_FACTS.items():
        value = getattr(datamodule, key, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            facts[name] = float(value)
    shape = getattr(datamodule, "input_shape", None) or getattr(datamodule, "dims", None)
    if shape is not None:
        facts.update(_shape_facts(shape))
    for attr in _DATASET_ATTRS:
        dataset = getattr(datamodule, attr, None)
        if dataset is not None and hasattr(dataset, "__len__"):
            facts["n_samples"] = float(len(dataset))
            break
    batch_size = _batch_size(datamodule)
    if batch_size is not None:
        facts["batch_size"] = batch_size
    declared = getattr(datamodule, "meta_features", None)
    if callable(declared):
        stated = declared()
        if not isinstance(stated, Mapping):
            raise ConfigError(
                f"{type(datamodule).__name__}.meta_features() returned {type(stated).__name__}: return a dict name -> number."
            )
        facts.update({str(k): _number(k, v, f"{type(datamodule).__name__}.meta_features()") for k, v in stated.items()})
    if facts.get("n_samples", 0) > 0:
        facts["log_n_samples"] = math.log10(facts["n_samples"])
    return facts


def task_features(
    model: nn.Module, datamodule: Any = None, trainer: Any = None, monitor: str | None = None, mode: str | None = None
) -> dict[str, float]:
    """Cheap deterministic facts about the task: the model, the optimizer, the data and the run.

    Keys (when known): ``log_n_params``, ``n_layers``, ``share_<kind>`` per layer kind, ``pretrained``, the
    ``opt_*`` optimizer kind, ``n_samples``, ``log_n_samples``, ``batch_size``, ``n_classes``, ``channels``,
    ``height``, ``width`` or ``input_dim``, ``ways``, ``shots``, anything ``meta_features()`` adds, and with a
    ``trainer`` and ``monitor`` the run's facts (``run_facts.py``): ``objective_min``,
    ``objective_regression``, ``log_planned_steps``, ``planned_minutes``, ``grad_clip``, ``precision_bits``.
    """
    facts = {**model_features(model), **optimizer_features(model)}
    if datamodule is not None:
        facts.update(datamodule_features(datamodule))
    if monitor is not None and mode is not None:
        facts = {**objective_features(monitor, mode, datamodule), **facts}
    if trainer is not None:
        facts = {**trainer_features(trainer, facts.get("n_samples"), facts.get("batch_size")), **facts}
    return dict(sorted(facts.items()))


def _step_loss(model: nn.Module, batch: Any, index: int, loss_fn: LossFn | None) -> Tensor:
    if loss_fn is not None:
        loss = loss_fn(model, batch)
    else:
        with warnings.catch_warnings():  # self.log() warns without a Trainer; the probe logs nothing
            warnings.filterwarnings("ignore", message=".*self.log\\(\\)")
            loss = model.training_step(batch, index)
    if isinstance(loss, Mapping):
        loss = loss.get("loss")
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ConfigError(
            f"The probe needs a scalar loss, got {type(loss).__name__} from "
            f"{'loss_fn' if loss_fn is not None else type(model).__name__ + '.training_step'}: "
            "return a scalar tensor (or {'loss': tensor}), or pass loss_fn(model, batch)."
        )
    return loss.reshape(())


def _mean_loss(model: nn.Module, batches: Sequence[Any], loss_fn: LossFn | None, seed: int) -> Tensor:
    """Mean loss over the batches, with the same random draws (dropout, sampling) at every call."""
    torch.manual_seed(seed)
    return torch.stack([_step_loss(model, batch, i, loss_fn) for i, batch in enumerate(batches)]).mean()


def probe_features(
    model: nn.Module,
    batches: Iterable[Any],
    lrs: Sequence[float] = (1e-3, 1e-2, 1e-1),
    loss_fn: LossFn | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Loss-surface probes on a deep copy of ``model`` (the model itself is left untouched).

    Returns ``probe_loss`` (mean loss over ``batches``), ``probe_log_grad_norm`` (log10 of the norm
    of its gradient) and, per learning rate, ``probe_drop_lr<lr>``: the relative loss drop
    ``(L0 - L1) / |L0|`` after one SGD step, clipped to ``[-10, 1]`` (-10 when the step diverges).
    The loss is ``model.training_step(batch, i)`` unless ``loss_fn(model, batch)`` is given.
    Global random state is saved and restored, so the probe does not shift the run's seed.
    """
    batches = list(batches)
    if not batches:
        raise ConfigError("probe_features got no batches: pass one or a few training batches.")
    if not lrs or any(not (lr > 0) for lr in lrs):
        raise ConfigError(f"probe_features got learning rates {list(lrs)!r}: give positive values.")
    probe = copy.deepcopy(model)
    probe.train()
    params = [p for p in probe.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"{type(model).__name__} has no trainable parameters to probe.")
    devices = sorted({p.device.index for p in params if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices), torch.enable_grad():
        loss = _mean_loss(probe, batches, loss_fn, seed)
        initial = loss.item()
        if not math.isfinite(initial):
            raise ConfigError(
                f"{type(model).__name__} has a non-finite loss ({initial}) before training: check the model and data."
            )
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item()
        start = [p.detach().clone() for p in params]
        features = {"probe_loss": initial, "probe_log_grad_norm": math.log10(max(grad_norm, 1e-12))}
        for lr in lrs:
            with torch.no_grad():
                for p, p0, g in zip(params, start, grads):
                    p.copy_(p0 - lr * g)
            after = _mean_loss(probe, batches, loss_fn, seed).item()  # with grad: MAML's loss adapts inside
            drop = (initial - after) / max(abs(initial), 1e-12) if math.isfinite(after) else _DIVERGED_DROP
            features[f"probe_drop_lr{lr:g}"] = min(max(drop, _DIVERGED_DROP), 1.0)
    return features
