"""The one batched predictor every explanation method shares.

Token ids (or texts) in, class probabilities (classifier) or per-token log-probabilities of a given
answer (causal LM) out, in batches sorted by length, under the training precision. Every
perturbation method (occlusion, SHAP, LIME, faithfulness) goes through :meth:`Predictor.scores`,
so a budget of N evaluations is N rows in a few forward passes, not N passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

OUTPUTS = ("softmax", "sigmoid", "identity")


class Predictor:
    """Batched forward passes of one model; counts the rows and passes it ran."""

    def __init__(
        self,
        model,
        tokenizer,
        *,
        kind: str,
        output: str = "softmax",
        batch_size: int = 64,
        precision: str = "fp32",
    ) -> None:
        if kind not in ("classifier", "causal"):
            raise ValueError(f"unknown model kind {kind!r}")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; known: {OUTPUTS}")
        self.model = model
        self.tokenizer = tokenizer
        self.kind = kind
        self.output = output
        self.batch_size = batch_size
        self.precision = precision
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.device = next(model.parameters()).device
        self.rows = 0
        self.passes = 0

    def autocast(self):
        """bf16 autocast when the run trained in bf16; a no-op in fp32."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    # classifier --------------------------------------------------------------------------------
    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits to what is explained: probabilities (softmax / sigmoid) or the raw value."""
        logits = logits.float()
        if self.output == "softmax":
            return torch.softmax(logits, dim=-1)
        if self.output == "sigmoid":
            return torch.sigmoid(logits)
        return logits

    def forward_logits(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Differentiable: (batch, classes) logits from ids (embedding hooks make it work for captum)."""
        with self.autocast():
            return self.model(input_ids=ids, attention_mask=mask).logits.float()

    def forward_probs(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.outputs(self.forward_logits(ids, mask))

    @torch.inference_mode()
    def class_scores(self, id_lists: Sequence[Sequence[int]], logits: bool = False) -> np.ndarray:
        """(n, classes) outputs (or raw logits) for token-id sequences (each with its special tokens)."""
        unique, where = _unique(id_lists)
        out: list[np.ndarray | None] = [None] * len(unique)
        forward = self.forward_logits if logits else self.forward_probs
        for idx, ids, mask in self._batches(unique, left=False):
            probs = forward(ids, mask).cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = probs[j]
        return np.stack(out)[where] if out else np.zeros((0, 0))

    # causal LM ---------------------------------------------------------------------------------
    def forward_answer(self, ids: torch.Tensor, mask: torch.Tensor, n_answer: int) -> torch.Tensor:
        """Differentiable: (batch, n_answer) log-probabilities of the last ``n_answer`` tokens.

        Rows are left-padded, so the answer is always the last ``n_answer`` positions and only their
        logits are computed (``logits_to_keep``): a 49k-word vocabulary times every prompt position
        would dominate memory. Position ids come from the mask, so padding does not shift them.
        """
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        with self.autocast():
            logits = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                logits_to_keep=n_answer + 1,
                use_cache=False,
            ).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        answer = ids[:, -n_answer:]
        return logp.gather(-1, answer.unsqueeze(-1)).squeeze(-1)

    def answer_logprobs(self, prompt_lists: Sequence[Sequence[int]], answer: Sequence[int]) -> np.ndarray:
        """(n, len(answer)) log-probability of each answer token after each prompt (the shared
        continuation scorer, ``tunelab.models.scoring``; each distinct prompt once)."""
        from tunelab.models.scoring import token_logprobs

        unique, where = _unique(prompt_lists)
        if not unique:
            return np.zeros((0, len(answer)))
        got = token_logprobs(
            self.model,
            self.pad_id,
            unique,
            [list(answer)] * len(unique),
            batch_size=self.batch_size,
            precision=self.precision,
        )
        self.rows += len(unique)
        self.passes += -(-len(unique) // self.batch_size)
        return np.stack(got)[where]

    # shared --------------------------------------------------------------------------------------
    def scores(
        self, variants: Sequence[Sequence[int]], *, target: int = 0, answer: Sequence[int] = ()
    ) -> np.ndarray:
        """The explained quantity for each variant: the target class's probability, or the answer's
        total log-probability."""
        if self.kind == "causal":
            return self.answer_logprobs(variants, answer).sum(axis=1)
        return self.class_scores(variants)[:, target]

    def encode_texts(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        return self.tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]

    def _batches(self, rows: Sequence[Sequence[int]], left: bool):
        """(original indices, ids, mask) batches of similar length, padded on one side."""
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(rows[i]) for i in idx)
            ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for j, i in enumerate(idx):
                n = len(rows[i])
                if n == 0:
                    continue
                sl = slice(width - n, width) if left else slice(0, n)
                ids[j, sl] = torch.tensor(list(rows[i]), dtype=torch.long)
                mask[j, sl] = 1
            self.rows += len(idx)
            self.passes += 1
            yield idx, ids.to(self.device), mask.to(self.device)


def _unique(rows: Sequence[Sequence[int]]) -> tuple[list[list[int]], np.ndarray]:
    """Distinct rows, and for each input row the index of its distinct row: a variant that two
    methods (or two faithfulness steps) share runs once."""
    index: dict[tuple[int, ...], int] = {}
    where = np.array([index.setdefault(tuple(r), len(index)) for r in rows], dtype=int)
    return [list(r) for r in index], where
