"""The ``lightning-meta`` console command: ``train``, ``test``, ``predict``, ``fit`` and ``suggest``.

``train`` and ``test`` take the same Hydra overrides as ``python train.py`` and read the configs
in ``conf/`` (shipped inside the wheel), so they work from any directory after ``pip install``.
"""

from __future__ import annotations

import sys

from lightning_meta.cli.boundary import guarded
from lightning_meta.cli.quiet import quiet_third_party_warnings
from lightning_meta.configs import CONF_DIR

USAGE = """usage: lightning-meta COMMAND [ARGS...]

commands:
  train   [OVERRIDES...]   meta-train then test, e.g. `lightning-meta train model=maml data=omniglot`
  test    ckpt_path=PATH [OVERRIDES...]   evaluate a checkpoint on the fixed test episodes
  predict ckpt_path=PATH support=DIR query=DIR   classify the images in DIR after learning from
          support/CLASS/*.png (one sub-folder per class); prints `file<TAB>class<TAB>probability`
  fit OUT [ARGS...]        fit a hyperparameter mapping on the runs of an experience pool (--help)
  suggest [ARGS...]        propose hyperparameters for a task from a mapping (--help)

config groups (choose with GROUP=OPTION, e.g. data=miniimagenet; `+experiment=NAME` for presets):
{groups}
Hydra flags work too: --multirun, --cfg job, --help.
"""


def selectable_groups() -> dict[str, list[str]]:
    """The groups ``config.yaml`` selects (``GROUP=OPTION``) and ``experiment`` (``+experiment=NAME``), with their options.

    Only these are listed: other folders of ``conf/`` hold configs that other configs include (``hydra``, and
    ``space`` for ``fit.yaml`` and ``collect.yaml``), which would land at a top-level key ``train.py`` refuses."""
    import yaml

    defaults = yaml.safe_load((CONF_DIR / "config.yaml").read_text()).get("defaults", [])
    names = [next(iter(item)) for item in defaults if isinstance(item, dict)]
    groups = {}
    for name in [*(n for n in names if n != "hydra" and "/" not in n and " " not in n), "experiment"]:
        options = sorted(f.stem for f in (CONF_DIR / name).glob("*.yaml"))
        if options:
            groups[name] = options
    return dict(sorted(groups.items()))


def config_groups() -> str:
    """One line per selectable config group with its options."""
    groups = selectable_groups()
    width = max(map(len, groups))
    return "\n".join(f"  {name:<{width}}  {', '.join(options)}" for name, options in groups.items())


def _hydra_run(overrides: list[str]) -> None:
    import hydra

    from lightning_meta.cli.train import objective
    from lightning_meta.preflight import check_override_keys

    check_override_keys(overrides)
    sys.argv = ["lightning-meta", *overrides]
    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(objective)()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_third_party_warnings()
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE.format(groups=config_groups()))
        return
    guarded(f"lightning-meta {argv[0]}", lambda: _dispatch(argv[0], argv[1:]))


def _dispatch(command: str, rest: list[str]) -> None:
    """Runs one command; ``main`` puts it inside the error boundary (``boundary.py``)."""
    if command == "train":
        _hydra_run(rest)
    elif command == "test":
        if not any(a.startswith("ckpt_path=") for a in rest):
            sys.exit("lightning-meta test: give the checkpoint to evaluate, e.g. `lightning-meta test ckpt_path=logs/.../last.ckpt`.")
        _hydra_run(["train=false", "test=true", *rest])
    elif command == "predict":
        from lightning_meta.cli.predict import main as predict_main

        predict_main(rest)
    elif command == "fit":
        from lightning_meta.hpo.fit_command import main as fit_main

        fit_main(rest)
    elif command == "suggest":
        from lightning_meta.hpo.suggest import main as suggest_main

        suggest_main(rest)
    else:
        sys.exit(f"lightning-meta: unknown command '{command}'. Valid commands: train, test, predict, fit, suggest (see --help).")


if __name__ == "__main__":
    main()
