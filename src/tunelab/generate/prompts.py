"""Prompt templates: Jinja2 (sandboxed, strict) rendered through the tokenizer's chat template.

A template sees ``input`` (the row's prompt or text), ``examples`` (few-shot rows, each with
``input`` and ``output``), ``labels`` (classification) and the recipe's ``variables``. An undefined
variable is an error naming it; so is a template that renders to nothing.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from tunelab.generate.config import PromptConfig

DEFAULT_TEMPLATE = "{{ input }}"
RESERVED = ("input", "examples", "labels")
Embed = Callable[[list[str]], np.ndarray]


class PromptError(ValueError):
    """A template that cannot be read or rendered; the message names the template and the cause."""


@dataclass(frozen=True)
class RenderedPrompt:
    text: str  # what the model reads (the chat-template string)
    ids: list[int]
    user: str  # the rendered user message
    system: str | None


_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=128)
def _compile(source: str, where: str):
    try:
        return _ENV.from_string(source)
    except TemplateError as e:
        line = f" (line {e.lineno})" if getattr(e, "lineno", None) else ""
        raise PromptError(f"{where}: invalid Jinja2{line}: {e.message}") from e


def template_source(cfg: PromptConfig) -> tuple[str, str]:
    """``(template text, where it came from)``; ``file`` is read relative to the working directory."""
    if cfg.file is not None:
        path = Path(cfg.file)
        if not path.is_file():
            raise PromptError(f"generate.prompt.file: no such file {cfg.file!r} (relative to {Path.cwd()})")
        return path.read_text(encoding="utf-8"), f"generate.prompt.file ({cfg.file})"
    if cfg.template is not None:
        return cfg.template, "generate.prompt.template"
    return DEFAULT_TEMPLATE, "generate.prompt.template (default)"


def render_text(source: str, variables: dict[str, Any], where: str) -> str:
    """One Jinja2 string rendered strictly; errors become PromptError naming ``where``."""
    try:
        return _compile(source, where).render(**variables)
    except UndefinedError as e:  # jinja's message names the variable: "'nope' is undefined"
        known = ", ".join(sorted(variables))
        raise PromptError(f"{where}: undefined variable: {e.message} (defined: {known})") from e
    except TemplateError as e:
        raise PromptError(f"{where}: {e.message}") from e


def render(
    cfg: PromptConfig,
    tokenizer,
    row_input: str,
    *,
    examples: Sequence[dict] = (),
    labels: list[str] | None = None,
    where: str | None = None,
) -> RenderedPrompt:
    """The prompt of one row: the system and user messages through the tokenizer's chat template.

    ``where`` names the template in errors (default: the recipe key it came from). Without a chat
    template the text is ``system + "\\n\\n" + user`` tokenised with the tokenizer's special tokens;
    with one, the chat template already holds the special tokens, so they are not added again.
    Few-shot ``examples`` that the template does not place itself (it never names ``examples``)
    become earlier turns: a user message and the assistant's answer each, as chat models expect.
    """
    source, origin = template_source(cfg)
    where = where or origin
    clash = sorted(set(cfg.variables) & set(RESERVED))
    if clash:
        raise PromptError(f"{where}: variables {clash} are reserved (the template gets them from the data)")
    variables = {
        **cfg.variables,
        "input": row_input,
        "examples": list(examples),
        "labels": list(labels or []),
    }
    user = render_text(source, variables, where)
    if not user.strip():
        raise PromptError(f"{where}: the template renders empty for input {row_input[:60]!r}")
    system = render_text(cfg.system, variables, f"{where} system") if cfg.system is not None else None
    system = system if system and system.strip() else None
    turns = [] if uses_examples(source) else list(examples)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}] if system else []
        for ex in turns:
            messages += [
                {"role": "user", "content": ex["input"]},
                {"role": "assistant", "content": ex["output"]},
            ]
        messages.append({"role": "user", "content": user})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        shots = "".join(f"{ex['input']}\n{ex['output']}\n\n" for ex in turns)
        text = f"{system}\n\n{shots}{user}" if system else f"{shots}{user}"
        ids = tokenizer(text)["input_ids"]
    return RenderedPrompt(text=text, ids=list(ids), user=user, system=system)


def uses_examples(source: str) -> bool:
    """Whether a template places the few-shot ``examples`` itself."""
    from jinja2 import meta

    return "examples" in meta.find_undeclared_variables(_ENV.parse(source))


def template_hash(cfg: PromptConfig) -> str:
    """First 12 hex of sha256 over the template text, the system prompt and the sorted variables."""
    source, _ = template_source(cfg)
    blob = json.dumps([source, cfg.system, cfg.variables], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def pairs(row: dict) -> tuple[str, str]:
    """``(input, output)`` of a data-stage row (chat, text + label, or text alone)."""
    if "messages" in row:
        msgs = row["messages"]
        end = len(msgs) - 1 if msgs and msgs[-1].get("role") == "assistant" else len(msgs)
        output = msgs[end]["content"] if end < len(msgs) else ""
        users = [m["content"] for m in msgs[:end] if m.get("role") == "user"]
        if not users:
            raise ValueError("chat row has no user message before the final assistant turn")
        return users[-1], output
    if "text" in row:
        label = row.get("label")
        return row["text"], "" if label is None else str(label)
    raise ValueError(f"row has neither 'messages' nor 'text' (keys: {sorted(row)})")


def few_shot(
    rows: Sequence[dict],
    query: str,
    k: int,
    strategy: str = "random",
    seed: int = 0,
    embed: Embed | None = None,
) -> list[dict]:
    """``k`` example rows (each with ``input`` and ``output``) for ``query``, never the query itself.

    ``random``: a seeded shuffle, the first ``k`` rows whose input is not the query (so the same
    seed gives the same examples, whatever the query, bar the one it replaces). ``similar``: the
    ``k`` rows most similar to the query by cosine of ``embed`` vectors (default: MiniLM).
    """
    candidates = [r for r in rows if r["input"] != query]
    if k <= 0 or not candidates:
        return []
    if strategy == "random":
        order = list(range(len(rows)))
        random.Random(seed).shuffle(order)
        return [rows[i] for i in order if rows[i]["input"] != query][:k]
    if strategy != "similar":
        raise ValueError(f"unknown few-shot strategy {strategy!r}: random | similar")
    if embed is None:
        from tunelab.generate.embed import embed
    vecs = np.asarray(embed([query] + [r["input"] for r in candidates]), dtype=np.float64)
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    sims = vecs[1:] @ vecs[0]
    return [candidates[i] for i in np.argsort(-sims, kind="stable")[:k]]


def cached_embed(embed: Embed | None = None) -> Embed:
    """``embed`` that computes each distinct text once (few-shot embeds the train rows per query)."""
    store: dict[str, np.ndarray] = {}

    def cached(texts: list[str]) -> np.ndarray:
        nonlocal embed
        if embed is None:
            from tunelab.generate.embed import embed
        new = list(dict.fromkeys(t for t in texts if t not in store))
        if new:
            store.update(zip(new, np.asarray(embed(new)), strict=True))
        return np.stack([store[t] for t in texts])

    return cached
