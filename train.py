"""Meta-train and test a learner: ``python train.py model=maml data=omniglot [overrides]``.

See ``conf/`` for the config groups and ``README.md`` for examples (multirun, experiments, DDP).
"""

import hydra
from omegaconf import DictConfig

from lightning_meta.cli.train import objective


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return objective(cfg)  # the value Hydra sweepers (e.g. Optuna) optimise


if __name__ == "__main__":
    main()
