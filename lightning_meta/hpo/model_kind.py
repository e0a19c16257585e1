"""What kind of network a module trains, read from its layers and weights without a training step.

Good learning rates differ between a Transformer trained from scratch, a recurrent model, a small
classifier and a pretrained network being fine-tuned, so the mapping must see which of these it faces.

``layer_shares`` splits the parameters by layer type. ``pretrained_share`` tells weights loaded before
``fit`` from weights at their initialisation. The statistic, and why:

* A normalisation layer's affine parameters start at exactly 1 and 0 under every initialisation in common
  use, and any gradient step moves them; a BatchNorm that has seen a batch counts it in
  ``num_batches_tracked``. So where a model has normalisation layers, the share of them that moved (or
  tracked batches) is the answer, whatever custom initialisation the other layers used.
* Without normalisation layers, each layer that has ``reset_parameters`` (Linear, Conv, RNN, Embedding,
  attention) is compared with a fresh draw from its own initialiser: a weight whose standard deviation
  differs by more than ``SPREAD_TOLERANCE`` from the fresh draw's, or whose kurtosis (uniform 1.8, normal 3)
  differs by more than ``KURTOSIS_TOLERANCE``, has moved. Tensors of fewer than ``MIN_ELEMENTS`` values are
  too small for either statistic and are left out, and the kurtosis is read only from ``KURTOSIS_ELEMENTS``
  values on: its sampling error is about ``sqrt(24 / n)``, so below that the tolerance is within noise.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

SHARE_KINDS = ("attention", "recurrent", "conv", "linear", "embedding", "norm")
SPREAD_TOLERANCE = 0.2
KURTOSIS_TOLERANCE = 0.6
MIN_ELEMENTS = 64
KURTOSIS_ELEMENTS = 2048

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, *(
    (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))
_KINDS: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("recurrent", (nn.RNNBase, nn.RNNCellBase)),
    ("conv", (nn.modules.conv._ConvNd,)),
    ("embedding", (nn.Embedding, nn.EmbeddingBag)),
    ("norm", _NORMS),
    ("linear", (nn.Linear, nn.Bilinear)),
)


def _is_attention(module: nn.Module) -> bool:
    """PyTorch's ``MultiheadAttention`` and any module named like one (``BertSelfAttention``, ``Attention``)."""
    return isinstance(module, nn.MultiheadAttention) or "attention" in type(module).__name__.lower()


def layer_shares(model: nn.Module) -> dict[str, float]:
    """``share_<kind>``: the fraction of the model's parameters held by each layer kind of ``SHARE_KINDS``.

    Everything inside an attention block (its projections included) counts as attention; the rest goes by
    the layer that holds the parameter. Parameters of other layers count in the total only.
    """
    kind_of: dict[int, str] = {}
    for module in model.modules():
        if _is_attention(module):
            for p in module.parameters():
                kind_of.setdefault(id(p), "attention")
    for module in model.modules():
        for kind, types in _KINDS:
            if isinstance(module, types):
                for p in module.parameters(recurse=False):
                    kind_of.setdefault(id(p), kind)
                break
    sizes = {id(p): p.numel() for p in model.parameters()}
    total = max(sum(sizes.values()), 1)
    return {f"share_{kind}": sum(n for i, n in sizes.items() if kind_of.get(i) == kind) / total for kind in SHARE_KINDS}


def pretrained_share(model: nn.Module) -> float:
    """0 for weights at their initialisation, 1 for weights that were trained or loaded (module docstring)."""
    norms = [m for m in model.modules() if isinstance(m, _NORMS)]
    moved = [_norm_moved(m) for m in norms]
    known = [m for m in moved if m is not None]
    if known:
        return sum(known) / len(known)
    counted = moved_count = 0
    for module in model.modules():
        if not callable(getattr(module, "reset_parameters", None)) or isinstance(module, _NORMS):
            continue
        own = {name: p for name, p in module.named_parameters(recurse=False) if p.numel() >= MIN_ELEMENTS and p.dim() > 1}
        if not own:
            continue
        fresh = _fresh_copy(module)
        if fresh is None:
            continue
        for name, p in own.items():
            counted += p.numel()
            moved_count += p.numel() * _weight_moved(p.detach(), getattr(fresh, name).detach())
    return moved_count / counted if counted else 0.0


def _norm_moved(module: nn.Module) -> bool | None:
    """Whether a normalisation layer left its start (None: it has no affine parameters nor batch counter)."""
    tracked = getattr(module, "num_batches_tracked", None)
    if isinstance(tracked, Tensor) and int(tracked) > 0:
        return True
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    if not isinstance(weight, Tensor) and not isinstance(bias, Tensor):
        return None
    with torch.no_grad():
        at_one = weight is None or bool(torch.all(weight == 1))
        at_zero = bias is None or bool(torch.all(bias == 0))
    return not (at_one and at_zero)


def _fresh_copy(module: nn.Module) -> nn.Module | None:
    """A copy of the layer re-initialised by its own ``reset_parameters``, seeded (None when that fails)."""
    fresh = copy.deepcopy(module).cpu()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        try:
            fresh.reset_parameters()
        except Exception:  # a user's reset_parameters may need state we do not have: no verdict for this layer
            return None
    return fresh


def _weight_moved(weight: Tensor, fresh: Tensor) -> bool:
    spread, fresh_spread = float(weight.float().std()), float(fresh.float().std())
    if fresh_spread <= 0 or not math.isfinite(spread):
        return spread > 0
    if abs(spread / fresh_spread - 1.0) > SPREAD_TOLERANCE:
        return True
    return weight.numel() >= KURTOSIS_ELEMENTS and abs(_kurtosis(weight) - _kurtosis(fresh)) > KURTOSIS_TOLERANCE


def _kurtosis(values: Tensor) -> float:
    centred = values.float().flatten() - values.float().mean()
    variance = float(centred.pow(2).mean())
    return float(centred.pow(4).mean()) / variance**2 if variance > 0 else 0.0
