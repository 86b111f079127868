"""The transformers engine: batched generation, classification and embeddings on one loaded model.

Its methods are blocking and run on the batcher's one worker thread, a batch at a time.
Generation goes through :func:`tunelab.models.decoding.generate`, the same function the generate
stage uses, so a greedy answer here is the one ``tunelab generate`` gives for the same prompt.
Classification is the evaluate stage's computation (fp32 softmax of the logits of the padded
batch), so served probabilities equal the evaluated ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from tunelab.config.decoding import DecodingConfig
from tunelab.models.decoding import Sample, eos_ids, generate
from tunelab.serve.source import Served
from tunelab.serve.streaming import RowStreamer


@dataclass
class GenJob:
    """One generation request: its prompt tokens and how to decode them."""

    prompt: list[int]
    decoding: DecodingConfig
    n: int
    seed: int
    emit: Callable[[int, str], None] | None = None  # streaming: (choice index, text delta)
    cancelled: bool = False
    samples: list[Sample] = field(default_factory=list)


class TransformersEngine:
    name = "transformers"

    def __init__(self, served: Served, precision: str = "fp32") -> None:
        self.served = served
        self.precision = precision
        self.ends = set(eos_ids(served.tokenizer)) if served.kind == "causal" else set()

    # generation ---------------------------------------------------------------------------------
    def generate(self, jobs: list[GenJob]) -> None:
        """Decode ``jobs`` (same decoding settings, n and seed) as one batch; fills ``job.samples``."""
        first = jobs[0]
        tok = self.served.tokenizer

        def hooks(idx: list[int], per_row: int) -> dict[str, Any]:
            from transformers import StoppingCriteria, StoppingCriteriaList

            rows = [(jobs[i], k) for i in idx for k in range(per_row)]
            greedy_copies = first.n if per_row == 1 else 1  # greedy: one row feeds every choice

            class _Cancelled(StoppingCriteria):  # a client that went away stops its rows
                def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
                    return torch.tensor([job.cancelled for job, _ in rows], dtype=torch.bool)

            out: dict[str, Any] = {"stopping_criteria": StoppingCriteriaList([_Cancelled()])}
            if any(job.emit is not None for job, _ in rows):
                out["streamer"] = RowStreamer(tok, rows, self.ends, list(first.decoding.stop), greedy_copies)
            return out

        samples, _ = generate(
            self.served.model,
            tok,
            [j.prompt for j in jobs],
            first.decoding,
            batch_size=len(jobs),
            seed=first.seed,
            precision=self.precision,
            num_samples=first.n,
            key="request",
            hooks=hooks,
        )
        for job, got in zip(jobs, samples, strict=True):
            job.samples = got

    # classification and embeddings ----------------------------------------------------------------
    def _encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        tok = self.served.tokenizer
        enc = tok(texts, truncation=True, max_length=self.served.max_length)
        return dict(tok.pad({"input_ids": enc["input_ids"]}, padding=True, return_tensors="pt"))

    @torch.inference_mode()
    def classify(self, texts: list[str]) -> list[tuple[list[float], int]]:
        """(class probabilities, tokens) of each text, the probabilities as the evaluate stage has them:
        a text longer than max_length is read as the model was trained to (``long_text`` in its info:
        truncated, head and tail, or windows whose logits are pooled), in one padded batch."""
        from tunelab.tasks.windows import LongText, scored_texts

        settings = LongText.from_info(self.served.info, self.served.max_length)
        logits, tokens = scored_texts(self.served.model, self.served.tokenizer, texts, settings, len(texts))
        return list(zip(torch.softmax(logits, dim=-1).tolist(), tokens, strict=True))

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> list[tuple[list[float], int]]:
        """(embedding, tokens) of each text: mean-pooled, L2-normalised last hidden states of the encoder
        (sentence-transformers style)."""
        batch = self._encode(texts)
        model = self.served.model
        encoder = getattr(model, "base_model", model) if self.served.kind == "classifier" else model
        hidden = encoder(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return list(zip(torch.nn.functional.normalize(pooled, dim=-1).tolist(), _lengths(batch), strict=True))


def _lengths(batch: dict[str, torch.Tensor]) -> list[int]:
    return batch["attention_mask"].sum(-1).tolist()
