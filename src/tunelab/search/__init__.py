"""Hyperparameter search with optuna: the recipe's ``search.space`` sampled into trial recipes.

``tune(recipe)`` prepares the data once, runs trials (each a train stage in ``<run_dir>/search/trial-<n>/``,
pruned from its validation scores), and writes ``trials.csv``, ``plots.html``, ``best_recipe.yaml`` and
``summary.json`` under ``<run_dir>/search/``. optuna is imported only when a search runs.
"""

from tunelab.search.tune import join, tune

__all__ = ["join", "tune"]
