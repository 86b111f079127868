"""The examples section of explain/index.html: one card per explained example (text or prompt,
prediction or answer, a word heatmap per method, the token view and the answer-token map)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunelab import html as h
from tunelab.explain import page_attention as pa
from tunelab.explain.page import RANDOM, UNSIGNED, _beats, _f, _map, _methods, _num, not_computed
from tunelab.html import escape


def _outcome(ex: Mapping[str, Any]) -> str:
    pred, ans = _map(ex.get("prediction")), _map(ex.get("answer"))
    if pred:
        label, gold, probs = pred.get("label"), pred.get("gold"), _map(pred.get("probs"))
        text = f"Predicted {label} (p = {_f(probs.get(str(label)))})" + (
            f", gold {gold}" if gold is not None else ""
        )
        text += "; " + ", ".join(f"{k} {_f(v)}" for k, v in probs.items()) if probs else ""
        wrong = gold is not None and str(gold) != str(label)
        return h.paragraph(text) + (
            h.notice(f"Misclassified: gold {gold}, predicted {label}") if wrong else ""
        )
    if ans:
        return (
            f"<p>Answer ({escape(ans.get('source', '?'))}, log-probability {escape(_f(ans.get('logprob')))} "
            f"nats):</p><p class='txt'>{escape(ans.get('text', ''))}</p>"
        )
    return ""


def _method_row(name: str, ex: Mapping[str, Any], p: Mapping[str, Any]) -> str:
    res, err = _map(_map(ex.get("methods")).get(name)), _map(ex.get("errors")).get(name)
    fa, rnd = _map(_map(ex.get("faithfulness")).get(name)), _map(_map(ex.get("faithfulness")).get(RANDOM))
    notes = []
    if fa:
        beats = _beats(fa.get("comprehensiveness"), rnd.get("comprehensiveness"))
        notes.append(
            f"comp {_f(fa.get('comprehensiveness'))} · suff {_f(fa.get('sufficiency'))}"
            + (" ✓" if beats else "")
        )
    if res.get("seconds") is not None:
        notes.append(f"{_f(res.get('seconds'), 2)} s")
    notes += [f"{k} {_f(v)}" for k, v in _map(res.get("info")).items() if _num(v) is not None][:2]
    words = list(ex.get("words") or [])
    if err is not None:
        body = h.notice(f"failed: {err}")
    elif not res:
        reason = _map(p.get("skipped")).get(name)
        body = f"<i>{escape('skipped: ' + str(reason) if reason else 'not run on this example')}</i>"
    elif res.get("words") is not None and words:
        body = pa.heat_spans(words, res["words"], name in UNSIGNED)
    else:
        body = pa.heat_spans(ex.get("tokens") or [], res.get("tokens") or [], name in UNSIGNED)
    small = "".join(f"<small>{escape(n)}</small>" for n in notes)
    return _mrow(f"<b>{escape(name)}</b>{small}", body)


def _mrow(name_html: str, body: str) -> str:
    return f"<div class='mrow'><div class='mname'>{name_html}</div><div class='hm'>{body}</div></div>"


def _truncation(ex: Mapping[str, Any], n_tokens: int) -> str:
    """Which end of a truncated input was cut: a causal prompt loses its start, a text its end."""
    n = ex["n_prompt"] if isinstance(ex.get("n_prompt"), int) else n_tokens
    if ex.get("cut") == "start" or (not ex.get("cut") and ex.get("answer")):
        return f"Truncated: the start of the prompt was cut; explained on its last {n} tokens"
    return f"Truncated: the end of the text was cut; explained on the first {n} tokens"


def _conversation(ex: Mapping[str, Any]) -> str:
    """A chat prompt's other turns (system, earlier ones): read by the model, not ranked."""
    turns = ex.get("conversation")
    if not isinstance(turns, list) or len(turns) < 2:
        return ""
    lines = [
        f"<b>{escape(str(_map(m).get('role', '?')))}</b>: {escape(str(_map(m).get('content', '')))}"
        for i, m in enumerate(turns)
        if i != ex.get("turn")
    ]
    return (
        f"<details><summary>{len(lines)} other turn(s) of the conversation (read, not ranked)</summary>"
        f"<p class='txt'>{'<br>'.join(lines)}</p></details>"
    )


def example_card(ex: Mapping[str, Any], p: Mapping[str, Any]) -> str:
    """Text, prediction or answer, one word heatmap per method, the token view and answer-token map."""
    tokens, word_of = list(ex.get("tokens") or []), list(ex.get("word_of") or [])
    names = list(dict.fromkeys([*_methods(p), *map(str, _map(ex.get("errors")))]))
    body = [_conversation(ex), f"<p class='txt'>{escape(ex.get('text', ''))}</p>"]
    if ex.get("truncated"):
        body.append(h.notice(_truncation(ex, len(tokens))))
    body.append(_outcome(ex))
    body += [_method_row(m, ex, p) for m in names]
    special = [not isinstance(w, int) or w < 0 for w in word_of]
    results = {m: _map(_map(ex.get("methods")).get(m)) for m in names}
    tok_rows = [
        _mrow(f"<b>{escape(m)}</b>", pa.heat_spans(tokens, r["tokens"], m in UNSIGNED, special))
        for m, r in results.items()
        if r.get("tokens") is not None
    ]
    if tok_rows:
        body.append(
            f"<details><summary>Token-level view ({len(tokens)} tokens)</summary>"
            f"{''.join(tok_rows)}</details>"
        )
    if ex.get("per_answer_token"):
        ans = _map(ex.get("answer")).get("tokens") or []
        body.append(
            pa.signed_heatmap(
                ex["per_answer_token"], ans, tokens, "score per answer token (rows) × prompt token"
            )
        )
    title = f"Example {ex.get('index', '?')} · {ex.get('source', '?')}" + (
        f" · row {ex['row']}" if ex.get("row") is not None else ""
    )
    return f"<div class='ex'>{h.section(title, ''.join(body), level=3)}</div>"


def examples(p: Mapping[str, Any]) -> str:
    """One card per explained example."""
    exs = [_map(e) for e in p.get("examples") or []]
    if not exs:
        return not_computed(p, "examples")
    return pa.legend() + "".join(example_card(e, p) for e in exs)
