"""What ``tunelab serve`` serves: a run directory, a recipe, or a model folder, loaded once.

A run directory serves its export (``export/model``) when there is one, else its trained model
with any adapter merged in memory. A folder is an export (``tunelab_export.json`` says what it
is), an int8 export, or any transformers folder whose architecture says its kind. Only
safetensors are loaded.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from tunelab.runs import MissingArtifactError, RunDir
from tunelab.serve.export import EXPORT_INFO, read_export_info
from tunelab.tasks.base import MODEL_INFO
from tunelab.tasks.windows import LongText

Kind = Literal["causal", "classifier", "encoder"]
KIND_OF_TASK: dict[str, Kind] = {"sft": "causal", "lm": "causal", "classification": "classifier"}


@dataclass
class Served:
    kind: Kind
    model_id: str
    model: Any
    tokenizer: Any
    labels: list[str] | None = None
    max_length: int = 512  # classify/embeddings inputs are truncated to this many tokens
    context: int = 2048  # a causal model's positions: prompt plus new tokens
    info: dict[str, Any] = field(default_factory=dict)  # task, run, evaluation figures
    created: int = field(default_factory=lambda: int(time.time()))
    source: str = ""


def load_served(target: Path, model_id: str | None = None) -> Served:
    """Load what ``target`` names (see the module docstring)."""
    target = Path(target).expanduser()
    if target.is_file() and target.suffix in (".yaml", ".yml"):
        from tunelab.config import load_recipe

        target = load_recipe(target).run_dir_path()
    if not target.exists():
        raise FileNotFoundError(f"{target} does not exist: give a run directory, a recipe or a model folder")
    if (target / "manifest.json").is_file():
        return _from_run(RunDir(target), model_id)
    if (target / "config.json").is_file():
        return _from_folder(target, model_id or target.name)
    raise ValueError(
        f"{target} is neither a run directory (no manifest.json) nor a model folder (no config.json): "
        "give a run directory after `tunelab train`, its export/model folder, or a save_pretrained folder"
    )


def _from_run(run_dir: RunDir, model_id: str | None) -> Served:
    manifest = run_dir.read_manifest()
    name = model_id or run_dir.root.name
    evaluation = ((manifest.get("stages") or {}).get("evaluate") or {}).get("summary", {})
    if (run_dir.path("export", "model", EXPORT_INFO)).is_file():
        served = _from_folder(run_dir.path("export", "model"), name)
        served.info["evaluation"] = evaluation or served.info.get("evaluation", {})
        return served
    if not (run_dir.model / MODEL_INFO).is_file():
        raise MissingArtifactError(
            f"{run_dir.root} has no trained model: run `tunelab train RECIPE` (and `tunelab export`) first"
        )
    from tunelab.config import load_recipe
    from tunelab.tasks import get_task

    recipe = load_recipe(
        run_dir.path("recipe.yaml"),
        [f"run.output_dir={run_dir.root.parent}", f"run.name={run_dir.root.name}"],
    )
    task = get_task(recipe.task)
    labels = run_dir.labels() if task.has_labels else None
    model, tokenizer = task.load_tuned(run_dir.model, recipe, labels)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    train = (manifest.get("stages") or {}).get("train") or {}
    info = {
        "task": recipe.task,
        "run": {"name": recipe.run.name, "train_run_id": train.get("run_id")},
        "evaluation": evaluation,
        **LongText.of(recipe.model).info(),  # classify reads long texts as the model was trained to
    }
    kind = KIND_OF_TASK.get(recipe.task)
    if kind is None:
        raise ValueError(
            f"serving a {recipe.task} run is not supported: serve sft, lm or classification runs"
        )
    return _ready(
        Served(
            kind, name, model, tokenizer, labels, recipe.model.max_length, info=info, source=str(run_dir.root)
        )
    )


def _from_folder(folder: Path, model_id: str) -> Served:
    info = read_export_info(folder) or {}
    kind = KIND_OF_TASK.get(info.get("task", "")) or _kind_of(folder)
    if not any(folder.glob("*.safetensors")):
        raise ValueError(f"{folder} holds no safetensors weights: only safetensors are served")
    auto = _auto_class(kind)
    if (folder / "quantization.json").is_file():
        from tunelab.serve.quantize import load_int8

        model = load_int8(folder, auto)
    else:
        model = auto.from_pretrained(str(folder), use_safetensors=True, dtype=torch.float32)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    labels = info.get("labels")
    if kind == "classifier" and not labels:
        id2label = getattr(model.config, "id2label", None) or {}
        labels = [str(id2label[i]) for i in sorted(id2label, key=int)]
    max_length = int(info.get("max_length") or min(getattr(tokenizer, "model_max_length", 512), 4096))
    if kind == "classifier" and info.get("temperature") is not None:  # calibrated, as the run evaluated
        from tunelab.tasks.calibration import install_temperature

        install_temperature(model, float(info["temperature"]))
    return _ready(Served(kind, model_id, model, tokenizer, labels, max_length, info=info, source=str(folder)))


def _kind_of(folder: Path) -> Kind:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder / 'config.json'} cannot be read: {exc}") from None
    archs = " ".join(config.get("architectures") or [])
    if "CausalLM" in archs:
        return "causal"
    if "SequenceClassification" in archs:
        return "classifier"
    return "encoder"


def _auto_class(kind: Kind):
    import transformers

    return {
        "causal": transformers.AutoModelForCausalLM,
        "classifier": transformers.AutoModelForSequenceClassification,
        "encoder": transformers.AutoModel,
    }[kind]


def _ready(served: Served) -> Served:
    served.model.eval()
    tok = served.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    n_ctx = getattr(served.model.config.get_text_config(), "max_position_embeddings", None)
    if n_ctx:
        served.context = int(n_ctx)
        served.max_length = min(served.max_length, int(n_ctx))
    return served
