"""README "The run directory" and "Models": every file and folder appears in one rename, so a write that
dies half way is never trusted later: resume takes the previous complete checkpoint, the data stage
reruns, the GGUF conversion is redone. Each write here fails inside its atomic write, after part of
the content is on disk, as a kill would leave it."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from tests.guarantees.runs_helpers import assert_same_weights, checkpoint_steps, prepared_run
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl

import tunelab.train.checkpoint as checkpoint
from tunelab.config import validate_recipe
from tunelab.pipeline import run_stage


class Killed(RuntimeError):
    """Stands in for the process dying in the middle of a write."""


# --- checkpoints -------------------------------------------------------------------------------------
def test_a_checkpoint_killed_while_written_is_never_resumed_from(straight_run, tiny_bert, tmp_path,
                                                                 monkeypatch):
    straight, sched = straight_run
    recipe, run, _ = prepared_run(tiny_bert, tmp_path)
    every = sched["save_every"]
    doomed = f"step-{2 * every:08d}"
    leftovers = run / "checkpoints" / f".{doomed}.killed"
    real_write = checkpoint.atomic_write_json

    def dying_write(path: Path, obj) -> None:
        if doomed in str(path):  # the last file of that checkpoint: weights and optimiser already written
            path.write_text(json.dumps(obj)[:50])
            shutil.copytree(path.parent, leftovers)  # what a SIGKILL leaves behind (no cleanup runs)
            raise Killed(doomed)
        real_write(path, obj)

    monkeypatch.setattr(checkpoint, "atomic_write_json", dying_write)
    with pytest.raises(Killed):
        run_stage("train", recipe)
    monkeypatch.undo()

    assert leftovers.is_dir() and (leftovers / "trainable.safetensors").is_file()
    assert checkpoint_steps(run) == [f"step-{every:08d}"], "only the complete checkpoint is visible"
    assert checkpoint.latest_checkpoint(run / "checkpoints") == run / "checkpoints" / f"step-{every:08d}"
    result = run_stage("train", recipe, resume=True)
    assert result.metrics["resumed_from_step"] == every
    assert_same_weights(straight, run)  # the log: see test_guarantee_resume.py


# --- data stage outputs --------------------------------------------------------------------------------
def _data_recipe(model: Path, tmp: Path, out: Path):
    data = tmp / "reviews.jsonl"
    if not data.exists():
        write_jsonl(data, sentiment_rows(120))
    return validate_recipe(classification_recipe(model, data, out))


SPLIT_OUTPUTS = ("train.jsonl", "validation.jsonl", "test.jsonl", "quarantine.jsonl", "labels.json")


def test_a_data_stage_killed_while_writing_a_split_reruns(tiny_bert, tmp_path, monkeypatch):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell which file is being written")
    recipe = _data_recipe(tiny_bert, tmp_path, tmp_path / "runs")
    run = recipe.run_dir_path()
    real_fsync = os.fsync

    def dying_fsync(fd: int) -> None:  # the split's bytes are written, the rename has not happened
        if "validation.jsonl" in Path(os.readlink(f"/proc/self/fd/{fd}")).name:
            raise Killed("validation.jsonl")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", dying_fsync)
    with pytest.raises(Killed):
        run_stage("data", recipe)
    monkeypatch.undo()

    assert (run / "data/train.jsonl").is_file(), "the scenario: one split was written before the kill"
    assert not (run / "data/validation.jsonl").exists(), "a split written half way must not look whole"
    assert not (run / "data/test.jsonl").exists()
    assert not [p.name for p in (run / "data").iterdir() if p.name.endswith(".tmp")]
    assert json.loads((run / "manifest.json").read_text())["stages"]["data"]["status"] == "failed"

    again = run_stage("data", recipe)
    assert not again.skipped, "a stage that died is redone, not trusted"
    clean = _data_recipe(tiny_bert, tmp_path, tmp_path / "clean")
    run_stage("data", clean)
    for name in SPLIT_OUTPUTS:
        assert (run / "data" / name).read_bytes() == (clean.run_dir_path() / "data" / name).read_bytes(), name
    assert run_stage("data", recipe).skipped  # and once complete, it is current


# --- the GGUF conversion cache -------------------------------------------------------------------------
def test_a_killed_gguf_conversion_is_redone(tiny_llama, tmp_path, monkeypatch, tunelab_cache):
    pytest.importorskip("gguf")
    import transformers

    from tunelab.models.gguf_cache import converted_gguf_folder
    from tunelab.models.resolve import cache_root

    assert cache_root() == tunelab_cache, "TUNELAB_CACHE moves the cache (here: this session's folder)"
    real_model, real_tok = transformers.AutoModelForCausalLM, transformers.AutoTokenizer
    conversions: list[str] = []
    die = {"now": True}

    class FakeModelLoader:  # "dequantise" the GGUF file: here, load the tiny Llama
        @staticmethod
        def from_pretrained(folder, gguf_file=None, **kw):
            conversions.append(gguf_file)
            return real_model.from_pretrained(str(tiny_llama), **kw)

    class FakeTokenizerLoader:
        @staticmethod
        def from_pretrained(folder, gguf_file=None, **kw):
            tok = real_tok.from_pretrained(str(tiny_llama))
            if die["now"]:  # the model files are written by then: config.json, model.safetensors
                def dying_save(target, *a, **k):
                    (Path(target) / "tokenizer.json").write_text("{")
                    raise Killed("conversion")

                tok.save_pretrained = dying_save
            return tok

    monkeypatch.setattr(transformers, "AutoModelForCausalLM", FakeModelLoader)
    monkeypatch.setattr(transformers, "AutoTokenizer", FakeTokenizerLoader)
    gguf_file = tmp_path / "model.Q8_0.gguf"
    gguf_file.write_bytes(b"GGUF")
    target = cache_root() / "models" / f"tiny-{uuid.uuid4().hex[:8]}"

    with pytest.raises(Killed):
        converted_gguf_folder(gguf_file, target)
    assert not target.exists(), "a conversion killed half way leaves no folder that looks converted"

    die["now"] = False
    assert converted_gguf_folder(gguf_file, target) == target
    assert len(conversions) == 2, "the killed conversion was redone"
    assert converted_gguf_folder(gguf_file, target) == target
    assert len(conversions) == 2, "a complete conversion is reused"
    monkeypatch.undo()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(target), use_safetensors=True)
    assert model.config.num_hidden_layers == 2
    assert transformers.AutoTokenizer.from_pretrained(str(target)).chat_template
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")], "no temporary folder left"
