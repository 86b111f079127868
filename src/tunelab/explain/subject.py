"""What is explained: one input as model tokens, and the words people read.

Attributions are computed on model tokens and summed to words: a fast tokenizer's ``word_ids``
joins WordPiece ``##`` pieces and byte-level BPE ``Ġ`` pieces into the words of the text. Special
tokens, chat-template tokens and (for causal LMs) the answer itself belong to no word
(``word_of == -1``), so they never appear in a ranking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

NO_WORD = -1


@dataclass
class Subject:
    """One explained input.

    ``source`` is the string the model reads (a classifier's text, or a causal LM's rendered prompt);
    ``text`` is the part a person wrote, at ``text_offset`` in ``source``; ``word_spans`` are the
    words' character spans in ``source``. ``ids`` holds the prompt's ``n_prompt`` tokens and then, for
    a causal LM, the answer's. ``target`` is the class explained (classifiers). ``cut`` says which end
    of a truncated input was dropped ("end" for a classifier's text, "start" for a causal prompt).
    A chat prompt is the explained turn ``turns[turn]`` (its content is ``text``) of the conversation
    ``turns`` the model reads before the answer; only that turn's words are ranked.
    """

    text: str
    source: str
    text_offset: int
    ids: list[int]
    tokens: list[str]
    word_of: list[int]
    words: list[str]
    word_spans: list[tuple[int, int]]
    n_prompt: int
    truncated: bool = False
    cut: str = ""
    turns: list[dict[str, Any]] = field(default_factory=list)
    turn: int = -1
    answer: str = ""
    target: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_ids(self) -> list[int]:
        return self.ids[: self.n_prompt]

    @property
    def answer_ids(self) -> list[int]:
        return self.ids[self.n_prompt :]

    @property
    def ranked_tokens(self) -> np.ndarray:
        """Indices of the tokens that belong to a word (the ones attributions rank)."""
        return np.array([i for i, w in enumerate(self.word_of) if w != NO_WORD], dtype=int)

    def word_scores(self, token_scores: np.ndarray) -> np.ndarray:
        """Per word: the sum of its tokens' scores."""
        out = np.zeros(len(self.words))
        for i, w in enumerate(self.word_of):
            if w != NO_WORD:
                out[w] += float(token_scores[i])
        return out

    def without_words(self, words: set[int] | np.ndarray) -> list[int]:
        """The prompt ids with every token of ``words`` removed."""
        drop = set(int(w) for w in words)
        return [
            t for t, w in zip(self.prompt_ids, self.word_of, strict=False) if w == NO_WORD or w not in drop
        ]

    def only_words(self, words: set[int] | np.ndarray) -> list[int]:
        """The prompt ids keeping only ``words`` (and the tokens of no word: specials, template)."""
        keep = set(int(w) for w in words)
        return [t for t, w in zip(self.prompt_ids, self.word_of, strict=False) if w == NO_WORD or w in keep]

    def masked_words(self, words: set[int] | np.ndarray, mask_id: int) -> list[int]:
        """The prompt ids with every token of ``words`` replaced by ``mask_id`` (same length)."""
        hide = set(int(w) for w in words)
        return [mask_id if w in hide else t for t, w in zip(self.prompt_ids, self.word_of, strict=False)]

    def text_word_spans(self) -> list[tuple[int, int]]:
        """The words' spans in ``text`` (what SHAP and LIME perturb)."""
        return [(a - self.text_offset, b - self.text_offset) for a, b in self.word_spans]

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tokens": self.tokens,
            "word_of": self.word_of,
            "words": self.words,
            "n_prompt": self.n_prompt,
            "answer": self.answer,
            "truncated": self.truncated,
            "cut": self.cut,
            **(
                {"conversation": self.turns, "turn": self.turn % len(self.turns)}
                if len(self.turns) > 1
                else {}
            ),
        }


def _words(
    tokenizer, source: str, enc, lo: int, hi: int
) -> tuple[list[int], list[str], list[tuple[int, int]]]:
    """Group tokens into words inside ``source[lo:hi]``; tokens outside (or special) get no word."""
    specials = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}  # an unknown word is still a word
    word_ids = enc.word_ids()
    offsets = enc["offset_mapping"]
    word_of, words, spans = [], [], []
    index: dict[int, int] = {}
    for tok, wid, (a, b) in zip(enc["input_ids"], word_ids, offsets, strict=True):
        if wid is None or tok in specials or b <= a or a < lo or b > hi:
            word_of.append(NO_WORD)
            continue
        if wid not in index:
            index[wid] = len(words)
            words.append("")
            spans.append((a, b))
        w = index[wid]
        spans[w] = (min(spans[w][0], a), max(spans[w][1], b))
        word_of.append(w)
    for w, (a, b) in enumerate(spans):  # byte-level BPE offsets include the leading space
        piece = source[a:b]
        a += len(piece) - len(piece.lstrip())
        b -= len(piece) - len(piece.rstrip())
        spans[w] = (a, b)
        words[w] = source[a:b]
    return word_of, words, spans


def _require_fast(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"explain needs a fast tokenizer (word boundaries come from its offsets); "
            f"{type(tokenizer).__name__} is not one"
        )


def classifier_subject(tokenizer, text: str, max_length: int) -> Subject:
    """A text for a classifier: tokens with the model's special tokens, truncated to ``max_length``."""
    _require_fast(tokenizer)
    if not text.strip():
        raise ValueError("cannot explain an empty text")
    full = len(tokenizer(text)["input_ids"])
    enc = tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    word_of, words, spans = _words(tokenizer, text, enc, 0, len(text))
    ids = list(enc["input_ids"])
    return Subject(
        text=text,
        source=text,
        text_offset=0,
        ids=ids,
        tokens=tokenizer.convert_ids_to_tokens(ids),
        word_of=word_of,
        words=words,
        word_spans=spans,
        n_prompt=len(ids),
        truncated=full > max_length,
        cut="end" if full > max_length else "",
    )


SENTINEL = "\ue000tunelab-explained-turn\ue001"  # a placeholder no template trims or escapes


def _conversation(prompt: str, turns, turn: int) -> tuple[list[dict[str, Any]], int]:
    msgs = [dict(m) for m in turns] or [{"role": "user", "content": prompt}]
    i = turn % len(msgs) if turns else 0
    msgs[i]["content"] = prompt
    return msgs, i


def render_source(tokenizer, prompt: str, chat: bool, turns=(), turn: int = -1) -> str:
    """The string a causal LM reads for ``prompt``: with ``chat``, the conversation ``turns`` (the
    messages before the answer) through the chat template, ``prompt`` as the content of ``turns[turn]``
    (a lone user turn without ``turns``)."""
    if not chat:
        return prompt
    msgs, _ = _conversation(prompt, turns, turn)
    return tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)


def render_prompt(tokenizer, prompt: str, chat: bool, turns=(), turn: int = -1) -> tuple[str, int, str]:
    """:func:`render_source`, where ``prompt`` starts in it, and ``prompt`` as it stands there.

    The turn is located by rendering a placeholder in its place, so a prompt repeated elsewhere in
    the conversation is never taken for it; a template that trims its content gets the prompt
    trimmed. A template that changes the text otherwise cannot be explained word by word.
    """
    if not chat:
        return prompt, 0, prompt
    marked = render_source(tokenizer, SENTINEL, chat, turns, turn)
    if marked.count(SENTINEL) == 1:
        for text in dict.fromkeys((prompt, prompt.strip())):
            source = render_source(tokenizer, text, chat, turns, turn)
            if source == marked.replace(SENTINEL, text):
                return source, marked.index(SENTINEL), text
    raise ValueError(
        f"the chat template changes the text of the prompt {prompt[:60]!r}: its words cannot be located"
    )


def causal_subject(
    tokenizer, prompt: str, answer: str, max_length: int, chat: bool, turns=(), turn: int = -1
) -> Subject:
    """A prompt and its answer for a causal LM; only the words of ``prompt`` are ranked.

    With ``turns`` (a chat row's messages before the answer) the prompt is ``turns[turn]`` in that
    conversation, rendered as the model was trained on it (system and earlier turns included).

    The rendered chat template is tokenised without adding special tokens (it has its own), so there
    is no double BOS. A prompt longer than leaves room for the answer is cut from the left (its end
    is what the answer follows).
    """
    _require_fast(tokenizer)
    if not prompt.strip():
        raise ValueError("cannot explain an empty prompt")
    if not answer.strip():
        raise ValueError(f"no answer to attribute for the prompt {prompt[:60]!r}")
    msgs, turn = _conversation(prompt, turns, turn) if turns else ([], -1)
    source, offset, prompt = render_prompt(tokenizer, prompt, chat, msgs, turn)
    if msgs:
        msgs[turn]["content"] = prompt
    enc = tokenizer(source, add_special_tokens=not chat, return_offsets_mapping=True)
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    room = max_length - len(answer_ids)
    if room < 2:
        raise ValueError(
            f"the answer ({len(answer_ids)} tokens) leaves no room for the prompt in {max_length}"
        )
    word_of, words, spans = _words(tokenizer, source, enc, offset, offset + len(prompt))
    ids = list(enc["input_ids"])
    cut = max(0, len(ids) - room)
    if cut:
        ids, word_of = ids[cut:], word_of[cut:]
        kept = sorted({w for w in word_of if w != NO_WORD})
        renumber = {w: i for i, w in enumerate(kept)}
        word_of = [renumber.get(w, NO_WORD) for w in word_of]
        words, spans = [words[w] for w in kept], [spans[w] for w in kept]
    all_ids = ids + list(answer_ids)
    return Subject(
        text=prompt,
        source=source,
        text_offset=offset,
        ids=all_ids,
        tokens=tokenizer.convert_ids_to_tokens(all_ids),
        word_of=word_of + [NO_WORD] * len(answer_ids),
        words=words,
        word_spans=spans,
        n_prompt=len(ids),
        truncated=bool(cut),
        cut="start" if cut else "",
        turns=msgs,
        turn=turn,
        answer=answer,
    )
