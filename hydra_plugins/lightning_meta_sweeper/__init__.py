"""Hydra sweeper ``hydra/sweeper=lightning_meta_optuna``: Optuna ask/tell, warm-started by a hyperparameter mapping.

Hydra imports every module under the ``hydra_plugins`` namespace package at start-up; importing
``optuna_sweeper`` registers the sweeper class and its config.
"""
