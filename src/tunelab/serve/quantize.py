"""Dynamic int8 quantization for CPU inference: int8 linear weights (per output channel), int8
activations quantized on the fly, everything else fp32. The quality change is measured on a split.

The quantized model is PyTorch's eager dynamic quantization (``torch.ao.quantization``; its
successor, torchao, has no CPU wheel for every torch here). Its modules cannot be
``save_pretrained``-ed, so the folder holds the int8 weights, their scales and the remaining fp32
tensors in one safetensors file, and :func:`load_int8` rebuilds the model from it.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from tunelab.config import Recipe
from tunelab.runs import atomic_write_json
from tunelab.tasks import Task

WEIGHTS = "model-int8.safetensors"
SPEC = "quantization.json"


def _qconfig():
    with warnings.catch_warnings():  # torch.ao is deprecated in favour of torchao; still the CPU path here
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    return per_channel_dynamic_qconfig, quantize_dynamic


def quantize_int8(model):
    """A dynamically quantized copy of ``model``: every ``nn.Linear`` gets int8 per-channel weights."""
    qconfig, quantize_dynamic = _qconfig()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model).float().eval(), {torch.nn.Linear: qconfig}, torch.qint8)


def _quantized_linears(model) -> dict[str, Any]:
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    return {name: m for name, m in model.named_modules() if isinstance(m, QLinear)}


def save_int8(qmodel, folder: Path) -> int:
    """Write the int8 weights, scales and fp32 rest of ``qmodel`` into ``folder``; returns bytes written."""
    tensors: dict[str, torch.Tensor] = {}
    linears = _quantized_linears(qmodel)
    for name, mod in linears.items():
        w, b = mod._packed_params._weight_bias()
        tensors[f"{name}.weight.int8"] = w.int_repr().contiguous()
        tensors[f"{name}.weight.scale"] = w.q_per_channel_scales().float().contiguous()
        if b is not None:
            tensors[f"{name}.bias"] = b.detach().contiguous()
    seen: set[int] = set()
    for key, value in qmodel.state_dict().items():
        if not isinstance(value, torch.Tensor) or value.is_quantized:
            continue
        if any(key.startswith(f"{name}.") for name in linears) or value.data_ptr() in seen:
            continue  # packed params of a quantized linear, or a tied tensor already written
        seen.add(value.data_ptr())
        tensors[key] = value.detach().contiguous()
    save_file(tensors, str(folder / WEIGHTS), metadata={"format": "tunelab-int8-dynamic"})
    spec = {"scheme": "dynamic int8, per-channel symmetric weights", "linears": sorted(linears)}
    atomic_write_json(folder / SPEC, spec)
    return (folder / WEIGHTS).stat().st_size


def load_int8(folder: Path, auto_class):
    """The dynamically quantized model saved by :func:`save_int8` (with its config in ``folder``)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(folder))
    model = auto_class.from_config(config).float().eval()
    tensors = load_file(str(folder / WEIGHTS))
    plain = {k: v for k, v in tensors.items() if not k.endswith((".weight.int8", ".weight.scale"))}
    missing, _ = model.load_state_dict(plain, strict=False)
    qmodel = quantize_int8(model)
    for name, mod in _quantized_linears(qmodel).items():
        q = tensors[f"{name}.weight.int8"]
        scale = tensors[f"{name}.weight.scale"].double()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qw = torch._make_per_channel_quantized_tensor(
                q, scale, torch.zeros_like(scale, dtype=torch.long), 0
            )
        mod.set_weight_bias(qw, tensors.get(f"{name}.bias"))
    names = _quantized_linears(qmodel)
    lost = [k for k in missing if k.rsplit(".", 1)[0] not in names]
    if lost:
        raise ValueError(f"{folder / WEIGHTS} lacks {len(lost)} tensors (first: {lost[0]}): export again")
    return qmodel


@torch.no_grad()
def measure(task: Task, model, tokenizer, rows: list[dict], recipe: Recipe, labels) -> dict[str, float]:
    """The task's validation figures on ``rows`` (accuracy or perplexity, and the loss) and the time taken."""
    from tunelab.batching import eval_batches

    feats = task.encode(rows, tokenizer, recipe, labels)
    began = time.perf_counter()
    figures = task.validate(model, eval_batches(feats, task, tokenizer, recipe.train.eval_batch_size))
    figures["seconds"] = time.perf_counter() - began
    return {k: float(v) for k, v in figures.items() if isinstance(v, int | float) and math.isfinite(v)}


def export_int8(
    task: Task, recipe: Recipe, merged, tokenizer, rows: list[dict], labels, folder: Path, info: dict
) -> dict[str, Any]:
    """Quantize ``merged``, save it with its tokenizer and config, and measure what int8 costs."""
    folder.mkdir(parents=True)
    qmodel = quantize_int8(merged)
    size = save_int8(qmodel, folder)
    merged.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    source = folder.parent / "model"
    if (source / "generation_config.json").is_file():
        shutil.copy2(source / "generation_config.json", folder / "generation_config.json")
    fp32 = measure(task, merged.float(), tokenizer, rows, recipe, labels)
    int8 = measure(task, load_int8(folder, task.auto_class()), tokenizer, rows, recipe, labels)
    change = {k: int8[k] - fp32[k] for k in fp32 if k in int8 and k != "seconds"}
    fp32_bytes = sum(p.numel() * 4 for p in merged.parameters())
    report = {
        "split": recipe.section("export").quality_split,
        "n_examples": len(rows),
        "fp32": fp32,
        "int8": int8,
        "change": change,
        "speedup": fp32["seconds"] / int8["seconds"] if int8.get("seconds") else None,
        "bytes": {"fp32_parameters": fp32_bytes, "int8_file": size},
    }
    atomic_write_json(folder / "quality.json", report)
    (folder / "tunelab_export.json").write_text(json.dumps({**info, "quantization": "int8"}, indent=2))
    return report
