"""Training strategies (curriculum, gradual unfreezing, layer-wise LR, early stopping), one module each.

Each turns its ``train.strategies`` entry into a :class:`~tunelab.train.callbacks.Plan` contribution;
:func:`build_plan` merges them for ``fit``.
"""

from tunelab.train.strategies.base import STRATEGIES, StrategySetup, build_plan

__all__ = ["STRATEGIES", "StrategySetup", "build_plan"]
