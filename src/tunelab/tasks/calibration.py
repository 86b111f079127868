"""Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"): one T > 0 that
divides a single-label classifier's logits, fitted on the validation split after training.

``softmax(z / T)`` keeps the argmax, so predictions do not change; only how confident they are. T is
saved in ``model/tunelab_model.json`` and installed on a loaded model as a forward hook that divides
its output logits by T, so every caller of the model (evaluate, explain, audit, serve) gets the
calibrated logits without knowing about it. The hook sits on the transformers model itself (inside
a peft wrapper), so merging an adapter keeps it.

Hand-written: no well-kept library fits temperature scaling for torch logits (gpleiss's
temperature_scaling is a script, not a package; netcal is a large research framework with its own
dependency stack, for numpy confidences). The fit itself is scipy's bounded scalar minimiser on
log T: the log loss is convex in 1/T, so it has one minimum in log T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

TEMPERATURE_ATTR = "tunelab_temperature"  # on the hooked module: the T its logits are divided by
_HOOK_ATTR = "_tunelab_temperature_hook"  # on the hooked module: the hook's handle, to replace or remove it
LOG_T_BOUNDS = (math.log(0.05), math.log(20.0))  # T in [0.05, 20]: wider than any sane classifier needs
N_BINS = 15  # as tunelab.metrics.classification.expected_calibration_error


@dataclass(frozen=True)
class TemperatureFit:
    """The fitted temperature and the validation log loss at T = 1 and at T (None without rows)."""

    temperature: float
    rows: int
    log_loss_before: float | None = None
    log_loss_after: float | None = None

    def info(self) -> dict[str, Any]:
        """What the train stage saves in ``tunelab_model.json``."""
        return {
            "temperature": self.temperature,
            "temperature_fit": {
                "validation_rows": self.rows,
                "log_loss_before": self.log_loss_before,
                "log_loss_after": self.log_loss_after,
            },
        }


def _nll(logits: torch.Tensor, gold: torch.Tensor, temperature: float) -> float:
    return float(torch.nn.functional.cross_entropy(logits / temperature, gold).item())


def fit_temperature(logits: torch.Tensor | np.ndarray, gold: torch.Tensor | np.ndarray) -> TemperatureFit:
    """The T minimising the mean negative log-likelihood of ``gold`` under ``softmax(logits / T)``.

    Never worse than T = 1 on these rows: a fit that does not lower the log loss keeps T = 1. No
    rows: T = 1.
    """
    from scipy.optimize import minimize_scalar

    z = torch.as_tensor(logits).double()
    y = torch.as_tensor(gold).long()
    if len(y) == 0:
        return TemperatureFit(1.0, 0)
    before = _nll(z, y, 1.0)
    found = minimize_scalar(
        lambda log_t: _nll(z, y, math.exp(log_t)), bounds=LOG_T_BOUNDS, method="bounded",
        options={"xatol": 1e-5},
    )
    temperature = float(math.exp(found.x))
    after = _nll(z, y, temperature)
    if not after < before:
        temperature, after = 1.0, before
    return TemperatureFit(temperature, len(y), before, after)


# the hook --------------------------------------------------------------------------------------
def _hooked(model):
    """The module that carries the hook: the transformers model inside a peft wrapper, else ``model``."""
    inner = getattr(model, "get_base_model", None)
    return inner() if callable(inner) else model


def _divide(module, args, output):
    t = getattr(module, TEMPERATURE_ATTR, 1.0)
    if isinstance(output, torch.Tensor):
        return output / t
    if getattr(output, "logits", None) is not None:
        output.logits = output.logits / t  # a ModelOutput: the attribute and its key both change
    return output


def install_temperature(model, temperature: float) -> None:
    """Make ``model`` (and any peft wrapper around it) return ``logits / temperature``; replaces a T
    installed before."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    target = _hooked(model)
    setattr(target, TEMPERATURE_ATTR, float(temperature))
    if getattr(target, _HOOK_ATTR, None) is None:
        setattr(target, _HOOK_ATTR, target.register_forward_hook(_divide))


def temperature_of(model) -> float | None:
    """The temperature installed on ``model``, None when there is none."""
    target = _hooked(model)
    return getattr(target, TEMPERATURE_ATTR, None) if getattr(target, _HOOK_ATTR, None) else None


def remove_temperature(model) -> float | None:
    """Take the temperature off ``model`` (raw logits again); the one it had, or None."""
    target = _hooked(model)
    handle = getattr(target, _HOOK_ATTR, None)
    if handle is None:
        return None
    handle.remove()
    temperature = getattr(target, TEMPERATURE_ATTR, None)
    for attr in (_HOOK_ATTR, TEMPERATURE_ATTR):
        if hasattr(target, attr):
            delattr(target, attr)
    return temperature


# reporting -------------------------------------------------------------------------------------
def uncalibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities at T = 1 back from calibrated ones: ``softmax(log p * T)`` (log p is z / T
    up to a per-row constant, which softmax ignores)."""
    p = np.asarray(probs, dtype=np.float64)
    logp = np.log(np.clip(p, np.finfo(np.float32).tiny, 1.0)) * temperature
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=1, keepdims=True)


def reliability_bins(gold: np.ndarray, probs: np.ndarray, n_bins: int = N_BINS) -> list[dict[str, Any]]:
    """The ECE's bins of the top-label confidence (bin b holds (b/n, (b+1)/n]): the bin's edges,
    count, mean confidence and accuracy; empty bins left out."""
    from tunelab.metrics.classification import confidence_bins

    edges, count, conf_sum, acc_sum = confidence_bins(gold, np.asarray(probs, dtype=np.float64), n_bins)
    return [
        {
            "low": float(edges[b]),
            "high": float(edges[b + 1]),
            "count": int(count[b]),
            "confidence": float(conf_sum[b] / count[b]),
            "accuracy": float(acc_sum[b] / count[b]),
        }
        for b in range(n_bins)
        if count[b]
    ]


def calibration_report(gold: np.ndarray, probs: np.ndarray, temperature: float) -> dict[str, Any]:
    """``eval.json``'s ``calibration``: ECE, Brier and log loss before (T = 1) and after (the
    calibrated ``probs``), and the reliability bins of both."""
    from tunelab.metrics.classification import brier_score, expected_calibration_error, log_loss

    before = uncalibrated(probs, temperature)
    after = np.asarray(probs, dtype=np.float64)

    def figures(p: np.ndarray) -> dict[str, float]:
        return {
            "ece": expected_calibration_error(gold, p, N_BINS),
            "brier": brier_score(gold, p),
            "log_loss": log_loss(gold, p),
        }

    return {
        "temperature": float(temperature),
        "before": figures(before),
        "after": figures(after),
        "reliability": {"before": reliability_bins(gold, before), "after": reliability_bins(gold, after)},
    }
