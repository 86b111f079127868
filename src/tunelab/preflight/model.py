"""Model checks: ``model.name`` (and each ``search.candidates`` entry) resolves, has safe weights,
and fits the task: a causal LM for sft/lm, with a chat template for sft."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunelab.models.bundled import ALIASES, BUNDLED_MODELS, BundledAssetMissing, bundled_model, package_file
from tunelab.preflight.context import Context, did_you_mean, hub_offline

# Model types that are encoders only: AutoModelForCausalLM loads some of them (BertLMHeadModel) but
# only as a decoder configured with is_decoder, which a pretrained encoder checkpoint is not.
ENCODER_ONLY = frozenset(
    {
        "albert", "bert", "camembert", "canine", "convbert", "data2vec-text", "deberta", "deberta-v2",
        "distilbert", "electra", "ernie", "esm", "flaubert", "funnel", "layoutlm", "luke", "megatron-bert",
        "mobilebert", "modernbert", "mpnet", "nezha", "nomic_bert", "rembert", "roberta", "roformer",
        "squeezebert", "xlm", "xlm-roberta", "xlm-roberta-xl", "xmod",
    }
)  # fmt: skip
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model",
    "spiece.model", "sentencepiece.bpe.model",
)  # fmt: skip
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


def check(ctx: Context) -> None:
    check_model(ctx, "model.name", ctx.recipe.model.name)
    search = ctx.recipe.search
    for i, name in enumerate(search.candidates if search is not None else []):
        check_model(ctx, f"search.candidates.{i}", name)


def _needs_causal(ctx: Context) -> bool:
    return ctx.kind == "tokens"


def _needs_chat(ctx: Context) -> bool:
    return ctx.task is not None and ctx.task.data_format == "chat"


def check_model(ctx: Context, key: str, name: str) -> None:
    bundled = bundled_model(name)
    if bundled is not None:
        _check_bundled(ctx, key, name, bundled)
        return
    local = Path(name).expanduser()
    if local.exists():
        _check_folder(ctx, key, local)
        return
    if name.startswith((".", "/", "~")):
        ctx.findings.problem(key, f"model folder {name} does not exist")
        return
    known = [*BUNDLED_MODELS, *ALIASES]
    hint = did_you_mean(name.lower(), known)
    if "/" not in name and hint:
        ctx.findings.problem(
            key,
            f"unknown model alias {name!r}{hint}; bundled: {', '.join(sorted(known))} "
            "(or a hub id such as owner/name, or a local folder)",
        )
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        ctx.findings.problem(
            key,
            f"{name!r} is not a bundled alias ({', '.join(sorted(known))}), an existing folder "
            "or a valid hub id (owner/name)",
        )
        return
    _check_hub(ctx, key, name)


def _check_bundled(ctx: Context, key: str, name: str, bundled: Any) -> None:
    try:
        package_file(bundled.dist, bundled.rel)
    except BundledAssetMissing:
        ctx.findings.problem(
            key, f"bundled model {bundled.alias!r} is not installed: {bundled.install_hint()}"
        )
    if _needs_causal(ctx) and bundled.kind != "causal-lm":
        decoders = [m.alias for m in BUNDLED_MODELS.values() if m.kind == "causal-lm"]
        ctx.findings.problem(
            key,
            f"{name!r} is an encoder ({bundled.description}); task {ctx.task_name} needs a causal LM, "
            f"e.g. {', '.join(decoders)}",
        )
    # a bundled causal LM ships its chat template (ChatML) in the GGUF file: nothing to check


def _check_folder(ctx: Context, key: str, folder: Path) -> None:
    if not folder.is_dir():
        ctx.findings.problem(key, f"{folder} is a file; model.name takes a save_pretrained folder")
        return
    if not (folder / "config.json").is_file():
        ctx.findings.problem(
            key, f"model folder {folder} has no config.json: point at a save_pretrained folder"
        )
        return
    files = {p.name for p in folder.iterdir()}
    _check_weights(ctx, key, str(folder), files)
    if not any(f in files for f in TOKENIZER_FILES):
        ctx.findings.problem(key, f"model folder {folder} has no tokenizer files (e.g. tokenizer.json)")
    tokenizer_config = _read_json(folder / "tokenizer_config.json")
    _check_fits_task(ctx, key, str(folder), _read_json(folder / "config.json"), files, tokenizer_config)


def _read_json(path: Path | str | None) -> dict[str, Any] | None:
    if path is None or not Path(path).is_file():
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _check_weights(ctx: Context, key: str, where: str, files: set[str]) -> None:
    if any(f.endswith(".safetensors") for f in files):
        return
    pickles = sorted(f for f in files if f.endswith((".bin", ".pt", ".pth")) and "model" in f)
    if pickles:
        if not ctx.recipe.model.allow_pickle:
            ctx.findings.problem(
                key,
                f"{where} has only pickle weights ({', '.join(pickles[:3])}) and no .safetensors: set "
                "model.allow_pickle: true to load them (unpickling can run code), or convert the weights",
            )
        return
    ctx.findings.problem(key, f"{where} has no model weights (*.safetensors)")


def model_family(config: dict[str, Any]) -> str | None:
    """``causal``, ``encoder``, ``seq2seq``, ``other`` (no causal-LM class) or None (cannot tell)."""
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    model_type = str(config.get("model_type") or "")
    if any(a.endswith(CAUSAL_SUFFIXES) for a in archs) or config.get("is_decoder"):
        return "causal"
    if config.get("is_encoder_decoder"):
        return "seq2seq"
    if model_type in ENCODER_ONLY:
        return "encoder"
    if not model_type:
        return None
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    except ImportError:
        return None
    return "causal" if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES else "other"


def _describe(config: dict[str, Any]) -> str:
    archs = ", ".join(a for a in config.get("architectures") or [] if isinstance(a, str))
    model_type = config.get("model_type") or "unknown type"
    return f"{model_type}{f': {archs}' if archs else ''}"


def _check_fits_task(
    ctx: Context,
    key: str,
    where: str,
    config: dict[str, Any] | None,
    files: set[str] | None,
    tokenizer_config: dict[str, Any] | None,
) -> None:
    """Architecture and chat template against the task; ``files`` None: the file list is unknown."""
    if _needs_causal(ctx) and config is not None:
        family = model_family(config)
        what = {
            "encoder": "an encoder-only model",
            "seq2seq": "an encoder-decoder (seq2seq) model",
            "other": "not a model AutoModelForCausalLM can load",
        }.get(family or "")
        if what:
            ctx.findings.problem(
                key,
                f"{where} is {what} ({_describe(config)}); task {ctx.task_name} needs a causal LM "
                "(a decoder such as smollm2)",
            )
            return  # its tokenizer's chat template is beside the point
        if family is None:
            ctx.findings.note(
                key, f"cannot tell whether {where} is a causal LM (config.json has no model_type)"
            )
    if not _needs_chat(ctx):
        return
    if tokenizer_config is None and files is None:
        return  # nothing known about the tokenizer
    has_template = bool((tokenizer_config or {}).get("chat_template")) or any(
        f in (files or set()) for f in CHAT_TEMPLATE_FILES
    )
    if not has_template and files is None:  # the template may be in a chat_template.jinja not seen
        ctx.findings.note(key, f"could not confirm that the tokenizer of {where} has a chat template")
    elif not has_template:
        ctx.findings.problem(
            key,
            f"the tokenizer of {where} has no chat template (tokenizer_config.json chat_template or "
            f"chat_template.jinja); task {ctx.task_name} needs one: pick an instruct/chat model",
        )


# ---- hub ids -------------------------------------------------------------------------------------


def _check_hub(ctx: Context, key: str, name: str) -> None:
    revision = ctx.recipe.model.revision if key == "model.name" else None
    if hub_offline():
        _check_hub_cache(ctx, key, name, revision)
        return
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

        info = HfApi().model_info(name, revision=revision, timeout=10)
    except GatedRepoError:
        ctx.findings.note(key, f"hub model {name!r} is gated: request access on its page before running")
        return
    except RepositoryNotFoundError:
        ctx.findings.problem(key, f"no model {name!r} on the Hugging Face hub (or it is private)")
        return
    except RevisionNotFoundError:
        ctx.findings.problem("model.revision", f"hub model {name!r} has no revision {revision!r}")
        return
    except Exception as exc:  # no network, a proxy, a timeout: none of them is the recipe's fault
        ctx.findings.note(key, f"hub model {name!r} not checked: cannot reach the hub ({type(exc).__name__})")
        return
    files = {s.rfilename for s in info.siblings or []}
    if files:
        _check_weights(ctx, key, f"hub model {name!r}", files)
    config = _read_json(_hub_file(name, "config.json", revision)) if "config.json" in files else None
    tok = _read_json(_hub_file(name, "tokenizer_config.json", revision)) if files else None
    _check_fits_task(ctx, key, f"hub model {name!r}", config, files or None, tok)


def _hub_file(name: str, filename: str, revision: str | None) -> str | None:
    try:
        from huggingface_hub import hf_hub_download

        return hf_hub_download(name, filename, revision=revision, etag_timeout=10)
    except Exception:  # a file we cannot fetch is a check we skip, not a problem of the recipe
        return None


def _check_hub_cache(ctx: Context, key: str, name: str, revision: str | None) -> None:
    from huggingface_hub import try_to_load_from_cache

    def cached(filename: str) -> str | None:
        try:
            found = try_to_load_from_cache(name, filename, revision=revision)
        except Exception:  # a malformed cache entry: treat as not cached
            return None
        return found if isinstance(found, str) else None

    config = cached("config.json")
    if config is None:
        ctx.findings.note(
            key,
            f"hub id {name!r} not checked: offline (HF_HUB_OFFLINE=1) and not in the local Hugging Face "
            "cache, so loading it needs the network",
        )
        return
    ctx.findings.note(key, f"hub id {name!r} checked against the local Hugging Face cache only (offline)")
    files = {f for f in CHAT_TEMPLATE_FILES if cached(f) is not None} or None
    tokenizer_config = _read_json(cached("tokenizer_config.json"))
    _check_fits_task(ctx, key, f"hub model {name!r}", _read_json(config), files, tokenizer_config)
