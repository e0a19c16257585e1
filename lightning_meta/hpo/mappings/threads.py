"""Bounded thread pools for the small fits and predictions of the mappings.

The models of a mapping are small (a few thousand rows, MLPs of 64 units), so extra threads buy
little and, on a loaded machine, cost a lot: with the default OpenMP pools one GBM fit on a busy
2-core machine took 111 s against 3.9 s single-threaded, and a MetaSurrogate fit ran past
7.5 min against 48 s. Every fit and prediction of a mapping runs inside ``bounded_threads``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

from lightning_meta.errors import ConfigError


@contextmanager
def bounded_threads(n: int) -> Iterator[None]:
    """At most ``n`` threads in the OpenMP/BLAS pools and in torch's intra-op pool; the previous counts come back on exit.

    torch's pool is bounded only where torch is already loaded: a mapping that does not use it never imports it.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"threads={n!r} is invalid: give a positive integer (1 suits small fits best).")
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n):
        if torch is not None:
            torch.set_num_threads(min(n, previous))
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(previous)
