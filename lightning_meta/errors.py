"""Exceptions the library raises for bad input, so callers can catch them by kind.

Each message names the problem and the fix; they are raised before training starts.
"""


class LightningMetaError(Exception):
    """Base class of every error raised on purpose by lightning_meta."""


class DataError(LightningMetaError, ValueError):
    """A data set is missing, corrupted, or cannot serve the requested episodes."""


class ConfigError(LightningMetaError, ValueError):
    """A configuration value or combination is invalid."""


class PoolError(LightningMetaError, RuntimeError):
    """The experience pool database is unreachable, locked or corrupted."""


class TrainingDiverged(LightningMetaError, RuntimeError):
    """Meta-training met a non-finite loss and stopped: there is no trained model to test or report."""
