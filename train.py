"""Meta-train and test a learner: ``python train.py model=maml data=omniglot [overrides]``.

See ``conf/`` for the config groups and ``README.md`` for examples (multirun, experiments, DDP).
"""

import hydra
from omegaconf import DictConfig

from lightning_meta.cli.boundary import guarded
from lightning_meta.cli.train import objective
from lightning_meta.preflight import check_override_keys


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return objective(cfg)  # the value Hydra sweepers (e.g. Optuna) optimise


if __name__ == "__main__":
    guarded("Error", check_override_keys)  # a misspelt key: one line naming the nearest one (Hydra's has no hint)
    main()
