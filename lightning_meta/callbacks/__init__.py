"""Lightning callbacks of lightning_meta that are not the hyperparameter mapping (``lightning_meta.hpo``)."""

from lightning_meta.callbacks.ema import EMAWeights

__all__ = ["EMAWeights"]
