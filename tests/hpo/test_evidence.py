"""The do-no-harm rule: the user's values are kept unless recorded tasks like this one say a change pays."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lightning_meta.hpo.evidence import MAX_DISTANCE, weigh
from lightning_meta.hpo.mappings import BestOnAverage, ConditionalBestOnAverage
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.space import SearchSpace

SPACE = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
                               "weight_decay": {"type": "float", "low": 1e-6, "high": 0.1, "log": True}})
MLP = {"share_linear": 1.0, "share_attention": 0.0, "share_recurrent": 0.0, "share_conv": 0.0, "share_embedding": 0.0,
       "share_norm": 0.0, "pretrained": 0.0, "objective_regression": 0.0, "opt_sgd": 0.0, "opt_adaptive": 1.0,
       "log_n_params": 4.0, "log_n_samples": 3.0, "log_planned_steps": 2.5}
# fine-tuning a pretrained Transformer on a regression: unlike every recorded task in three ways
UNLIKE = {**MLP, "share_linear": 0.4, "share_attention": 0.45, "share_embedding": 0.15, "pretrained": 1.0,
          "objective_regression": 1.0}
BEST_LR = 1e-2


def _frame() -> pd.DataFrame:
    """Four MLP tasks whose score peaks at lr = BEST_LR (weight decay does not matter)."""
    rng = np.random.default_rng(0)
    rows = []
    for t in range(4):
        features = {**MLP, "log_n_params": 4.0 + 0.1 * t}
        for lr, wd in zip(10 ** rng.uniform(-4, 0, 24), 10 ** rng.uniform(-6, -1, 24)):
            rows.append({"task": f"mlp{t}", "objective": -abs(math.log10(lr / BEST_LR)), "status": "complete",
                         "hp_lr": lr, "hp_weight_decay": wd, **{f"f_{k}": v for k, v in features.items()}})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def mapping() -> Mapping:
    return ConditionalBestOnAverage().fit(_frame(), SPACE)


def _weigh(mapping: Mapping, features: dict, defaults: dict) -> tuple:
    proposals = mapping.suggest(features, k=3)
    return weigh(mapping, features, defaults, proposals, list(defaults))


def test_a_poor_default_on_a_task_like_the_recorded_ones_is_changed_towards_their_best(mapping):
    chosen, evidence = _weigh(mapping, MLP, {"lr": 1e-4, "weight_decay": 1e-4})
    assert evidence.changed and chosen is not None
    assert abs(math.log10(chosen["lr"] / BEST_LR)) < 0.75
    assert evidence.gain - evidence.gain_std >= 0.05
    assert len(evidence.neighbours) >= 2 and evidence.distance < 0.2


def test_a_default_already_at_the_recorded_best_is_kept(mapping):
    chosen, evidence = _weigh(mapping, MLP, {"lr": BEST_LR, "weight_decay": 1e-4})
    assert chosen is None and not evidence.changed
    assert "no gain over your values above the margin" in evidence.reason


def test_a_task_unlike_every_recorded_one_keeps_its_values_and_names_the_nearest(mapping):
    chosen, evidence = _weigh(mapping, UNLIKE, {"lr": 1e-4, "weight_decay": 1e-4})
    assert chosen is None and evidence.neighbours == []
    assert "no recorded task resembles this one (nearest: mlp" in evidence.reason
    assert evidence.distance > MAX_DISTANCE and evidence.unlike


def test_only_the_hyperparameters_that_pay_are_changed(mapping):
    chosen, _ = _weigh(mapping, MLP, {"lr": 1e-4, "weight_decay": 1e-3})
    assert set(chosen) == {"lr"}  # weight decay does not move the score: the user's value stays


def test_a_mapping_without_a_task_index_keeps_the_users_values(mapping):
    old = BestOnAverage().fit(_frame(), SPACE)
    old.index = None  # as loaded from a file written before the index existed
    chosen, evidence = _weigh(old, MLP, {"lr": 1e-4, "weight_decay": 1e-4})
    assert chosen is None and "re-fit it" in evidence.reason


def test_a_feature_the_recorded_tasks_lack_counts_as_unlike(mapping):
    lacking = ConditionalBestOnAverage().fit(_frame().drop(columns=["f_share_attention"]), SPACE)
    near = lacking.index.distances(MLP)
    assert near.min() >= 1.0  # the new task states share_attention, no recorded task does


def _two_families(names: list[str]) -> Mapping:
    """Five MLP tasks of one kind: the first four peak at lr 0.1, the fifth at lr 1e-3; ``names`` name them."""
    rng = np.random.default_rng(1)
    rows = []
    for t, name in enumerate(names):
        best = 1e-1 if t < 4 else 1e-3
        for lr, wd in zip(10 ** rng.uniform(-4, 0, 24), 10 ** rng.uniform(-6, -1, 24)):
            rows.append({"task": name, "objective": -abs(math.log10(lr / best)), "status": "complete",
                         "hp_lr": lr, "hp_weight_decay": wd, **{f"f_{k}": v for k, v in MLP.items()}})
    return ConditionalBestOnAverage().fit(pd.DataFrame(rows), SPACE)


def test_tasks_of_one_family_count_as_one_source_of_evidence():
    defaults = {"lr": 1e-2, "weight_decay": 1e-4}
    # five families, four of which agree that a higher lr pays: a change
    chosen, separate = _weigh(_two_families(["a", "b", "c", "d", "e"]), MLP, defaults)
    assert separate.changed and chosen["lr"] > 2e-2
    # the four that agree are one model's runs on four data sets: one family against another, no change
    chosen, grouped = _weigh(_two_families(["m/a", "m/b", "m/c", "m/d", "n/e"]), MLP, defaults)
    assert chosen is None and not grouped.changed
    assert "5 similar recorded tasks of 2 families" in grouped.reason


def test_the_tasks_of_the_new_tasks_own_family_count_one_by_one():
    names, defaults = ["a", "b", "c", "d", "e"], {"lr": 1e-2, "weight_decay": 1e-4}
    _, separate = _weigh(_two_families(names), MLP, defaults)
    mapping = _two_families([f"m/{n}" for n in names])
    proposals = mapping.suggest(MLP, k=3)
    _, own = weigh(mapping, MLP, defaults, proposals, list(defaults), family="m")
    assert (own.changed, own.gain, own.gain_std) == (separate.changed, separate.gain, separate.gain_std)
    assert "of 1 family" in own.reason
    # the same runs as another module's: one family, which cannot tell whether its values carry over
    chosen, other = weigh(mapping, MLP, defaults, proposals, list(defaults), family="n")
    assert chosen is None and "all runs of one other family, 'm'" in other.reason and other.unlike
