"""The configuration, fuzzed: any leaf of the real Hydra config (every model x data option), given a value of the wrong
type, out of range, empty or absurd, either stops in a project error before training (the one-line, exit-1 path of the
console boundary) or builds a run that takes its first step. A traceback of any other kind is a failure.

Each example sets one leaf of a composed config and calls ``cli.train.build``, which ``train.py`` runs up to the first
step (checks, data, learner, Trainer). The examples that build run one real step only for a fixed sample
(``STEPPED``), so the file stays well under a minute on 2 CPU cores. ``benchmarks/fuzz/config_fuzz.py`` runs 5,000.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf, open_dict

from lightning_meta.cli.boundary import users_mistake
from lightning_meta.cli.train import build
from tests.conftest import REPO

MODELS = ["maml", "fomaml", "reptile", "protonet"]
DATA = ["omniglot", "omniglot_lake", "miniimagenet", "cifarfs", "fc100", "folder"]
SMALL = ["data.train_episodes=1", "data.meta_batch_size=1", "data.val_episodes=1", "data.test_episodes=2",
         "data.eval_batch_size=2", "data.num_workers=0", "trainer.max_steps=1", "trainer.max_epochs=1",
         "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "trainer.num_sanity_val_steps=0",
         "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "image.hidden=4", "callbacks=none",
         "logger=csv"]
SKIPPED = ("paths.", "hydra.")  # where files go: a value there writes outside the test's folder, checked elsewhere
SKIPPED_LEAVES = {"data.root", "data.dataset_kwargs.download", "trainer.default_root_dir", "logger.csv.save_dir"}
BAD_VALUES = st.one_of(
    st.sampled_from([None, "", "abc", "ünïcødé ∆", [], {}, [1, 2], {"a": 1}, True, False, 0, -1, -0.0, 1e308, -1e308,
                     float("nan"), float("inf"), 2**63, 0.5, -5, "1e308", "-1", "none", "null"]),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
STEPPED = 4  # examples that build and then run one real step


def compose_all(out: Path) -> dict[tuple[str, str], DictConfig]:
    """The composed config of every model x data option, small, writing under ``out``."""
    configs = {}
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        for model in MODELS:
            for data in DATA:
                extra = [f"data.root={out / 'folder'}"] if data == "folder" else []
                cfg = compose(config_name="config", overrides=[f"model={model}", f"data={data}", *SMALL, *extra])
                with open_dict(cfg):
                    cfg.paths.output_dir = str(out)
                    cfg.paths.root_dir = str(out)
                configs[model, data] = cfg
    return configs


def leaves(cfg: DictConfig) -> list[str]:
    """Every leaf key of ``cfg`` (dotted), but Hydra's own keys and those that place files."""
    found: list[str] = []

    def walk(node, prefix: str) -> None:
        items = node.items_ex(resolve=False) if isinstance(node, DictConfig) else enumerate(node)
        for key, _ in items:
            path = f"{prefix}{key}"
            child = node._get_node(key)
            if str(key).startswith("_"):
                continue
            if OmegaConf.is_dict(child) or OmegaConf.is_list(child):
                if not child._is_none():
                    walk(child, path + ".")
                    continue
            if not path.startswith(SKIPPED) and path not in SKIPPED_LEAVES:
                found.append(path)

    walk(cfg, "")
    return found


def outcome(cfg: DictConfig, key: str, value, step: bool) -> str | None:
    """None if the example ends well (a project error's one line, or a build, stepped if ``step``), else what
    went wrong: the type and first line of the error the boundary would call a bug."""
    cfg = cfg.copy()
    with open_dict(cfg):
        OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    try:
        built = build(cfg, overrides=[])
        if step:
            built.trainer.fit(built.model, datamodule=built.datamodule)
    except Exception as error:  # noqa: BLE001 -- the point: what kind it is
        if users_mistake(error) is None:
            return f"{key}={value!r}: {type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:200]}"
    return None


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    from tests.cli.test_follow_the_fix import _folder

    out = tmp_path_factory.mktemp("fuzz")
    _folder(out / "folder", 4)
    return compose_all(out)


EXAMPLES = int(os.environ.get("CONFIG_FUZZ_EXAMPLES", "200"))


def test_any_bad_leaf_value_ends_in_a_project_error_or_a_run(configs):
    failures: list[str] = []
    stepped = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def example(data):
        pair = data.draw(st.sampled_from(sorted(configs)), label="model x data")
        key = data.draw(st.sampled_from(leaves(configs[pair])), label="key")
        value = data.draw(BAD_VALUES, label="value")
        step = len(stepped) < STEPPED and pair[1] == "omniglot"
        if step:
            stepped.append(step)
        failure = outcome(configs[pair], key, value, step)
        if failure:
            failures.append(f"{pair}: {failure}")

    example()
    assert not failures, "\n".join(failures)


def test_the_fuzzer_reaches_every_group(configs):
    keys = {k for cfg in configs.values() for k in leaves(cfg)}
    for group in ("seed", "train", "ckpt_path", "data.train.ways", "data.dataset_kwargs.image_size", "model.lr",
                  "model.backbone.hidden", "trainer.max_steps", "trainer.accelerator", "image.size"):
        assert group in keys
