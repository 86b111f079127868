"""Token streaming for batched generation: text deltas per request and choice, as tokens arrive.

transformers' own ``TextIteratorStreamer`` takes one sequence only; ours takes a whole batch
(``put`` receives one new token per row) and sends each row's new text to its request. A delta
is held back while it may be the start of a stop string or ends in half a UTF-8 character, so
the streamed pieces always join up to exactly the final answer (the server sends any remainder
with the last chunk).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers.generation.streamers import BaseStreamer


def safe_prefix(text: str, stops: Sequence[str]) -> str:
    """The part of ``text`` that can be sent now: cut at a stop string, minus a possible start of one."""
    hits = [text.find(s) for s in stops if s in text]
    if hits:
        return text[: min(hits)]
    hold = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    text = text[: len(text) - hold]
    return text.rstrip("\ufffd")  # half of a multi-byte character decodes as U+FFFD


class RowStreamer(BaseStreamer):
    """Sends each row's text deltas to ``job.emit(choice, delta)``.

    ``rows`` lists (job, choice) for every row of the batch, in row order; ``copies`` > 1 means a
    greedy row stands for that many identical choices (choices 0..copies-1 all get its text).
    """

    def __init__(self, tokenizer, rows: list[tuple[Any, int]], ends: set[int], stops: list[str], copies: int):
        self.tokenizer, self.rows, self.ends, self.stops, self.copies = tokenizer, rows, ends, stops, copies
        self.tokens: list[list[int]] = [[] for _ in rows]
        self.sent = [""] * len(rows)
        self.done = [False] * len(rows)
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate() first hands over the prompt ids
            self.prompt_seen = True
            return
        new = value.tolist()
        two_d = bool(new) and isinstance(new[0], list)  # (rows, k) tokens in one call
        steps = [list(col) for col in zip(*new, strict=True)] if two_d else [new]
        for step in steps:
            for j, token in enumerate(step):
                if j < len(self.rows):
                    self._add(j, int(token))

    def _add(self, j: int, token: int) -> None:
        job, choice = self.rows[j]
        if self.done[j] or job.emit is None or job.cancelled:
            return
        if token in self.ends:
            self.done[j] = True
            return
        self.tokens[j].append(token)
        decoded = self.tokenizer.decode(self.tokens[j], skip_special_tokens=True)  # once per token
        text = safe_prefix(decoded, self.stops)
        if any(s in decoded for s in self.stops):
            self.done[j] = True
        if len(text) > len(self.sent[j]) and text.startswith(self.sent[j]):
            delta = text[len(self.sent[j]) :]
            self.sent[j] = text
            for c in range(choice, choice + self.copies):
                job.emit(c, delta)

    def end(self) -> None:
        pass
