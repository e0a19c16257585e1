"""lightning_meta: meta-learning for PyTorch Lightning, and a learned hyperparameter mapping for any Trainer."""

__version__ = "0.1.0"
