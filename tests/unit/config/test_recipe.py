"""Recipe validation: every problem listed with its key path; overrides; shipped recipes valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tunelab.cli.main import main
from tunelab.config import RecipeError, load_recipe, validate_recipe
from tunelab.config.starter import STARTER

ROOT = Path(__file__).resolve().parents[3]
THREE_MISTAKES = """\
run:
  name: demo
  sede: 3
data:
  sources:
    - bundled: rotten_tomatoes
train:
  epochs: many
  warmup_ratio: 1.5
"""


def test_three_mistakes_are_all_reported_with_key_paths(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(THREE_MISTAKES)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    problems = info.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("run.sede (line 3): unknown key")
    assert any(p.startswith("train.epochs (line 8)") and "'many'" in p for p in problems)
    assert any(p.startswith("train.warmup_ratio (line 9)") and "less than 1" in p for p in problems)


def test_cli_validate_lists_every_problem_and_fails(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(THREE_MISTAKES)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    for key in ("run.sede", "train.epochs", "train.warmup_ratio"):
        assert key in err
    assert "Traceback" not in err


def test_overrides_set_nested_keys_with_yaml_types(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(THREE_MISTAKES.replace("  sede: 3\n", "").replace("many", "1").replace("1.5", "0.1"))
    recipe = load_recipe(path, ["train.epochs=3", "model.adapter.method=lora", "train.max_grad_norm=null"])
    assert recipe.train.epochs == 3 and recipe.model.adapter.method == "lora"
    assert recipe.train.max_grad_norm is None
    with pytest.raises(RecipeError) as info:
        load_recipe(path, ["train.batch_size=0", "novalue"])
    assert len(info.value.problems) == 2


def test_nested_list_errors_name_the_index():
    with pytest.raises(RecipeError) as info:
        validate_recipe({"data": {"sources": [{"bundled": "rotten_tomatoes"}, {"pathh": "x.jsonl"}]}})
    assert any(p.startswith("data.sources.1") for p in info.value.problems)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_is_valid(path):
    load_recipe(path)


def test_starter_recipe_is_valid_and_init_writes_it(tmp_path):
    validate_recipe(yaml.safe_load(STARTER))
    target = tmp_path / "recipe.yaml"
    assert main(["init", str(target)]) == 0
    assert target.read_text() == STARTER
    assert main(["init", str(target)]) == 1, "init refuses to overwrite"
