"""Supervised fine-tuning of a causal LM on chat/instruction data: loss on the answer tokens only.

With ``train.packing`` several examples share a row; their ``position_ids`` restart at 0 and the
batch is run without a 2-D attention mask, so transformers' masking utilities build a block-diagonal
causal mask (no token attends across examples). ``use_cache=False`` is required for that: with a
cache, transformers does not look for packed sequences.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from tunelab.batching import IGNORE, pack_features
from tunelab.config import Recipe
from tunelab.metrics.registry import Predictions
from tunelab.models.resolve import load_kwargs, load_tokenizer, resolve_model_path
from tunelab.registry import TASKS
from tunelab.tasks.base import Scored, Task
from tunelab.tasks.loading import on_device, pretrained_config

NLL_ROWS = 8  # rows per forward pass when scoring


@TASKS.register("sft")
class SFTTask(Task):
    name = "sft"
    data_format = "chat"
    headline = ("perplexity", "rouge_l")
    default_metric = "loss"
    validation_metrics = ("perplexity",)
    rank_metric = "perplexity"
    rank_kind = "causal-lm"
    peft_task_type = "CAUSAL_LM"
    loss_kind = "token"
    default_loss = "answer_only"
    _chunked = None  # a ChunkedAnswerLoss while train.chunked_loss is on (see use_chunked_loss)

    @staticmethod
    def auto_class():
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def load_base(self, recipe: Recipe, labels: list[str] | None = None):
        if recipe.model.head.type != "auto":
            raise ValueError("model.head is for classification; sft keeps the model's LM head")
        path = resolve_model_path(recipe.model)
        tokenizer = load_tokenizer(recipe.model, path)
        if tokenizer.chat_template is None:
            raise ValueError(
                f"the tokenizer of {recipe.model.name!r} has no chat template; sft needs one "
                "(pick an instruct/chat model)"
            )
        config = pretrained_config(recipe.model, path)
        model = self.auto_class().from_pretrained(path, config=config, **load_kwargs(recipe.model))
        return model, tokenizer

    def encode(self, rows, tokenizer, recipe: Recipe, labels=None) -> list[dict[str, Any]]:
        """Prompt tokens get label -100; rows whose answer is truncated away are dropped."""
        feats = []
        for r in rows:
            prompt = _ids(tokenizer.apply_chat_template(r["messages"][:-1], add_generation_prompt=True))
            full = _ids(tokenizer.apply_chat_template(r["messages"]))
            if full[: len(prompt)] != prompt:  # template renders the prompt differently: mask by length
                prompt = prompt[: len(full)]
            full = full[: recipe.model.max_length]
            labels_ = [IGNORE] * min(len(prompt), len(full)) + full[len(prompt) :]
            if all(t == IGNORE for t in labels_):
                continue
            feats.append({"input_ids": full, "labels": labels_})
        return feats

    def pack(self, features, max_length: int) -> list[dict[str, Any]]:
        return pack_features(features, max_length)

    def collate(self, features, tokenizer) -> dict[str, torch.Tensor]:
        """Right-padded batch; packed features also get ``position_ids`` (padding is its own sequence)."""
        width = max(len(f["input_ids"]) for f in features)
        pad = tokenizer.pad_token_id
        ids = torch.full((len(features), width), pad, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        packed = "position_ids" in features[0]
        positions = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
            if packed:
                positions[i, :n] = torch.tensor(f["position_ids"])
                positions[i, n:] = torch.arange(width - n)
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        if packed:
            batch["position_ids"] = positions
        return batch

    def forward(self, model, batch: dict[str, torch.Tensor], **extra: Any):
        """The model's output; ``extra`` keyword arguments go to the model (the chunked loss's)."""
        # No KV cache: nothing is generated here, and with a cache transformers ignores packing.
        if "position_ids" not in batch:
            return model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False, **extra
            )
        # Packed rows: no 2-D mask, so transformers masks by the restarting position_ids.
        # (``attention_mask`` stays in the batch only to count real tokens.)
        return model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False, **extra
        )

    # the chunked loss (train.chunked_loss) -------------------------------------------------------
    def chunked_loss_problem(self, model) -> str | None:
        """Why the training loss of ``model`` cannot be chunked, or None (it can)."""
        from tunelab.tasks.chunked_loss import chunking_problem
        from tunelab.tasks.losses import AnswerOnly

        if self._loss is not None and not isinstance(self._loss, AnswerOnly):
            return f"the chunked loss is answer_only; train.loss is {type(self._loss).__name__}"
        return chunking_problem(model)

    def use_chunked_loss(self, chunk: int | None) -> None:
        """Compute the answer_only loss ``chunk`` scored tokens at a time; None: the plain loss."""
        from tunelab.tasks.chunked_loss import ChunkedAnswerLoss

        if chunk is None:
            self._chunked = None
            return
        if self._loss is None:
            self.use_loss(None, [])
        self._chunked = ChunkedAnswerLoss(chunk, getattr(self._loss, "label_smoothing", 0.0))

    def loss(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._chunked is not None:
            return self._chunked(self.forward, model, batch)
        return super().loss(model, batch)

    @torch.no_grad()
    def example_nll(self, model, batches) -> list[tuple[float, int]]:
        """Per example: (sum of answer-token NLL, answer-token count)."""
        model.eval()
        out = []
        for full in batches:
            # A vocabulary-wide logit tensor per token is large (49k floats for SmolLM2): score a
            # few rows at a time so evaluation memory does not grow with eval_batch_size.
            for start in range(0, len(full["input_ids"]), NLL_ROWS):
                batch = on_device(model, {k: v[start : start + NLL_ROWS] for k, v in full.items()})
                logits = self.forward(model, batch).logits
                logits, target = logits[:, :-1].float(), batch["labels"][:, 1:]
                nll = torch.nn.functional.cross_entropy(
                    logits.transpose(1, 2), target, ignore_index=IGNORE, reduction="none"
                )
                keep = target != IGNORE
                out.extend(zip(nll.sum(1).tolist(), keep.sum(1).tolist(), strict=True))
        return out

    def predict(self, model, batches) -> tuple[float, Predictions]:
        """Token-weighted mean NLL, and per example (scored tokens, summed NLL)."""
        pairs = self.example_nll(model, batches)
        nll = np.asarray([s for s, _ in pairs], dtype=np.float64)
        tokens = np.asarray([n for _, n in pairs], dtype=np.float64)
        return float(nll.sum() / max(tokens.sum(), 1.0)), Predictions("tokens", tokens, nll)

    def losses_of(self, preds: Predictions) -> np.ndarray:
        """Mean answer-token NLL per feature (a packed row counts as one feature)."""
        return preds.scores / np.maximum(preds.gold, 1.0)

    def details(self, preds: Predictions, recipe: Recipe) -> dict[str, Any]:
        return {"scored_tokens": int(preds.gold.sum())}

    def prediction_rows(self, rows, preds: Predictions) -> list[dict[str, Any]]:
        return [
            {
                "prompt": r["messages"][-2]["content"] if len(r["messages"]) > 1 else "",
                "answer": r["messages"][-1]["content"],
                "tokens": int(n),
                "nll": round(float(s), 6),
            }
            for r, n, s in zip(rows, preds.gold, preds.scores, strict=False)
        ]

    def evaluate(self, model, tokenizer, rows, recipe: Recipe, labels=None):
        """Answer perplexity with an interval and, on a sample, ROUGE-L of greedy answers."""
        from tunelab.metrics.text import rouge_l
        from tunelab.models.generation import generate_answers

        out, preds = super().evaluate(model, tokenizer, rows, recipe, labels)
        ev = recipe.evaluate
        if ev.generate_examples:
            sample = rows[: ev.generate_examples]
            answers = generate_answers(
                model, tokenizer, [r["messages"][:-1] for r in sample], ev.max_new_tokens
            )
            refs = [r["messages"][-1]["content"] for r in sample]
            scored = rouge_l(
                answers,
                refs,
                bootstrap_samples=ev.bootstrap_samples,
                confidence=ev.confidence,
                seed=recipe.run.seed,
            )
            out["rouge_l"] = scored["rouge_l"]
            out["samples"] = [
                {"prompt": r["messages"][-2]["content"], "reference": ref, "generated": a}
                for r, ref, a in zip(sample[:10], refs, answers, strict=False)
            ]
        return out, preds

    def rank(self, recipe: Recipe, train, val, labels=None) -> Scored:
        """Perplexity of the answer tokens of the validation sample (prompts are context only)."""
        from tunelab.batching import eval_batches
        from tunelab.metrics.registry import value
        from tunelab.models.probe import device, parameters

        model, tokenizer = self.load_base(recipe)
        model.eval().to(device())
        features = self.encode(val, tokenizer, recipe)
        if not features:
            raise ValueError(f"every answer is truncated away at model.max_length={recipe.model.max_length}")
        batches = eval_batches(features, self, tokenizer, recipe.train.eval_batch_size)
        start = time.perf_counter()
        _, preds = self.predict(model, ({k: v.to(model.device) for k, v in b.items()} for b in batches))
        seconds = time.perf_counter() - start
        tokens = sum(len(f["input_ids"]) for f in features)
        return Scored(value("perplexity", preds), parameters(model), tokens, seconds)


def _ids(encoded) -> list[int]:
    """``apply_chat_template`` returns a list or a BatchEncoding depending on the version."""
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return list(encoded)
