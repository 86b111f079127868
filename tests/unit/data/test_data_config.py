"""The data section rejects bad values with their key path."""

from __future__ import annotations

import pytest

from tunelab.config import RecipeError, validate_recipe


def problems(data: dict) -> list[str]:
    with pytest.raises(RecipeError) as info:
        validate_recipe({"data": data})
    return info.value.problems


SRC = [{"path": "x.jsonl"}]


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"sources": []}, "data.sources", "at least 1"),
        ({"sources": [{"path": "a", "bundled": "chatterbot"}]}, "data.sources.0", "exactly one"),
        ({"sources": [{"bundled": "imdb"}]}, "data.sources.0.bundled", "rotten_tomatoes"),
        ({"sources": [{"path": "a", "columns": {"txt": "body"}}]}, "data.sources.0.columns", "unknown field"),
        ({"sources": [{"path": "a", "weight": 0}]}, "data.sources.0.weight", "greater than 0"),
        ({"sources": [{"path": "a", "max_rows": 0}]}, "data.sources.0.max_rows", "greater than or equal"),
        ({"sources": [{"path": "a", "split": "dev"}]}, "data.sources.0.split", "validation"),
        ({"sources": SRC, "split": {"validation": 0.6, "test": 0.5}}, "data.split", "sum < 1"),
        ({"sources": SRC, "split": {"test": -0.1}}, "data.split.test", "greater than or equal"),
        ({"sources": SRC, "dedup": {"near": {"threshold": 1.5}}}, "data.dedup.near.threshold", "less than"),
        ({"sources": SRC, "dedup": {"near": {"num_perm": 8}}}, "data.dedup.near.num_perm", "greater"),
        ({"sources": SRC, "clean": {"pii": {"types": ["ssn"]}}}, "data.clean.pii.types.0", "email"),
        (
            {"sources": SRC, "clean": {"length": {"min_chars": 9, "max_chars": 3}}},
            "data.clean.length",
            "exceed",
        ),
        ({"sources": SRC, "clean": {"unicode": {"form": "NFX"}}}, "data.clean.unicode.form", "NFKC"),
        ({"sources": SRC, "clean": {"htm": {}}}, "data.clean.htm", "unknown key"),
        ({"sources": SRC, "labels": []}, "data.labels", "non-empty"),
        ({"sources": SRC, "on_malformed": "skip"}, "data.on_malformed", "quarantine"),
    ],
)
def test_bad_values_name_their_key(data: dict, key: str, words: str) -> None:
    found = problems(data)
    assert any(p.startswith(f"{key}:") and words in p for p in found), found


def test_defaults() -> None:
    r = validate_recipe({"data": {"sources": [{"bundled": "rotten_tomatoes"}]}})
    d = r.data
    assert d.clean.steps == ["unicode", "html", "whitespace", "pii", "labels", "length"]
    assert d.dedup.exact and d.dedup.near.enabled and d.dedup.near.threshold == 0.8
    assert d.split.validation == d.split.test == 0.1 and d.split.group_by is None
