"""README "Models": only safetensors weights load unless ``model.allow_pickle``; remote code runs only
with ``model.trust_remote_code``. Checked on every loader path: the classification base (model's own
head and a tunelab head), the sft base, model ranking and a tuned adapter's reload."""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path

import pytest
import torch
from tests.helpers import classification_recipe, sentiment_rows, sft_recipe, write_jsonl

from tunelab.config import validate_recipe
from tunelab.runs import RunDir
from tunelab.search.ranking import rank_models
from tunelab.tasks import get_task

LABELS = ["neg", "pos"]
WEIGHTS = (".safetensors", ".bin")


def _pickle_copy(src: Path, dst: Path, auto_class) -> Path:
    """``src`` re-saved with its weights as ``pytorch_model.bin`` (pickle) and no safetensors file."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and not f.name.endswith(WEIGHTS):
            shutil.copy(f, dst / f.name)
    model = auto_class.from_pretrained(str(src), use_safetensors=True)
    torch.save(model.state_dict(), dst / "pytorch_model.bin")
    assert not list(dst.glob("*.safetensors"))
    return dst


@pytest.fixture(scope="module")
def pickle_bert(tiny_bert, tmp_path_factory) -> Path:
    from transformers import AutoModel

    return _pickle_copy(tiny_bert, tmp_path_factory.mktemp("pickle") / "bert", AutoModel)


@pytest.fixture(scope="module")
def pickle_llama(tiny_llama, tmp_path_factory) -> Path:
    from transformers import AutoModelForCausalLM

    return _pickle_copy(tiny_llama, tmp_path_factory.mktemp("pickle") / "llama", AutoModelForCausalLM)


CUSTOM_CODE = '''
from pathlib import Path

from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification, LlamaModel
from transformers.models.llama.modeling_llama import LlamaPreTrainedModel

Path({marker!r}).write_text("the custom code ran")


class CustomConfig(LlamaConfig):
    model_type = "tunelab_custom_llama"


class CustomModel(LlamaModel):
    config_class = CustomConfig


class CustomForCausalLM(LlamaForCausalLM):
    config_class = CustomConfig


class CustomForSequenceClassification(LlamaForSequenceClassification):
    config_class = CustomConfig

    def __init__(self, config):  # its own base model (transformers' builds one through AutoModel)
        LlamaPreTrainedModel.__init__(self, config)
        self.num_labels = config.num_labels
        self.model = CustomModel(config)
        self.score = nn.Linear(config.hidden_size, self.num_labels, bias=False)
        self.post_init()
'''


@pytest.fixture
def remote_code(tiny_llama, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(model folder whose config's auto_map points at its own modeling file, marker file it writes when
    imported). Dynamic modules go to a temporary folder, never the real HF modules cache."""
    import transformers.dynamic_module_utils as dyn

    modules = tmp_path / "hf_modules"
    monkeypatch.setattr(dyn, "HF_MODULES_CACHE", str(modules))
    monkeypatch.setattr(sys, "path", [*sys.path])  # init_hf_modules appends the modules folder
    folder = tmp_path / f"custom_{uuid.uuid4().hex[:8]}"  # a fresh module name: nothing cached from before
    shutil.copytree(tiny_llama, folder)
    marker = tmp_path / "custom-code-ran"
    (folder / "modeling_custom.py").write_text(CUSTOM_CODE.format(marker=str(marker)))
    config = json.loads((tiny_llama / "config.json").read_text())
    config["model_type"] = "tunelab_custom_llama"
    config["architectures"] = ["CustomForCausalLM"]
    config["auto_map"] = {
        "AutoConfig": "modeling_custom.CustomConfig",
        "AutoModel": "modeling_custom.CustomModel",
        "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM",
        "AutoModelForSequenceClassification": "modeling_custom.CustomForSequenceClassification",
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder, marker


def _cls_recipe(model_dir: Path, tmp: Path, **model):
    raw = classification_recipe(model_dir, tmp / "unused.jsonl", tmp / "runs")
    raw["model"].update(model)
    return validate_recipe(raw)


def _sft_recipe(model_dir: Path, tmp: Path, **model):
    raw = sft_recipe(model_dir, tmp / "unused.jsonl", tmp / "runs")
    raw["model"].update(model)
    raw["model"]["adapter"] = {"method": "none"}
    return validate_recipe(raw)


def _ranking_run(tmp: Path) -> RunDir:
    run = RunDir(tmp / "ranked")
    rows = sentiment_rows(60)
    run.data.mkdir(parents=True)
    write_jsonl(run.data / "train.jsonl", rows[:40])
    write_jsonl(run.data / "validation.jsonl", rows[40:])
    (run.data / "labels.json").write_text(json.dumps({"labels": LABELS}))
    return run


def _adapter_dir(base: Path, tmp: Path) -> Path:
    """A LoRA classification adapter trained on nothing, saved from the safetensors ``base``."""
    from tunelab.models.adapters import apply_adapter

    recipe = _cls_recipe(base, tmp, adapter={"method": "lora", "r": 2, "alpha": 4})
    task = get_task("classification")
    model, tok = task.load_base(recipe, LABELS)
    model = apply_adapter(model, recipe.model.adapter, task.peft_task_type)
    out = tmp / "adapter"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    assert (out / "adapter_config.json").is_file()
    return out


def _load(path: str, folder: Path, safe: Path, tmp: Path, **flags):
    """Load ``folder`` through loader ``path`` with the ``model`` flags; return the model (or ranking)."""
    if path == "classification":
        return get_task("classification").load_base(_cls_recipe(folder, tmp, **flags), LABELS)[0]
    if path == "linear_head":
        recipe = _cls_recipe(folder, tmp, head={"type": "linear", "pooling": "mean"}, **flags)
        return get_task("classification").load_base(recipe, LABELS)[0]
    if path == "sft":
        return get_task("sft").load_base(_sft_recipe(folder, tmp, **flags))[0]
    if path == "rank":
        ranking = rank_models(_cls_recipe(folder, tmp, **flags), _ranking_run(tmp), candidates=[str(folder)])
        (entry,) = ranking["candidates"]
        assert entry["error"] is None and entry["score"] is not None, entry
        return ranking
    if path == "tuned_adapter":
        recipe = _cls_recipe(folder, tmp, adapter={"method": "lora", "r": 2, "alpha": 4}, **flags)
        return get_task("classification").load_tuned(_adapter_dir(safe, tmp), recipe, LABELS)[0]
    raise AssertionError(path)


PICKLE_REFUSED = r"only pickle weights \(pytorch_model\.bin\): set model\.allow_pickle: true"
CODE_REFUSED = r"its own modeling code \(config\.json auto_map\): set model\.trust_remote_code: true"
PATHS = ["classification", "linear_head", "sft", "rank", "tuned_adapter"]


@pytest.mark.parametrize("path", PATHS)
def test_pickle_weights_load_only_with_allow_pickle(path, pickle_bert, pickle_llama, tiny_bert, tiny_llama,
                                                    tmp_path):
    folder, safe = (pickle_llama, tiny_llama) if path == "sft" else (pickle_bert, tiny_bert)
    with pytest.raises(ValueError, match=PICKLE_REFUSED):
        _load(path, folder, safe, tmp_path / "refused")
    loaded = _load(path, folder, safe, tmp_path / "allowed", allow_pickle=True)
    if path != "rank":  # the pickled weights, not a fresh initialisation, were loaded
        suffix = "embed_tokens.weight" if path == "sft" else "word_embeddings.weight"
        (loaded_emb,) = [p for n, p in loaded.named_parameters() if n.endswith(suffix)]
        state = torch.load(folder / "pytorch_model.bin", weights_only=True)
        (saved_emb,) = [t for k, t in state.items() if k.endswith(suffix)]
        assert torch.equal(loaded_emb.detach(), saved_emb)


def test_the_pickle_refusal_does_not_depend_on_the_early_check(pickle_bert, tmp_path, monkeypatch):
    """``load_kwargs`` alone (``use_safetensors``) also keeps transformers from unpickling."""
    import tunelab.models.resolve as resolve

    monkeypatch.setattr(resolve, "check_local_folder", lambda cfg, folder: None)
    with pytest.raises(OSError, match=r"model\.safetensors"):
        _load("classification", pickle_bert, pickle_bert, tmp_path)


@pytest.mark.parametrize("path", PATHS)
def test_remote_code_runs_only_with_trust_remote_code(path, remote_code, tiny_llama, tmp_path):
    folder, marker = remote_code
    with pytest.raises(ValueError, match=CODE_REFUSED):
        _load(path, folder, tiny_llama, tmp_path / "refused")
    assert not marker.exists(), "the custom code ran without model.trust_remote_code"
    loaded = _load(path, folder, tiny_llama, tmp_path / "allowed", trust_remote_code=True)
    assert marker.exists(), "trust_remote_code: true loads the folder's own code"
    if path in ("classification", "sft"):
        assert type(loaded).__name__.startswith("Custom")


def test_remote_code_is_refused_by_transformers_too(remote_code, tmp_path, monkeypatch):
    """Without the early check, the recipe's ``trust_remote_code: false`` still reaches transformers."""
    import tunelab.models.resolve as resolve

    folder, marker = remote_code
    monkeypatch.setattr(resolve, "check_local_folder", lambda cfg, folder: None)
    with pytest.raises(ValueError, match="trust_remote_code"):
        _load("classification", folder, folder, tmp_path)
    assert not marker.exists()
