"""The hindsight references of the regret benchmark on a score matrix worked out by hand."""

from __future__ import annotations

import numpy as np

from tests.benchmarks.hpo_modules import load


def test_portfolio_oracle_and_task_blind_reference():
    attainable = load("attainable")
    # three tasks, three configurations: config 0 is decent everywhere, 1 and 2 are task specialists
    scores = np.array([[0.8, 1.0, 0.0], [0.8, 0.0, 1.0], [0.9, 1.0, 0.0]])
    assert attainable.greedy_portfolio(scores, 2) == [0, 1]  # mean 0.833 first, then the best complement
    result = attainable.attainable(scores, sizes=(1, 2))
    assert np.isclose(result["best task-blind configuration (hindsight, all tasks)"], 1 - 2.5 / 3)
    # held-out task 0: training tasks 1, 2 -> portfolio [0] -> 0.8; [0, 2] -> 0.8 (config 2 scores 0 there)
    # held-out task 1: training tasks 0, 2 both favour config 1 -> [1] -> 0.0 (regret 1); [1, 0] -> 0.8
    # held-out task 2: [0] -> 0.9; [0, 1] -> 1.0
    one = np.mean([0.2, 1.0, 0.1])
    two = np.mean([0.2, 0.2, 0.0])
    assert np.isclose(result["oracle pick from a 1-configuration portfolio (leave-one-task-out)"], one)
    assert np.isclose(result["oracle pick from a 2-configuration portfolio (leave-one-task-out)"], two)
