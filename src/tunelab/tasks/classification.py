"""Sequence classification: an encoder (or decoder) with a classification head; labels from a column.

``model.head.type: auto`` keeps the model's own transformers head (the result loads with plain
transformers); ``linear`` / ``mlp`` put a tunelab head over a chosen pooling (see ``models/heads.py``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunelab.config import Recipe
from tunelab.metrics.registry import Predictions
from tunelab.models.resolve import load_kwargs, load_tokenizer, resolve_model_path
from tunelab.registry import TASKS
from tunelab.tasks.base import Scored, Task
from tunelab.tasks.loading import pretrained_config

log = logging.getLogger("tunelab")


@TASKS.register("classification")
class ClassificationTask(Task):
    name = "classification"
    has_labels = True
    headline = ("accuracy", "macro_f1", "ece")
    default_metric = "accuracy"
    validation_metrics = ("accuracy", "macro_f1")
    rank_metric = "probe_accuracy"
    base_note = "base = the pretrained encoder with a new, untrained head (chance level)"
    peft_task_type = "SEQ_CLS"
    label_dtype = torch.long
    pooling = "mean"  # how a row's window logits are pooled (model.chunk.pooling), set by encode

    @staticmethod
    def auto_class():
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def load_base(self, recipe: Recipe, labels: list[str] | None):
        if not labels:
            raise ValueError("classification needs the label list (data/labels.json)")
        return self.load_with_head(
            recipe,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)},
        )

    def load_with_head(self, recipe: Recipe, **config_overrides: Any):
        """The pretrained model with the recipe's head (``model.head``) and dropout overrides."""
        from tunelab.models.heads import build_headed

        path = resolve_model_path(recipe.model)
        tokenizer = load_tokenizer(recipe.model, path)
        config = pretrained_config(recipe.model, path, **config_overrides)
        head = recipe.model.head
        if config.pad_token_id is None:  # decoders need it to find the last real token
            config.pad_token_id = tokenizer.pad_token_id
        if head.type == "auto":
            if head.dropout is not None:
                if not hasattr(config, "classifier_dropout"):
                    raise ValueError(
                        f"model.head.dropout: a {config.model_type} head has no dropout setting; "
                        "use a tunelab head (type: linear) or remove it"
                    )
                config.classifier_dropout = head.dropout
            loaded = self.auto_class().from_pretrained(
                path, config=config, output_loading_info=True, **load_kwargs(recipe.model)
            )
            model, info = loaded if isinstance(loaded, tuple) else (loaded, {})
            prefix = f"{getattr(model, 'base_model_prefix', '')}."
            new = any(not str(k).startswith(prefix) for k in info.get("missing_keys") or ())
        else:
            model = build_headed(path, config, head, config.num_labels, **load_kwargs(recipe.model))
            new = True
        if new:  # in place of transformers' load report (the CLI silences it): one line of our own
            log.info("new %s head: %s", self.name, _head_outputs(config, self.has_labels))
        return model, tokenizer

    def load_tuned(self, model_dir: Path, recipe: Recipe, labels: list[str] | None):
        """The tuned model (adapter, full or tunelab-headed), with the temperature saved beside it
        installed: every caller of the model gets calibrated logits (see ``tasks/calibration.py``)."""
        from tunelab.models.heads import is_headed, load_headed

        if not is_headed(model_dir):
            model, tokenizer = super().load_tuned(model_dir, recipe, labels)
        else:
            from transformers import AutoTokenizer

            model, tokenizer = load_headed(model_dir).eval(), AutoTokenizer.from_pretrained(str(model_dir))
        temperature = saved_temperature(model_dir)
        if temperature is not None:
            from tunelab.tasks.calibration import install_temperature

            install_temperature(model, temperature)
        return model, tokenizer

    def parse_label(self, value: Any, recipe: Recipe) -> tuple[Any, str | None]:
        """A class name. An integer names one class however it comes: ``1``, ``1.0``, ``np.int64(1)``,
        ``"1"`` and ``"1.0"`` (a numeric CSV column, read as text) are all the class ``"1"``."""
        if isinstance(value, bool | np.bool_):
            return str(bool(value)).lower(), None
        if isinstance(value, int | np.integer):
            return str(int(value)), None
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value)), None  # 1.0 from a numeric column means label "1"
        if isinstance(value, str):
            whole, dot, fraction = value.strip().partition(".")
            digits = whole[1:] if whole[:1] in ("+", "-") else whole
            if dot and fraction and not fraction.strip("0") and digits.isascii() and digits.isdigit():
                return str(int(whole)), None  # "1.0" / "-2.00" is the integer class it writes
            return value, None
        return (
            None,
            f"label must be a single string or integer, got {type(value).__name__} {str(value)[:40]!r}",
        )

    def label_vocabulary(self, labels) -> list[str]:
        return sorted(set(labels))

    def encode(self, rows, tokenizer, recipe: Recipe, labels) -> list[dict[str, Any]]:
        return self.text_features(rows, self.targets(rows, recipe, labels), tokenizer, recipe)

    def targets(self, rows, recipe: Recipe, labels) -> list[Any]:
        """Each row's gold answer as the model is trained on it: here a class id into ``labels``."""
        ids_of = {lab: i for i, lab in enumerate(labels or [])}
        unknown = sorted({str(r["label"]) for r in rows} - set(ids_of))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the trained labels {labels}")
        return [ids_of[r["label"]] for r in rows]

    def text_features(self, rows, targets: list[Any], tokenizer, recipe: Recipe) -> list[dict[str, Any]]:
        """Features of the rows' texts, read as ``model.long_text`` says, each with its row's target.

        With ``chunk`` a row gives one feature per window, each carrying the row index (``group``);
        the pooling is remembered for :meth:`predict` (which gets batches, not the recipe)."""
        from tunelab.tasks.windows import GROUP, LongText, make_windows

        settings = LongText.of(recipe.model)
        self.pooling = settings.pooling
        win = make_windows(tokenizer, [r["text"] for r in rows], settings)
        if settings.mode != "chunk":
            return [{"input_ids": ids, "labels": y} for ids, y in zip(win.input_ids, targets, strict=True)]
        if len(win.input_ids) > win.rows or win.dropped:
            dropped = (
                f"; {win.dropped} windows of {win.capped} rows past model.chunk.max_chunks "
                f"({settings.max_chunks}) dropped" if win.dropped else ""
            )
            log.info("model.long_text chunk: %d rows read as %d windows%s", win.rows, len(win.group), dropped)
        return [
            {"input_ids": ids, "labels": targets[g], GROUP: g}
            for ids, g in zip(win.input_ids, win.group, strict=True)
        ]

    def collate(self, features: list[dict[str, Any]], tokenizer) -> dict[str, torch.Tensor]:
        from tunelab.tasks.windows import GROUP

        batch = tokenizer.pad(
            [{"input_ids": f["input_ids"]} for f in features], padding=True, return_tensors="pt"
        )
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=self.label_dtype)
        if features and GROUP in features[0]:  # chunk: the row of each window, for pooling
            batch[GROUP] = torch.tensor([f[GROUP] for f in features], dtype=torch.long)
        return dict(batch)

    def loss_data(self, features, labels):
        from tunelab.tasks.losses import LossData

        counts = Counter(f["labels"] for f in features)
        n_labels = len(labels) if labels else max(counts, default=-1) + 1
        return LossData(label_counts=[counts.get(i, 0) for i in range(n_labels)])

    @torch.no_grad()
    def predict(self, model, batches: Iterable[dict[str, torch.Tensor]]) -> tuple[float, Predictions]:
        """Mean cross-entropy and class probabilities over ``batches``, one per row: the windows of
        a row (``model.long_text: chunk``) are pooled into its logits before softmax and loss."""
        from tunelab.tasks.windows import row_outputs

        model.eval()
        logits, gold = row_outputs(self.forward, model, batches, self.pooling)
        if not len(gold):
            return 0.0, Predictions("labels", np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))
        losses = torch.nn.functional.cross_entropy(logits, gold, reduction="none")
        probs = torch.softmax(logits, dim=-1).numpy()
        return float(losses.double().sum().item() / len(gold)), Predictions("labels", gold.numpy(), probs)

    def losses_of(self, preds: Predictions) -> np.ndarray:
        return -np.log(np.clip(preds.scores[np.arange(len(preds)), preds.gold], 1e-12, 1.0))

    def calibrates(self, recipe: Recipe) -> bool:
        """Whether after_fit fits a temperature: single-label classification with
        ``train.calibration: temperature`` (regression and multilabel reuse this class, not this)."""
        return (
            recipe.train.calibration == "temperature"
            and self.loss_kind == "classification"
            and self.label_dtype == torch.long
        )

    def after_fit(self, model, val_features, tokenizer, recipe: Recipe) -> dict[str, Any]:
        """The temperature with the lowest validation log loss (never above T = 1's; 1 without
        validation rows), installed on ``model`` and returned for ``tunelab_model.json``."""
        if not self.calibrates(recipe):
            return {}
        from tunelab.batching import eval_batches
        from tunelab.tasks.calibration import fit_temperature, install_temperature, remove_temperature
        from tunelab.tasks.windows import row_outputs

        remove_temperature(model)  # fit on the raw logits
        logits, gold = torch.empty((0, 0)), torch.empty(0, dtype=torch.long)
        if val_features:
            model.eval()
            with torch.no_grad():
                batches = eval_batches(val_features, self, tokenizer, recipe.train.eval_batch_size)
                logits, gold = row_outputs(self.forward, model, batches, self.pooling)
        fit = fit_temperature(logits, gold)
        install_temperature(model, fit.temperature)
        log.info(
            "temperature scaling: T = %.3f on %d validation rows (log loss %s -> %s)", fit.temperature,
            fit.rows, _rounded(fit.log_loss_before), _rounded(fit.log_loss_after),
        )
        return fit.info()

    def evaluate(self, model, tokenizer, rows, recipe: Recipe, labels) -> tuple[dict[str, Any], Predictions]:
        """The figures of :meth:`Task.evaluate` (of calibrated probabilities, for a model carrying a
        temperature) and, for such a model, ``calibration``: its temperature, ECE / Brier / log loss
        before (T = 1) and after, and the reliability bins of both."""
        out, preds = super().evaluate(model, tokenizer, rows, recipe, labels)
        from tunelab.tasks.calibration import calibration_report, temperature_of

        temperature = temperature_of(model)
        if temperature is not None and preds.kind == "labels" and len(preds):
            out["calibration"] = calibration_report(preds.gold, preds.scores, temperature)
        return out, preds

    def details(self, preds: Predictions, recipe: Recipe) -> dict[str, Any]:
        from tunelab.metrics.classification import classification_metrics

        ev = recipe.evaluate
        labels = preds.labels or [str(i) for i in range(preds.scores.shape[1])]
        return classification_metrics(
            preds.gold.tolist(),
            preds.predicted().tolist(),
            probs=preds.scores,
            labels=labels,
            bootstrap_samples=ev.bootstrap_samples,
            confidence=ev.confidence,
            seed=recipe.run.seed,
        )

    def prediction_rows(self, rows, preds: Predictions) -> list[dict[str, Any]]:
        names = preds.labels or []
        return [
            {
                "text": r["text"],
                "label": r["label"],
                "predicted": names[k],
                "probability": round(float(p[k]), 6),
            }
            for r, k, p in zip(rows, preds.predicted().tolist(), preds.scores, strict=True)
        ]

    def rank(self, recipe: Recipe, train, val, labels) -> Scored:
        """Validation accuracy of a linear probe on frozen mean-pooled features."""
        from tunelab.models.probe import probe_scores

        ids_of = {lab: i for i, lab in enumerate(labels or [])}
        if len({r["label"] for r in train}) < 2:
            raise ValueError("the train sample holds one label only; raise search.rank_train_rows")
        y_train = [ids_of[r["label"]] for r in train]
        y_val = np.asarray([ids_of[r["label"]] for r in val])
        pred, parameters, tokens, seconds = probe_scores(recipe, train, val, y_train, "classifier")
        return Scored(float((pred == y_val).mean()), parameters, tokens, seconds)


def saved_temperature(model_dir: Path) -> float | None:
    """The temperature in ``model_dir/tunelab_model.json``; None for a model saved without one."""
    from tunelab.tasks.base import saved_model_info

    value = saved_model_info(model_dir).get("temperature")
    return float(value) if value is not None else None


def _rounded(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _head_outputs(config, has_labels: bool) -> str:
    """``2 labels (fresh, rotten)``, or ``1 output`` for a head without label names."""
    n = int(config.num_labels)
    names = [str(v) for _, v in sorted((config.id2label or {}).items())] if has_labels else []
    if not names:
        return f"{n} output" + ("s" if n != 1 else "")
    shown = ", ".join(names[:8]) + (f", ... ({len(names) - 8} more)" if len(names) > 8 else "")
    return f"{n} label" + ("s" if n != 1 else "") + f" ({shown})"
