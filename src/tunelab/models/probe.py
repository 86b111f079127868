"""A linear probe on frozen features: how well a base model's representations fit a task, untrained.

Used to rank candidate base models before fine-tuning any of them (``tunelab rank-models``):
features are the mean of the last hidden states over real tokens; the probe is scikit-learn's.
"""

from __future__ import annotations

import time
from typing import Any

PROBE_STRENGTHS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # inverse L2 strengths the probe chooses from


def probe_scores(recipe, train: list[dict], val: list[dict], y_train: Any, kind: str):
    """(validation predictions, parameters, tokens seen, forward seconds) of a probe of ``kind``.

    ``classifier``: class ids; ``regressor``: values; ``multilabel``: per-label probabilities.
    """
    from transformers import AutoModel

    from tunelab.models.resolve import load_kwargs, load_tokenizer, resolve_model_path

    path = resolve_model_path(recipe.model)
    tokenizer = load_tokenizer(recipe.model, path)
    model = AutoModel.from_pretrained(path, **load_kwargs(recipe.model)).eval().to(device())
    bs, width = recipe.train.eval_batch_size, recipe.model.max_length
    x_train, tokens_a, secs_a = mean_pooled(model, tokenizer, [r["text"] for r in train], width, bs)
    x_val, tokens_b, secs_b = mean_pooled(model, tokenizer, [r["text"] for r in val], width, bs)
    if kind == "classifier":
        pred = fit_probe(x_train, list(y_train)).predict(x_val)
    elif kind == "regressor":
        pred = fit_ridge(x_train, y_train).predict(x_val)
    elif kind == "multilabel":
        pred = fit_multilabel_probe(x_train, y_train).predict_proba(x_val)
    else:
        raise ValueError(f"unknown probe kind {kind!r}")
    return pred, parameters(model), tokens_a + tokens_b, secs_a + secs_b


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
    best = max(
        PROBE_STRENGTHS,
        key=lambda c: cross_val_score(probe(c), x, y, cv=folds, scoring="neg_log_loss").mean(),
    )
    return probe(best).fit(x, y)


def fit_ridge(x, y):
    """Standardised ridge regression, its strength picked by cross-validation (scikit-learn)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=[1.0 / c for c in PROBE_STRENGTHS])).fit(x, y)


def fit_multilabel_probe(x, y):
    """One standardised logistic regression per label (a label seen in every row or none is constant)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=0.1, max_iter=2000))).fit(
        x, y
    )


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
            enc = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(model.device)
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


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
