"""One error boundary for every console entry point: ``train.py``, each ``lightning-meta`` command, the pool harness.

A user's mistake is a project error (``LightningMetaError``, raised directly or wrapped by Hydra's ``instantiate``)
or Hydra's refusal of an override: it prints one line and exits 1. Anything else is a bug: it says so, prints the traceback and exits 2, so the two
never look alike. ``HYDRA_FULL_ERROR=1`` lets every exception through with its whole traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn, TypeVar

from lightning_meta.errors import LightningMetaError

T = TypeVar("T")
BUG = "{command}: unexpected {kind}: this is a bug in lightning_meta; please report it with the traceback above."


def project_error(error: BaseException | None) -> LightningMetaError | None:
    """Our error, raised directly or wrapped by ``hydra.utils.instantiate`` (InstantiationException)."""
    while error is not None and not isinstance(error, LightningMetaError):
        error = error.__cause__ or error.__context__
    return error


def guarded(command: str, run: Callable[[], T]) -> T:
    """``run()`` inside the boundary: exit 1 with one line for a project error, exit 2 with the traceback for a bug."""
    try:
        return run()
    except Exception as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        end(command, error)


def users_mistake(error: BaseException) -> str | None:
    """The one line for a user's mistake: our errors, and Hydra's and OmegaConf's refusals of an override or config."""
    ours = project_error(error)
    if ours is not None:
        return str(ours).strip()
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, (HydraException, OmegaConfBaseException)):
        return _misspelt_key(error) or " ".join(str(error).split())
    return None


def _misspelt_key(error: BaseException) -> str | None:
    """For an override of a key the config does not have (``trainer.max_epoch=1``): the line naming the nearest key
    it does have, instead of Hydra's advice to append the misspelt one with ``+``."""
    from lightning_meta.preflight import misspelt_key

    found = misspelt_key(error)
    return str(found) if found else None


def end(command: str, error: BaseException) -> NoReturn:
    """Ends the process for ``error``: its one line and exit 1 if it is a user's mistake, the traceback and exit 2 if
    not."""
    line = users_mistake(error)
    if line is not None:
        print(f"{command}: {line}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    traceback.print_exception(error, file=sys.stderr)
    print(BUG.format(command=command, kind=type(error).__name__), file=sys.stderr, flush=True)
    raise SystemExit(2) from None
