"""Does a Lake checkpoint trained on distorted images lose accuracy through its BatchNorm statistics?

``EMAWeights`` recomputes BatchNorm's running statistics on training batches, which ``augmentation=affine``
distorts, while the test images are not distorted. This tests the checkpoint on Lake's protocol twice, on the same
fixed episodes: with its statistics as saved, and recomputed on un-augmented training episodes of the preset.

    python benchmarks/lake/clean_batchnorm.py logs/train/runs/<date>/checkpoints/last.ckpt --batches 200
"""

from __future__ import annotations

import argparse
import copy
import types
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from lightning_meta.callbacks.ema import recompute_batchnorm
from lightning_meta.cli.train import build

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ckpt_path")
    parser.add_argument("--batches", type=int, default=200, help="un-augmented training batches for the statistics")
    parser.add_argument("--episodes", type=int, default=4000, help="Lake-protocol test episodes")
    args = parser.parse_args()
    overrides = ["+experiment=protonet_omniglot_lake", "train=false", f"ckpt_path={args.ckpt_path}",
                 "data.test.queries=1", "data.test.drawers=lake", f"data.test_episodes={args.episodes}",
                 "model.test_shift=0"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "hydra.run.dir=."], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.callbacks, cfg.logger = None, None  # no checkpoints, logs or progress bars: two tests and two lines
        cfg.trainer.enable_progress_bar = False
    built = build(cfg, overrides)
    saved = built.trainer.test(copy.deepcopy(built.model), datamodule=built.datamodule, verbose=False)[0]
    built.datamodule.setup("fit")
    recompute_batchnorm(built.model, types.SimpleNamespace(datamodule=built.datamodule), args.batches)
    clean = built.trainer.test(built.model, datamodule=built.datamodule, verbose=False)[0]
    for label, result in (("statistics as saved", saved), (f"recomputed on {args.batches} un-augmented batches", clean)):
        print(f"{label}: {100 * result['test_acc']:.2f} ± {100 * result['test_acc_ci95']:.2f} % "
              f"({int(result['test_episodes'])} Lake-protocol episodes)")


if __name__ == "__main__":
    main()
