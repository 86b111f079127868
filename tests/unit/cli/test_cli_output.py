"""What the CLI prints on success: the summary, the warnings block, our own model-loading line.

And what it writes: starter recipes fitted to a data file (each one validates), files and folders
with the user's umask.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from tests.helpers import classification_recipe, sentiment_rows, write_csv, write_jsonl

from tunelab.cli.datafit import infer_data
from tunelab.cli.main import main
from tunelab.cli.summary import show_summary
from tunelab.config import load_recipe
from tunelab.config.load import validate_recipe
from tunelab.config.starter import STARTER, fitted_starter
from tunelab.runs import atomic_dir, atomic_write_text


def _imbalanced(tmp_path: Path) -> Path:
    """40 pos, 8 neg and one exact duplicate: one row quarantined, an imbalance warning."""
    rows = [r for r in sentiment_rows(96) if r["label"] == "pos"][:40]
    rows += [r for r in sentiment_rows(96) if r["label"] == "neg"][:8]
    rows.append(dict(rows[0]))
    return write_jsonl(tmp_path / "reviews.jsonl", rows)


def _recipe(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _data_only(tmp_path: Path, data: Path) -> dict:
    run = {"name": "r", "output_dir": str(tmp_path / "runs")}
    return {"run": run, "data": {"sources": [{"path": str(data)}]}}


def test_data_ends_with_a_summary_and_a_warnings_block(tmp_path, capsys):
    data = _imbalanced(tmp_path)
    recipe = _recipe(tmp_path, _data_only(tmp_path, data))
    assert main(["data", str(recipe)]) == 0
    err = capsys.readouterr().err
    run = tmp_path / "runs" / "r"
    summary = json.loads((run / "data/data_report.json").read_text())["summary"]
    assert "summary" in err and "rows read" in err and "quarantined" in err
    assert f"{summary['rows_read']:,}" in err and summary["rows_quarantined"] >= 1
    assert f"train {summary['train_rows']}" in err and f"test {summary['test_rows']}" in err
    assert f"run directory: {run}" in err and f"data report: {run / 'data/data_report.html'}" in err
    after = err.split("data report:")[1]
    assert "warnings" in after and "labels are imbalanced" in after, "the warnings come after the summary"

    # a rerun skips the stage: the same figures and warnings, from what the run recorded
    assert main(["data", str(recipe)]) == 0
    again = capsys.readouterr().err
    assert "data: up to date" in again and "rows read" in again and f"train {summary['train_rows']}" in again
    assert "labels are imbalanced" in again


def test_summary_shows_intervals_and_the_stage_warnings_plainly(tmp_path, capsys):
    results = [
        SimpleNamespace(
            stage="data",
            skipped=False,
            metrics={
                "rows_read": 1200,
                "rows_kept": 1190,
                "rows_quarantined": 10,
                "train_rows": 950,
                "validation_rows": 120,
                "test_rows": 120,
                "warnings": ["odd [red]label[/red]", "two"],
            },
        ),
        SimpleNamespace(
            stage="evaluate",
            skipped=True,
            metrics={"accuracy": {"value": 0.91234, "low": 0.88, "high": 0.94}},
        ),
    ]
    show_summary(results, tmp_path / "run[/b]")
    err = capsys.readouterr().err
    assert "1,200" in err and "train 950 / validation 120 / test 120" in err
    assert "accuracy" in err and "0.9123  [0.880, 0.940]" in err
    assert f"run directory: {tmp_path / 'run[/b]'}" in err
    assert "odd [red]label[/red]" in err and "  - two" in err  # the stage's own list, markup-free


def test_summary_shows_the_explain_figures_page_and_warnings(tmp_path, capsys):
    (tmp_path / "explain").mkdir()
    (tmp_path / "explain/index.html").write_text("<html></html>")
    result = SimpleNamespace(
        stage="explain",
        skipped=False,
        artifacts=["explain/examples.jsonl", "explain/index.html"],
        metrics={
            "examples": 12,
            "most_faithful": "shap",
            "comprehensiveness": 0.41,
            "random_comprehensiveness": 0.02,
            "warnings": ["2 of 12 explained texts were truncated to model.max_length"],
        },
    )
    show_summary([result], tmp_path)
    err = capsys.readouterr().err
    assert "explained" in err and "12 examples" in err
    assert "shap (comprehensiveness 0.410, random 0.020)" in err
    assert f"explain page: {tmp_path / 'explain/index.html'}" in err
    assert "explain: 2 of 12 explained texts were truncated" in err


def test_no_warnings_no_block(tmp_path, capsys):
    result = SimpleNamespace(stage="data", skipped=False, metrics={"rows_read": 3, "warnings": []})
    show_summary([result], tmp_path / "run")
    err = capsys.readouterr().err
    assert "rows read" in err and "\nwarnings" not in err


def test_train_says_new_head_in_one_line_without_the_load_report(tmp_path, tiny_bert, capfd):
    data = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(80))
    raw = classification_recipe(tiny_bert, data, tmp_path / "runs", max_steps=2, eval_every=2)
    raw["train"]["epochs"] = 1
    recipe = _recipe(tmp_path, raw)
    assert main(["data", str(recipe)]) == 0
    capfd.readouterr()
    assert main(["train", str(recipe)]) == 0
    out, err = capfd.readouterr()  # fd-level: transformers' own handler writes to the real stderr
    both = out + err
    assert both.count("new classification head: 2 labels (neg, pos)") == 1, both[-3000:]
    assert "LOAD REPORT" not in both and "MISSING" not in both
    assert "Loading weights" not in both and "Writing model shards" not in both
    assert logging.getLogger("tunelab").handlers == [], "the CLI's log handler is gone after the command"


def test_libraries_are_quiet_only_during_a_command(tmp_path, capsys):
    import transformers.utils.logging as tf_logging

    before = tf_logging.get_verbosity()
    data = _imbalanced(tmp_path)
    recipe = _recipe(tmp_path, _data_only(tmp_path, data))
    assert main(["data", str(recipe)]) == 0
    assert tf_logging.get_verbosity() == before


# -- init ---------------------------------------------------------------------------------------------


def test_init_without_data_writes_the_default_with_guidance(tmp_path, capsys):
    target = tmp_path / "recipe.yaml"
    assert main(["init", str(target)]) == 0
    text = target.read_text()
    assert text == STARTER
    labels_at = text.index("labels: [fresh, rotten]")
    guidance = text[labels_at - 400 : labels_at]
    assert "your own file" in guidance and "delete" in guidance and "edit" in guidance
    assert "columns: {messages:" in text and "columns: {prompt: question, response: answer}" in text
    assert load_recipe(target).data.labels == ["fresh", "rotten"]


def test_init_fits_a_classification_csv(tmp_path, capsys):
    rows = [
        {"id": str(i), "review": r["text"], "sentiment": " Pos" if r["label"] == "pos" else "NEG"}
        for i, r in enumerate(sentiment_rows(60))
    ]
    csv_file = write_csv(tmp_path / "reviews.csv", rows)
    target = tmp_path / "fitted.yaml"
    assert main(["init", str(target), "--data", str(csv_file)]) == 0
    err = capsys.readouterr().err
    assert "task classification" in err and f"wrote {target}" in err
    recipe = load_recipe(target)
    assert recipe.task == "classification"
    assert recipe.data.labels == ["neg", "pos"]
    src = recipe.data.sources[0]
    assert src.path == str(csv_file) and src.columns == {"text": "review", "label": "sentiment"}

    # and the data stage reads the file with it: every row kept but exact duplicates
    raw = yaml.safe_load(target.read_text())
    raw["run"]["output_dir"] = str(tmp_path / "runs")
    assert main(["data", str(_recipe(tmp_path, raw))]) == 0
    report = json.loads((tmp_path / "runs/my-run/data/data_report.json").read_text())
    assert report["summary"]["labels"] == ["neg", "pos"]
    removed = report["removed_by_step"]
    assert not removed.get("format") and not removed.get("labels"), removed  # the mapping and labels fit


def test_init_fits_a_chat_jsonl(tmp_path, capsys):
    rows = [
        {
            "conversation": [
                {"role": "user", "content": f"what is {i} plus 1 ?"},
                {"role": "assistant", "content": f"it is {i + 1} ."},
            ]
        }
        for i in range(40)
    ]
    chat = write_jsonl(tmp_path / "chat.jsonl", rows)
    target = tmp_path / "sft.yaml"
    assert main(["init", str(target), "--data", str(chat)]) == 0
    recipe = load_recipe(target)
    assert recipe.task == "sft" and recipe.data.labels is None
    assert recipe.data.sources[0].columns == {"messages": "conversation"}
    assert "task: sft" in target.read_text()


def test_init_fits_question_answer_pairs(tmp_path):
    rows = [{"question": f"what is {i} plus 2 ?", "answer": f"it is {i + 2} ."} for i in range(30)]
    found = infer_data(write_jsonl(tmp_path / "qa.jsonl", rows))
    assert found.task == "sft" and found.columns == {"prompt": "question", "response": "answer"}


@pytest.mark.parametrize(
    ("label", "task", "labels"),
    [
        (lambda i: round(0.1 + i / 7, 3), "regression", None),
        (lambda i: ["Sports", "news"] if i % 3 else ["news"], "multilabel", ["news", "sports"]),
        (lambda i: i % 2 == 0, "classification", ["false", "true"]),
    ],
    ids=["numbers", "label-sets", "booleans"],
)
def test_init_fits_other_label_shapes(tmp_path, label, task, labels):
    rows = [{"text": f"row number {i}", "label": label(i)} for i in range(30)]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    found = infer_data(path)
    assert (found.task, found.labels) == (task, labels)
    recipe = validate_recipe(yaml.safe_load(fitted_starter(str(path), found)))
    assert recipe.task == task and recipe.data.labels == labels


def test_init_with_a_missing_data_file_writes_nothing(tmp_path, capsys):
    target = tmp_path / "recipe.yaml"
    assert main(["init", str(target), "--data", str(tmp_path / "nope.csv")]) == 1
    assert "nope.csv" in capsys.readouterr().err and not target.exists()


# -- file modes ---------------------------------------------------------------------------------------


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_atomic_writes_follow_the_umask(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "hi\n")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "w.bin").write_bytes(b"x")
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
