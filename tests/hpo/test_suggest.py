"""``propose`` (behind ``lightning-meta suggest``): proposals from drawn or given candidates, inside the space asked for."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.mappings import GBMSurrogate
from lightning_meta.hpo.space import SearchSpace
from lightning_meta.hpo.suggest import parse_features, propose
from tests.hpo.test_mappings import SPACE, meta_frame

NARROW = SearchSpace.from_dict({"x1": {"type": "float", "low": 0.6, "high": 0.7}, "x2": {"type": "float", "low": 0.0, "high": 1.0}})


@pytest.fixture(scope="module")
def mapping() -> GBMSurrogate:
    return GBMSurrogate(members=2, max_iter=50).fit(meta_frame(), SPACE)


def test_a_narrower_space_keeps_every_proposal_inside_it(mapping):
    configs, mean, std = propose(mapping, {"u": 0.2}, k=3, space=NARROW, candidates=300)
    assert len(configs) == 3 and all(0.6 <= c["x1"] <= 0.7 for c in configs)
    drawn_mean, _ = mapping.predict({"u": 0.2}, NARROW.sample(300, seed=0))
    np.testing.assert_allclose(mean, np.sort(drawn_mean)[::-1][:3])  # the best of the draws, best first
    assert std.shape == (3,)


def test_given_candidates_are_ranked_as_they_are_and_checked_against_the_space(mapping):
    mine = [{"x1": 0.65, "x2": v} for v in (0.1, 0.3, 0.5, 0.9)]
    configs, mean, _ = propose(mapping, {"u": 0.2}, k=4, candidates=mine)
    assert sorted(configs, key=lambda c: c["x2"]) == mine and list(mean) == sorted(mean, reverse=True)
    with pytest.raises(ConfigError, match=r"'x1'=0.9 is outside \[0.6, 0.7\]"):
        propose(mapping, {"u": 0.2}, space=NARROW, candidates=[{"x1": 0.9, "x2": 0.5}])


def test_feature_values_that_are_not_numbers_stay_text():
    assert parse_features(["n_classes=20", "freq=1D"]) == {"n_classes": 20.0, "freq": "1D"}
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_features(["freq"])
