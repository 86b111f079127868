"""Rank candidate base models on a sample of the run's data, before fine-tuning any of them.

Each task registers how a frozen model is scored: classification fits a linear probe (logistic
regression) on mean-pooled features of a train sample and reports accuracy on a validation sample;
sft reports the perplexity of the answer tokens of a validation sample. Cost is reported beside the
score: parameter count and tokens/s measured while scoring.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tunelab.config import Recipe
from tunelab.config.search import SearchConfig
from tunelab.registry import Registry
from tunelab.runs import RunDir, atomic_write_json


@dataclass
class Scored:
    """One candidate's score and what it cost (forward passes only)."""

    score: float
    parameters: int
    tokens: int
    seconds: float


@dataclass(frozen=True)
class Ranker:
    metric: str
    higher_is_better: bool
    kind: str  # bundled models of this kind are the default candidates
    score: Callable[[Recipe, list[dict[str, Any]], list[dict[str, Any]], list[str] | None], Scored]


RANKERS: Registry[Ranker] = Registry("model ranking (by task)")
PROBE_STRENGTHS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # inverse L2 strengths the probe chooses from


def rank_models(recipe: Recipe, run_dir: RunDir, candidates: list[str] | None = None) -> dict[str, Any]:
    """Score every candidate on the run's prepared data; write and return ``metrics/model_ranking.json``."""
    from tunelab.stages import load_labels, load_split

    ranker = RANKERS.get(recipe.task)
    cfg = recipe.search or SearchConfig()
    names = list(dict.fromkeys(candidates or cfg.candidates or default_candidates(recipe, ranker.kind)))
    rng = random.Random(recipe.run.seed)
    train = _sample(load_split(run_dir, "train"), cfg.rank_train_rows, rng)
    val = _sample(load_split(run_dir, "validation"), cfg.rank_eval_rows, rng)
    if not val:
        raise ValueError("the validation split is empty: set data.split.validation above 0 to rank models")
    labels = load_labels(run_dir, recipe)
    entries = [_score_one(ranker, recipe, name, train, val, labels) for name in names]
    if all(e["error"] for e in entries):
        raise ValueError("no candidate could be scored:\n" + "\n".join(f"  {e['name']}: {e['error']}"
                                                                       for e in entries))
    sign = -1.0 if ranker.higher_is_better else 1.0
    entries.sort(key=lambda e: (e["score"] is None, sign * (e["score"] or 0.0)))  # failures last
    for i, e in enumerate(entries, 1):
        e["rank"] = i
    ranking = {
        "task": recipe.task,
        "metric": ranker.metric,
        "higher_is_better": ranker.higher_is_better,
        "train_rows": len(train),
        "eval_rows": len(val),
        "seed": recipe.run.seed,
        "candidates": entries,
    }
    atomic_write_json(run_dir.metrics / "model_ranking.json", ranking)
    return ranking


def default_candidates(recipe: Recipe, kind: str) -> list[str]:
    """The recipe's model, then the bundled models that suit the task."""
    from tunelab.models.bundled import BUNDLED_MODELS, bundled_model

    own = bundled_model(recipe.model.name)
    bundled = [m.alias for m in BUNDLED_MODELS.values() if m.kind == kind and m is not own]
    return [recipe.model.name, *bundled]


def _score_one(ranker: Ranker, recipe: Recipe, name: str, train, val, labels) -> dict[str, Any]:
    from transformers import set_seed

    entry: dict[str, Any] = {"name": name, "score": None, "parameters": None, "tokens_per_s": None,
                             "seconds": 0.0, "error": None}
    candidate = recipe.model_copy(update={"model": recipe.model.model_copy(update={"name": name})})
    start = time.perf_counter()
    try:
        set_seed(recipe.run.seed)
        scored = ranker.score(candidate, train, val, labels)
    except Exception as exc:  # one candidate that cannot load must not hide the others' scores
        entry["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    else:
        entry.update(score=scored.score, parameters=scored.parameters,
                     tokens_per_s=scored.tokens / max(scored.seconds, 1e-9))
    entry["seconds"] = round(time.perf_counter() - start, 2)
    return entry


def _sample(rows: list[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    return rows if len(rows) <= n else rng.sample(rows, n)


def linear_probe(recipe: Recipe, train, val, labels: list[str] | None) -> Scored:
    """Validation accuracy of logistic regression on frozen mean-pooled features."""
    from transformers import AutoModel

    from tunelab.models.resolve import load_kwargs, load_tokenizer, resolve_model_path

    ids_of = {lab: i for i, lab in enumerate(labels or [])}
    if len({r["label"] for r in train}) < 2:
        raise ValueError("the train sample holds one label only; raise search.rank_train_rows")
    path = resolve_model_path(recipe.model)
    tokenizer = load_tokenizer(recipe.model, path)
    model = AutoModel.from_pretrained(path, **load_kwargs(recipe.model)).eval().to(_device())
    bs, width = recipe.train.eval_batch_size, recipe.model.max_length
    x_train, tokens_a, secs_a = mean_pooled(model, tokenizer, [r["text"] for r in train], width, bs)
    x_val, tokens_b, secs_b = mean_pooled(model, tokenizer, [r["text"] for r in val], width, bs)
    probe = fit_probe(x_train, [ids_of[r["label"]] for r in train])
    accuracy = float((probe.predict(x_val) == [ids_of[r["label"]] for r in val]).mean())
    return Scored(accuracy, _parameters(model), tokens_a + tokens_b, secs_a + secs_b)


def fit_probe(x, y: list[int]):
    """Standardised logistic regression, its L2 strength picked by 5-fold log loss on the train sample.

    A fixed strength would favour one feature width: 384 features on 1000 rows overfit at C=1.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def probe(c: float):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    folds = max(2, min(5, *(y.count(k) for k in set(y))))
    best = max(PROBE_STRENGTHS,
               key=lambda c: cross_val_score(probe(c), x, y, cv=folds, scoring="neg_log_loss").mean())
    return probe(best).fit(x, y)


def mean_pooled(model, tokenizer, texts: list[str], max_length: int, batch_size: int):
    """(features [n, hidden], tokens seen, forward seconds): the mean of the last hidden states."""
    import numpy as np
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths: less padding
    out: list[Any] = [None] * len(texts)
    tokens, seconds = 0, 0.0
    with torch.no_grad():
        for at in range(0, len(order), batch_size):
            idx = order[at : at + batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt").to(model.device)
            mask = enc["attention_mask"]
            start = time.perf_counter()
            hidden = model(input_ids=enc["input_ids"], attention_mask=mask).last_hidden_state.float()
            seconds += time.perf_counter() - start
            m = mask.unsqueeze(-1).float()
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            tokens += int(mask.sum())
            for i, row in zip(idx, pooled.cpu().numpy(), strict=True):
                out[i] = row
    return np.stack(out), tokens, seconds


def answer_perplexity(recipe: Recipe, train, val, labels=None) -> Scored:
    """Perplexity of the answer tokens of the validation sample (prompts are context only)."""
    from tunelab.tasks import get_task
    from tunelab.train.batching import eval_batches

    task = get_task(recipe.task)
    model, tokenizer = task.load_base(recipe)
    model.eval().to(_device())
    features = task.encode(val, tokenizer, recipe)
    if not features:
        raise ValueError(f"every answer is truncated away at model.max_length={recipe.model.max_length}")
    batches = eval_batches(features, task, tokenizer, recipe.train.eval_batch_size)
    start = time.perf_counter()
    pairs = task.example_nll(model, ({k: v.to(model.device) for k, v in b.items()} for b in batches))
    seconds = time.perf_counter() - start
    nll, n = sum(s for s, _ in pairs), sum(k for _, k in pairs)
    tokens = sum(len(f["input_ids"]) for f in features)
    return Scored(math.exp(min(nll / max(n, 1), 50.0)), _parameters(model), tokens, seconds)


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


RANKERS.register("classification")(Ranker("probe_accuracy", True, "encoder", linear_probe))
RANKERS.register("sft")(Ranker("perplexity", False, "causal-lm", answer_perplexity))
