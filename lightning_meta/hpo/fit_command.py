"""``lightning-meta fit OUT``: fits a hyperparameter mapping on the runs of an experience pool and saves it.

The callback records every fit in a pool (``HyperparameterMapping(pool=...)``); this turns those runs into a
mapping file to pass as ``HyperparameterMapping(mapping=OUT)``. Settings in ``conf/fit.yaml``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lightning_meta.configs import CONF_DIR
from lightning_meta.errors import ConfigError, DataError
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.space import SearchSpace

DEFAULT_MAPPING = Path(__file__).resolve().parents[1] / "assets" / "mapping" / "default.mapping"

USAGE = f"""usage: lightning-meta fit OUT [OVERRIDES...]

Fits a mapping on the complete runs of the experience pool and saves it to OUT (the shipped default is
{DEFAULT_MAPPING.name}, fit this way on lightning_meta/assets/mapping/families.db).

overrides (conf/fit.yaml): pool=URL mapping=conditional_best_on_average|similar_tasks|best_on_average|
  nearest_task|gbm|meta_surrogate space.lr.high=0.1 ...
"""


def fit_mapping(pool_url: str, space: SearchSpace, out: str | Path, kind: str = "conditional_best_on_average") -> Mapping:
    """Fits mapping ``kind`` on the complete runs of the pool and saves it to ``out``."""
    from lightning_meta.hpo.mappings import MAPPINGS
    from lightning_meta.hpo.pool import ExperiencePool

    if kind not in MAPPINGS:
        raise ConfigError(f"mapping={kind!r} is unknown: use one of {', '.join(MAPPINGS)}.")
    with ExperiencePool(pool_url) as pool:
        frame = pool.frame()
    if frame.empty:
        raise DataError(f"The pool {pool_url} has no complete run: record runs with HyperparameterMapping(pool=...) first.")
    mapping = MAPPINGS[kind]().fit(frame, space)
    mapping.save(out)
    return mapping


def main(argv: list[str] | None = None) -> None:
    """Entry of ``lightning-meta fit`` (see ``USAGE``)."""
    from hydra import compose, initialize_config_dir

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return
    if not argv or "=" in argv[0] or argv[0].startswith("-"):
        sys.exit("lightning-meta fit: give the output file first, e.g. lightning-meta fit my.mapping pool=sqlite:///runs.db")
    out, overrides = Path(argv[0]), argv[1:]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="fit", overrides=overrides)
    started = time.perf_counter()
    mapping = fit_mapping(str(cfg.pool), SearchSpace.from_dict(cfg.space), out, str(cfg.mapping))
    print(f"fitted {type(mapping).__name__} on {cfg.pool} in {time.perf_counter() - started:.1f} s -> {out}")
