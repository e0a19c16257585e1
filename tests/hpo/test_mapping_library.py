"""The mappings as a library on someone else's runs: the objective's direction, which candidates were picked, the
input forms, and the warnings a grouping or a feature name deserves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.mappings import BestOnAverage, ConditionalBestOnAverage
from lightning_meta.hpo.space import SearchSpace

SPACE = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}})


def _losses() -> pd.DataFrame:
    """Three tasks whose loss is lowest at lr = 1e-3 and highest at lr = 1."""
    lrs = np.logspace(-4, 0, 9)
    return pd.DataFrame([{"task": f"t{t}", "objective": abs(np.log10(lr) + 3) + 0.1 * t, "hp_lr": lr, "f_size": float(t),
                          "f_kind": 1.0} for t in range(3) for lr in lrs])


def test_a_loss_is_minimised_when_the_direction_says_so():
    frame = _losses()
    assert BestOnAverage().fit(frame, SPACE, direction="minimize").suggest({}, k=1)[0]["lr"] == pytest.approx(1e-3)
    assert BestOnAverage().fit(frame, SPACE).suggest({}, k=1)[0]["lr"] == pytest.approx(1.0)  # read as a score
    with pytest.raises(ConfigError, match="direction='lower' is invalid"):
        BestOnAverage().fit(frame, SPACE, direction="lower")


def test_rank_says_which_candidates_suggest_picked_and_predict_takes_the_same_forms():
    mapping = BestOnAverage().fit(_losses(), SPACE, direction="minimize")
    rows = pd.DataFrame({"hp_lr": [0.5, 1e-3, 2e-2, 1e-4], "other": ["a", "b", "c", "d"]})
    order = mapping.rank({}, rows, k=2)
    assert order.tolist()[0] == 1
    assert [c["lr"] for c in mapping.suggest({}, k=2, candidates=rows)] == pytest.approx(rows["hp_lr"].iloc[order].tolist())
    as_dicts = mapping.predict({}, [{"lr": v} for v in rows["hp_lr"]])[0]
    as_frame = mapping.predict({}, rows)[0]
    assert as_dicts == pytest.approx(as_frame)
    observed = pd.DataFrame({"task": ["new"], "objective": [0.2], "hp_lr": [1e-3]})
    assert 1 not in mapping.rank({}, rows, observed=observed, direction="minimize").tolist()  # already run


def test_a_bad_candidate_gets_one_line_naming_it():
    mapping = BestOnAverage().fit(_losses(), SPACE)
    with pytest.raises(ConfigError, match="lr.*=5.0 is outside"):
        mapping.predict({}, [{"lr": 1e-3}, {"lr": 5.0}])
    with pytest.raises(ConfigError, match="unknown hyperparameters \\['momentum'\\]"):
        mapping.rank({}, [{"lr": 1e-3, "momentum": 0.9}])


def test_a_grouping_on_a_feature_the_runs_lack_warns_and_a_text_feature_is_refused():
    with pytest.warns(UserWarning, match="record no feature \\['opt_sgdd'\\]"):
        ConditionalBestOnAverage(by=["opt_sgdd"]).fit(_losses(), SPACE)
    with pytest.raises(ConfigError, match="\\['domain'\\] are text features"):
        ConditionalBestOnAverage(by=["domain"]).fit(_losses().assign(f_domain="vision"), SPACE)
    mapping = ConditionalBestOnAverage(by=["kind"]).fit(_losses(), SPACE)
    with pytest.warns(UserWarning, match="lacks the grouping features \\['kind'\\]"):
        mapping.suggest({"size": 1.0}, k=1)


def test_a_misspelt_feature_name_is_a_warning_not_silence():
    mapping = ConditionalBestOnAverage(by=["kind"]).fit(_losses(), SPACE)
    with pytest.warns(UserWarning, match="\\['sise'\\] are unknown to the mapping"):
        mapping.predict({"kind": 1.0, "sise": 2.0}, [{"lr": 1e-3}])
