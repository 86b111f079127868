"""The export stage: the run's model as a folder that plain transformers and vLLM load, plus int8
and GGUF forms when asked, with a manifest of file hashes and the run it came from.

Adapters are merged into the base in fp32 (never into a quantized base); the merged folder is then
cast to ``export.dtype``. Everything is written into one temporary folder that replaces
``export/`` in a single rename, so a killed export never leaves a folder that looks whole.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from tunelab.config import Recipe
from tunelab.runs import RunDir, StageResult, atomic_dir, atomic_write_json, file_sha256
from tunelab.serve.config import ExportConfig
from tunelab.tasks import Task, get_task
from tunelab.tasks.base import MODEL_INFO
from tunelab.tasks.windows import LongText

log = logging.getLogger("tunelab")
EXPORT_INFO = "tunelab_export.json"  # inside every exported folder: what it is and where it came from
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def run(
    recipe: Recipe,
    run_dir: RunDir,
    *,
    quantize: str | None = None,
    format: str | None = None,
    dtype: str | None = None,
) -> StageResult:
    """Write ``export/model`` (merged safetensors), ``export/manifest.json`` and the asked-for extras."""
    cfg = _settings(recipe.section("export"), quantize=quantize, format=format, dtype=dtype)
    if cfg.format == "gguf" and recipe.task not in ("sft", "lm"):
        raise ValueError(f"export.format: gguf is for causal LMs (sft, lm); this run's task is {recipe.task}")
    run_dir.require(f"model/{MODEL_INFO}", "train")
    task = get_task(recipe.task)
    labels = run_dir.labels() if task.has_labels else None
    tuned, tokenizer = task.load_tuned(run_dir.model, recipe, labels)
    temperature = _take_temperature(tuned)  # the folder holds raw logits; its info carries T
    reference = probe_logits(tuned, tokenizer)  # base + adapter, before merging changes the weights
    merged = merge(tuned)
    del tuned
    info = {**export_info(recipe, run_dir, task, labels), **temperature}
    metrics: dict[str, Any] = {}
    with atomic_dir(run_dir.path("export")) as tmp:
        save_folder(merged, tokenizer, tmp / "model", info, _dtype(cfg.dtype, merged))
        metrics["merge_max_logit_diff"] = check_reload(task, reference, tmp / "model", tokenizer)
        verify: dict[str, Any] = {"merge": {"max_logit_diff": metrics["merge_max_logit_diff"]}}
        rows = run_dir.split_rows(cfg.quality_split)[: cfg.quality_max_examples]
        if cfg.quantize == "int8":
            from tunelab.serve.quantize import export_int8

            verify["int8"] = export_int8(task, recipe, merged, tokenizer, rows, labels, tmp / "int8", info)
            metrics.update(_int8_headline(verify["int8"]))
        if cfg.format == "gguf":
            verify["gguf"] = _export_gguf(recipe, cfg, tmp, rows)
            metrics["gguf_greedy_identical"] = min(
                v["identical"] / max(v["prompts"], 1) for v in verify["gguf"]
            )
        manifest = {
            **info,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "settings": cfg.model_dump(),
            "verify": verify,
            "files": _hashes(tmp),
        }
        atomic_write_json(tmp / "manifest.json", manifest)
    artifacts = [*sorted(f"export/{p}" for p in manifest["files"]), "export/manifest.json"]
    return StageResult("export", metrics=metrics, artifacts=artifacts)


def _settings(section: ExportConfig, **flags: Any) -> ExportConfig:
    """The recipe's section with the command-line flags that were given applied (and checked)."""
    given = {k: v for k, v in flags.items() if v is not None}
    if not given:
        return section
    from pydantic import ValidationError

    try:
        return ExportConfig.model_validate({**section.model_dump(), **given})
    except ValidationError as exc:
        problems = "; ".join(f"export.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems) from None


def merge(model):
    """The model with any LoRA/DoRA adapter merged in, in fp32: one plain transformers model."""
    if getattr(model, "hf_quantizer", None) is not None or getattr(model.config, "quantization_config", None):
        raise ValueError(
            "the base model is quantized: adapters are merged into fp32/bf16 weights only; "
            "train on an unquantized base to export"
        )
    if hasattr(model, "merge_and_unload"):
        base_dtype = next(model.parameters()).dtype
        model = model.float().merge_and_unload()
        model.config.dtype = base_dtype  # what the base was: export.dtype auto keeps it
    if type(model).__module__.startswith("tunelab."):
        raise ValueError(
            "this run's classifier uses a tunelab head (model.head.type linear/mlp), which plain "
            "transformers cannot load: train with model.head.type: auto to export it"
        )
    return model.eval()


def export_info(recipe: Recipe, run_dir: RunDir, task: Task, labels: list[str] | None) -> dict[str, Any]:
    """What the exported folder is, and the run (and training) it came from."""
    manifest = run_dir.read_manifest()
    train = (manifest.get("stages") or {}).get("train") or {}
    evaluate = (manifest.get("stages") or {}).get("evaluate") or {}
    return {
        "task": task.name,
        "labels": labels,
        "run": {
            "name": recipe.run.name,
            "dir": str(run_dir.root.resolve()),
            "train_run_id": train.get("run_id"),
            "train_fingerprint": train.get("fingerprint"),
        },
        "base_model": recipe.model.name,
        "adapter": recipe.model.adapter.method,
        "max_length": recipe.model.max_length,
        **LongText.of(recipe.model).info(),  # how a longer text is read: truncate, head_tail or chunk
        "evaluation": evaluate.get("summary", {}),
    }


def save_folder(model, tokenizer, folder: Path, info: dict[str, Any], dtype: torch.dtype) -> None:
    """``save_pretrained`` of model, tokenizer (with its chat template) and generation config."""
    folder.mkdir(parents=True)
    model = model.to(dtype) if dtype != torch.float32 else model
    if info["task"] in ("sft", "lm"):
        _generation_defaults(model, tokenizer)
    model.save_pretrained(folder)  # safetensors; tied embeddings saved once and re-tied on load
    tokenizer.save_pretrained(folder)
    atomic_write_json(folder / EXPORT_INFO, info)
    if dtype != torch.float32:
        model.float()


def _generation_defaults(model, tokenizer) -> None:
    """Stop on the tokenizer's eos and the chat end token, pad with the pad token (vLLM reads these)."""
    from tunelab.models.decoding import eos_ids, pad_id

    gc = model.generation_config
    ends = eos_ids(tokenizer)
    gc.eos_token_id = ends if len(ends) > 1 else ends[0]
    gc.pad_token_id = pad_id(tokenizer)


PROBE_TEXTS = ("The film was a delight from start to finish.", "Tell me about the weather today.")


@torch.no_grad()
def probe_logits(model, tokenizer) -> torch.Tensor:
    """fp32 logits of ``model`` on two probe texts (real positions only, for a causal LM)."""
    enc = tokenizer(list(PROBE_TEXTS), return_tensors="pt", padding=True)
    logits = model.float()(**enc).logits
    return logits[enc["attention_mask"].bool()] if logits.dim() == 3 else logits


@torch.no_grad()
def check_reload(task: Task, reference: torch.Tensor, folder: Path, tokenizer) -> float:
    """Largest logit difference between base + adapter (``reference``) and the merged folder reloaded.

    Also checks that tied input and output embeddings come back tied (a reload that unties them
    would double the size and let them drift apart on further training).
    """
    reloaded = task.auto_class().from_pretrained(str(folder), use_safetensors=True, dtype=torch.float32)
    reloaded.eval()
    if getattr(reloaded.config.get_text_config(), "tie_word_embeddings", False):
        out, inp = reloaded.get_output_embeddings(), reloaded.get_input_embeddings()
        if out is not None and out.weight.data_ptr() != inp.weight.data_ptr():
            raise RuntimeError(f"{folder}: tied embeddings came back untied after reload")
    return float((probe_logits(reloaded, tokenizer) - reference).abs().max())


def _take_temperature(model) -> dict[str, float]:
    """``{"temperature": T}`` of a calibrated classifier (taken off the model, so the exported weights
    and the checks compare raw logits; servers divide by T), else ``{}``."""
    from tunelab.tasks.calibration import remove_temperature

    temperature = remove_temperature(model)
    return {"temperature": temperature} if temperature is not None else {}


def _dtype(name: str, model) -> torch.dtype:
    if name == "auto":
        got = getattr(model.config, "dtype", None)
        return got if isinstance(got, torch.dtype) else torch.float32
    return DTYPES[name]


def _int8_headline(report: dict[str, Any]) -> dict[str, Any]:
    change = report.get("change", {})
    return {f"int8_{k}_change": v for k, v in change.items()}


def _export_gguf(recipe: Recipe, cfg: ExportConfig, tmp: Path, rows: list[dict]) -> list[dict[str, Any]]:
    """GGUF files of the merged folder, each loaded back and compared with it on a few prompts."""
    from tunelab.serve.gguf import compare_greedy, write_gguf

    prompts = [_prompt_of(r) for r in rows[: cfg.verify_prompts]]
    out = []
    for gguf_type in cfg.gguf_types:
        target = tmp / "gguf" / f"model-{gguf_type}.gguf"
        target.parent.mkdir(exist_ok=True)
        written = write_gguf(tmp / "model", target, gguf_type)
        checked = compare_greedy(target, tmp / "model", prompts, cfg.verify_max_new_tokens) if prompts else {}
        out.append({**written, "prompts": len(prompts), "identical": checked.get("identical", 0), **checked})
    return out


def _prompt_of(row: dict) -> str:
    """The user prompt of an sft row (its last user turn) or the opening of an lm text."""
    messages = row.get("messages")
    if isinstance(messages, list):
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        if users:
            return str(users[-1])
    return str(row.get("prompt") or row.get("text") or "")[:200]


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def read_export_info(folder: Path) -> dict[str, Any] | None:
    """The ``tunelab_export.json`` of an exported folder, or None for any other model folder."""
    path = folder / EXPORT_INFO
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
