"""`tunelab export`: merged folders that plain transformers reloads, int8 with its measured cost, GGUF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from tunelab.runs import file_sha256

PROMPTS = ["hello", "what is the capital of france", "tell me a joke"]


def _base_plus_adapter(recipe, root: Path, kind):
    """The run's base model with its saved adapter, loaded with peft alone (not tunelab's loader)."""
    from peft import PeftModel

    base_kw = {"dtype": torch.float32}
    if kind is AutoModelForSequenceClassification:
        labels = json.loads((root / "data" / "labels.json").read_text())
        labels = labels["labels"] if isinstance(labels, dict) else labels
        base_kw |= {"num_labels": len(labels)}
    base = kind.from_pretrained(recipe.model.name, **base_kw)
    return PeftModel.from_pretrained(base, str(root / "model")).eval()


def _greedy(model, tok, prompt: str) -> list[int]:
    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    ids = tok(text, add_special_tokens=False, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id)
    return out[0, ids["input_ids"].shape[1] :].tolist()


@torch.no_grad()
def test_merged_causal_lm_equals_base_plus_adapter_and_stays_tied(sft_exported):
    recipe, root = sft_exported
    folder = root / "export" / "model"
    merged = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    reference = _base_plus_adapter(recipe, root, AutoModelForCausalLM)
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    mask = enc["attention_mask"].bool()
    diff = (merged(**enc).logits[mask] - reference(**enc).logits[mask]).abs().max().item()
    assert diff < 1e-3
    assert [_greedy(merged, tok, p) for p in PROMPTS] == [_greedy(reference, tok, p) for p in PROMPTS]
    # tied embeddings: one tensor in the file, one tensor after reload
    assert merged.get_output_embeddings().weight.data_ptr() == merged.get_input_embeddings().weight.data_ptr()
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        assert not any(k.startswith("lm_head") for k in fh.keys())  # noqa: SIM118
    assert tok.chat_template and (folder / "generation_config.json").is_file()
    assert json.loads((folder / "generation_config.json").read_text())["eos_token_id"] == tok.eos_token_id


def test_manifest_hashes_every_file_and_names_the_run(sft_exported):
    _, root = sft_exported
    manifest = json.loads((root / "export" / "manifest.json").read_text())
    train = json.loads((root / "manifest.json").read_text())["stages"]["train"]
    assert manifest["run"]["train_run_id"] == train["run_id"] and manifest["task"] == "sft"
    assert manifest["verify"]["merge"]["max_logit_diff"] < 1e-3
    files = {p.relative_to(root / "export").as_posix() for p in (root / "export").rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"manifest.json"}
    for name, digest in manifest["files"].items():
        assert file_sha256(root / "export" / name) == digest


def test_int8_export_records_its_measured_quality_change(sft_exported):
    recipe, root = sft_exported
    from tunelab.serve.quantize import load_int8, measure
    from tunelab.tasks import get_task

    report = json.loads((root / "export" / "int8" / "quality.json").read_text())
    assert report["split"] == "test" and report["n_examples"] > 0
    fp32, int8 = report["fp32"]["perplexity"], report["int8"]["perplexity"]
    assert report["change"]["perplexity"] == pytest.approx(int8 - fp32)
    assert int8 != fp32  # int8 really changed the weights
    # the recorded int8 figure is what the saved int8 folder gives when loaded back
    task = get_task("sft")
    model = load_int8(root / "export" / "int8", AutoModelForCausalLM)
    tok = AutoTokenizer.from_pretrained(root / "export" / "int8")
    rows = [json.loads(x) for x in (root / "data" / "test.jsonl").read_text().splitlines()]
    again = measure(task, model, tok, rows[: report["n_examples"]], recipe, None)
    assert again["perplexity"] == pytest.approx(int8, rel=1e-5)


def test_gguf_export_loads_back_and_answers_like_the_merged_model(sft_exported):
    _, root = sft_exported
    from tunelab.serve.gguf import compare_greedy

    manifest = json.loads((root / "export" / "manifest.json").read_text())
    checked = {g["gguf_type"]: g for g in manifest["verify"]["gguf"]}
    assert set(checked) == {"f16", "q8_0"}
    assert checked["f16"]["prompts"] == 3 and checked["f16"]["identical"] == 3
    again = compare_greedy(root / "export" / "gguf" / "model-f16.gguf", root / "export" / "model", PROMPTS, 8)
    assert again["identical"] == len(PROMPTS) and again["tokenizer_identical"]


@torch.no_grad()
def test_merged_classifier_keeps_labels_and_probabilities(cls_exported):
    recipe, root = cls_exported
    folder = root / "export" / "model"
    merged = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    labels = json.loads((folder / "tunelab_export.json").read_text())["labels"]
    assert [merged.config.id2label[i] for i in range(len(labels))] == labels
    reference = _base_plus_adapter(recipe, root, AutoModelForSequenceClassification)
    enc = tok(["a fine and moving film", "dull and tiresome"], return_tensors="pt", padding=True)
    assert torch.allclose(merged(**enc).logits.softmax(-1), reference(**enc).logits.softmax(-1), atol=1e-5)
    report = json.loads((root / "export" / "int8" / "quality.json").read_text())
    assert {"accuracy", "loss"} <= set(report["change"])


def test_export_flags_rerun_and_a_gguf_for_a_classifier_is_refused(cls_exported, capsys):
    from tunelab.cli.main import main

    _, root = cls_exported
    code = main(["export", str(root), "--format", "gguf"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "gguf is for causal LMs" in err
    assert (root / "export" / "model" / "config.json").is_file()  # the earlier export is untouched
