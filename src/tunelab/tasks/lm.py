"""Continued pretraining of a causal LM on plain text (rows with ``text``): next-token loss on every token.

Texts are tokenised, each ended with the EOS token, concatenated and cut into blocks of
``model.max_length`` tokens (the last block may be shorter; collate pads it, padding is not scored).
A block may span documents; the EOS between them marks where one ends, as in the usual causal-LM
pretraining recipe. Validation, evaluation and ranking score blocks of their split the same way.
The loss is ``answer_only``: with every token labelled it is plain causal-LM cross-entropy.
"""

from __future__ import annotations

from typing import Any

from tunelab.config import Recipe
from tunelab.metrics.registry import Predictions
from tunelab.models.resolve import load_kwargs, load_tokenizer, resolve_model_path
from tunelab.registry import TASKS
from tunelab.tasks.base import Task
from tunelab.tasks.loading import on_device, pretrained_config
from tunelab.tasks.sft import SFTTask

MIN_BLOCK = 2  # a block needs two tokens for one next-token prediction


@TASKS.register("lm")
class LMTask(SFTTask):
    """Shares the causal-LM scoring of ``sft`` (collate, forward, per-block NLL, ranking by perplexity)."""

    name = "lm"
    data_format = "text"
    headline = ("perplexity",)
    default_metric = "loss"
    validation_metrics = ("perplexity",)
    rank_metric = "perplexity"
    rank_kind = "causal-lm"
    base_note = "base = the pretrained model before continued pretraining"
    peft_task_type = "CAUSAL_LM"
    loss_kind = "token"
    default_loss = "answer_only"

    def __init__(self) -> None:
        # (first row, last row) of the rows each block of the latest ``encode`` holds
        self._spans: list[tuple[int, int]] = []

    def load_base(self, recipe: Recipe, labels: list[str] | None = None):
        if recipe.model.head.type != "auto":
            raise ValueError("model.head is for classification; lm keeps the model's LM head")
        path = resolve_model_path(recipe.model)
        tokenizer = load_tokenizer(recipe.model, path)  # sets a pad token where the model has none
        config = pretrained_config(recipe.model, path)
        model = self.auto_class().from_pretrained(path, config=config, **load_kwargs(recipe.model))
        return model, tokenizer

    def encode(self, rows, tokenizer, recipe: Recipe, labels=None) -> list[dict[str, Any]]:
        """Blocks of ``model.max_length`` tokens cut from all texts joined, each text ended by EOS."""
        width = recipe.model.max_length
        eos = tokenizer.eos_token_id
        # verbose=False: texts longer than the model's limit are expected here; blocks cut them
        encoded = tokenizer([r["text"] for r in rows], verbose=False)["input_ids"] if rows else []
        ids: list[int] = []
        row_of: list[int] = []
        for i, toks in enumerate(encoded):
            toks = list(toks)
            if eos is not None and (not toks or toks[-1] != eos):
                toks.append(eos)
            ids += toks
            row_of += [i] * len(toks)
        feats, self._spans = [], []
        for start in range(0, len(ids), width):
            block = ids[start : start + width]
            if len(block) < MIN_BLOCK:
                continue
            feats.append({"input_ids": block, "labels": list(block)})
            self._spans.append((row_of[start], row_of[start + len(block) - 1]))
        return feats

    def predict(self, model, batches) -> tuple[float, Predictions]:
        """Token-weighted mean NLL and per block (scored tokens, summed NLL), on the model's device."""
        return super().predict(model, (on_device(model, b) for b in batches))

    def pack(self, features, max_length: int) -> list[dict[str, Any]]:
        """Already packed: ``encode`` cuts the joined texts into blocks of ``model.max_length``."""
        return features

    def evaluate(self, model, tokenizer, rows, recipe: Recipe, labels=None):
        """Perplexity over the blocks of ``rows``, with a bootstrap interval over blocks."""
        out, preds = Task.evaluate(self, model, tokenizer, rows, recipe, labels)
        out["blocks"] = len(preds)
        return out, preds

    def prediction_rows(self, rows, preds: Predictions) -> list[dict[str, Any]]:
        """One line per block: the rows it spans, the start of its first row, tokens, NLL, perplexity."""
        import math

        spans = self._spans if len(self._spans) == len(preds) else [(None, None)] * len(preds)
        out = []
        for k, ((a, b), n, s) in enumerate(zip(spans, preds.gold, preds.scores, strict=True)):
            mean = float(s) / max(float(n), 1.0)
            out.append({
                "block": k,
                "rows": [a, b],
                "text": rows[a]["text"][:200] if a is not None and a < len(rows) else None,
                "tokens": int(n),
                "nll": round(float(s), 6),
                "perplexity": round(math.exp(mean), 4) if mean < 709.0 else math.inf,
            })
        return out
