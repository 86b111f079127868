"""Supervised fine-tuning of a causal LM on chat/instruction data: loss on the answer tokens only.

With ``train.packing`` several examples share a row; their ``position_ids`` restart at 0 and the
batch is run without a 2-D attention mask, so transformers' masking utilities build a block-diagonal
causal mask (no token attends across examples). ``use_cache=False`` is required for that: with a
cache, transformers does not look for packed sequences.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from tunelab.config import Recipe
from tunelab.models.resolve import load_kwargs, load_tokenizer, resolve_model_path
from tunelab.tasks.base import TASKS, Task
from tunelab.tasks.loading import pretrained_config
from tunelab.train.batching import IGNORE, pack_features

NLL_ROWS = 8  # rows per forward pass when scoring


@TASKS.register("sft")
class SFTTask(Task):
    name = "sft"
    default_metric = "loss"
    peft_task_type = "CAUSAL_LM"
    loss_kind = "token"
    default_loss = "answer_only"

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

    def forward(self, model, batch: dict[str, torch.Tensor]):
        # No KV cache: nothing is generated here, and with a cache transformers ignores packing.
        if "position_ids" not in batch:
            return model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
            )
        # Packed rows: no 2-D mask, so transformers masks by the restarting position_ids.
        # (``attention_mask`` stays in the batch only to count real tokens.)
        return model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False)

    @torch.no_grad()
    def example_losses(self, model, batches) -> list[float]:
        """Mean answer-token NLL per feature (a packed row counts as one feature)."""
        return [s / max(n, 1) for s, n in self.example_nll(model, batches)]

    @torch.no_grad()
    def example_nll(self, model, batches) -> list[tuple[float, int]]:
        """Per example: (sum of answer-token NLL, answer-token count)."""
        model.eval()
        out = []
        for full in batches:
            # A vocabulary-wide logit tensor per token is large (49k floats for SmolLM2): score a
            # few rows at a time so evaluation memory does not grow with eval_batch_size.
            for start in range(0, len(full["input_ids"]), NLL_ROWS):
                batch = {k: v[start : start + NLL_ROWS] for k, v in full.items()}
                logits = self.forward(model, batch).logits
                logits, target = logits[:, :-1].float(), batch["labels"][:, 1:]
                nll = torch.nn.functional.cross_entropy(
                    logits.transpose(1, 2), target, ignore_index=IGNORE, reduction="none"
                )
                keep = target != IGNORE
                out.extend(zip(nll.sum(1).tolist(), keep.sum(1).tolist(), strict=True))
        return out

    def validate(self, model, batches) -> dict[str, float]:
        pairs = self.example_nll(model, batches)
        tokens = sum(n for _, n in pairs)
        loss = sum(s for s, _ in pairs) / max(tokens, 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}

    def evaluate(self, model, tokenizer, rows, recipe: Recipe, labels=None) -> dict[str, Any]:
        from tunelab.evaluate.generation import generate_answers
        from tunelab.evaluate.metrics import perplexity_interval
        from tunelab.evaluate.text import rouge_l
        from tunelab.train.batching import eval_batches

        ev = recipe.evaluate
        feats = self.encode(rows, tokenizer, recipe)
        pairs = self.example_nll(model, eval_batches(feats, self, tokenizer, recipe.train.eval_batch_size))
        out: dict[str, Any] = {
            "perplexity": perplexity_interval(
                [s for s, _ in pairs],
                [n for _, n in pairs],
                n_samples=ev.bootstrap_samples,
                confidence=ev.confidence,
                seed=recipe.run.seed,
            ),
            "n_examples": len(pairs),
            "answer_tokens": sum(n for _, n in pairs),
        }
        if ev.generate_examples:
            sample = rows[: ev.generate_examples]
            prompts = [r["messages"][:-1] for r in sample]
            preds = generate_answers(model, tokenizer, prompts, ev.max_new_tokens)
            refs = [r["messages"][-1]["content"] for r in sample]
            scored = rouge_l(
                preds, refs, n_bootstrap=ev.bootstrap_samples, confidence=ev.confidence, seed=recipe.run.seed
            )
            out["rouge_l"] = scored["rouge_l"]
            out["samples"] = [
                {"prompt": r["messages"][-2]["content"], "reference": ref, "generated": p}
                for r, ref, p in zip(sample[:10], refs, preds, strict=False)
            ]
        return out


def _ids(encoded) -> list[int]:
    """``apply_chat_template`` returns a list or a BatchEncoding depending on the version."""
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return list(encoded)
