"""GGUF files of a merged Llama-family folder, for llama.cpp, Ollama and transformers' GGUF loader.

The ``gguf`` library does the file format: the writer, the Hugging Face to GGUF tensor-name map, the
quantizers and the special-vocabulary reader (merges, bos/eos/pad ids, chat template). What it leaves
to a converter, and is written here, is what llama.cpp's ``convert_hf_to_gguf.py`` does per model:

- the model's hyperparameters as ``llama.*`` keys;
- the BPE vocabulary as a token list with token types, and the pre-tokenizer's llama.cpp name;
- the rotary layout of the q/k projections: Hugging Face keeps the two rotary halves of each head
  apart, llama.cpp interleaves them (transformers' GGUF loader undoes this on load);
- the choice of tensor type (norms stay F32, as llama.cpp keeps them).

Anything this writer would get wrong (another architecture, rope scaling, a tokenizer that is not
byte-level BPE) is refused with a pointer to llama.cpp's own converter.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch

from tunelab.runs import file_sha256

GGUF_TYPES = ("f16", "q8_0")
SUPPORTED = ("llama",)
CONVERTER = "llama.cpp's convert_hf_to_gguf.py (https://github.com/ggml-org/llama.cpp)"
_QTYPES = {"f16": gguf.GGMLQuantizationType.F16, "q8_0": gguf.GGMLQuantizationType.Q8_0}
_FILE_TYPES = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}


class UnsupportedArchitecture(ValueError):
    """A model (type, rope scaling or tokenizer) this writer does not convert."""


def _refuse(what: str) -> UnsupportedArchitecture:
    return UnsupportedArchitecture(
        f"GGUF export covers Llama-family models only; {what}: convert with {CONVERTER}"
    )


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _check_config(cfg: dict[str, Any]) -> None:
    """Refuse what llama.cpp would need more than plain ``llama.*`` keys for."""
    model_type = cfg.get("model_type")
    if model_type not in SUPPORTED:
        # Mistral shares the tensors but not always the tokenizer (sentencepiece) or the attention
        # (sliding window), so it is not passed as "llama" here.
        raise _refuse(f"this one is model type {model_type!r}")
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    if rope_type != "default":
        raise _refuse(f"rope scaling {rope_type!r} is not written by this exporter")


def _pre_tokenizer(tok_json: dict[str, Any]) -> str:
    """llama.cpp's name for the folder's pre-tokenizer, read from its ``tokenizer.json``.

    llama.cpp's converter recognises a vocabulary by hashing its tokenization of a test text; here
    the two layouts that a byte-level BPE Llama folder has are recognised by their structure.
    """
    model, pre = tok_json.get("model") or {}, tok_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in steps]
    byte_level = steps[-1] if kinds and kinds[-1] == "ByteLevel" else None
    if model.get("type") != "BPE" or byte_level is None or tok_json.get("normalizer"):
        raise _refuse(
            f"the tokenizer is not a byte-level BPE (model {model.get('type')}, pre-tokenizer {kinds})"
        )
    if byte_level.get("use_regex", True) and kinds == ["ByteLevel"]:
        return "gpt-2"  # GPT-2's split regex, then bytes
    if (
        byte_level.get("use_regex", True)
        and kinds == ["Digits", "ByteLevel"]
        and steps[0].get("individual_digits")
    ):
        return "smollm"  # single digits first, then GPT-2's split regex
    raise _refuse(f"pre-tokenizer {kinds} has no llama.cpp name known to this exporter")


def _vocab(tokenizer: Any, n_vocab: int) -> tuple[list[str], list[int]]:
    """Tokens by id and their GGUF types: control for special added tokens, user-defined for other
    added ones, unused for ``[PADi]`` fillers up to the embedding's row count, normal otherwise."""
    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    added = {t.content: t.special for t in tokenizer.added_tokens_decoder.values()}
    tokens, types = [], []
    for i in range(max(n_vocab, max(by_id) + 1)):
        token = by_id.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(token)
        if token in added:
            types.append(gguf.TokenType.CONTROL if added[token] else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    return tokens, [int(t) for t in types]


def _interleave_rotary(w: np.ndarray, n_head: int) -> np.ndarray:
    """q/k rows (or biases) per head from HF's (first halves, second halves) to llama.cpp's pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _add_metadata(writer: gguf.GGUFWriter, model_dir: Path, cfg: dict[str, Any], gguf_type: str) -> None:
    """The ``general.*`` and ``llama.*`` keys (the library has setters, not the HF config mapping)."""
    n_head = int(cfg["num_attention_heads"])
    hidden = int(cfg["hidden_size"])
    head_dim = int(cfg.get("head_dim") or hidden // n_head)
    rope = cfg.get("rope_parameters") or {}
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(model_dir.name)
    writer.add_context_length(int(cfg.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(hidden)
    writer.add_block_count(int(cfg["num_hidden_layers"]))
    writer.add_feed_forward_length(int(cfg["intermediate_size"]))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(int(cfg.get("num_key_value_heads") or n_head))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != hidden // n_head:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_rope_freq_base(float(cfg.get("rope_theta") or rope.get("rope_theta") or 10000.0))
    writer.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    writer.add_file_type(_FILE_TYPES[gguf_type])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _add_tokenizer(writer: gguf.GGUFWriter, model_dir: Path, n_vocab: int) -> int:
    """Vocabulary, merges, special ids and chat template; returns the vocabulary size written."""
    from transformers import AutoTokenizer

    tok_file = model_dir / "tokenizer.json"
    if not tok_file.is_file():
        raise _refuse("the folder has no tokenizer.json (a fast byte-level BPE tokenizer)")
    pre = _pre_tokenizer(_read_json(tok_file))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokens, types = _vocab(tokenizer, n_vocab)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_add_space_prefix(False)
    special = gguf.SpecialVocab(str(model_dir), load_merges=True, n_vocab=len(tokens))
    # Whether bos/eos get added is what the tokenizer does, not what the library's parse of its
    # post-processor guesses; llama.cpp's defaults differ by pre-tokenizer, so both are written.
    probe, bos, eos = tokenizer("a")["input_ids"], tokenizer.bos_token_id, tokenizer.eos_token_id
    special.add_special_token["bos"] = bos is not None and probe[:1] == [bos]
    special.add_special_token["eos"] = eos is not None and probe[-1:] == [eos]
    special.add_to_gguf(writer)
    if not special.chat_template and isinstance(tokenizer.chat_template, str):
        writer.add_chat_template(tokenizer.chat_template)
    return len(tokens)


def _tensor_data(data: np.ndarray, gguf_type: str) -> tuple[np.ndarray, gguf.GGMLQuantizationType]:
    """1-D tensors (norms, biases) stay F32 as in llama.cpp; so do q8_0 rows that are not whole blocks."""
    qtype = _QTYPES[gguf_type]
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if data.ndim == 1 or data.shape[-1] % block:
        return data.astype(np.float32), gguf.GGMLQuantizationType.F32
    return gguf.quants.quantize(data, qtype), qtype


def _add_tensors(
    writer: gguf.GGUFWriter,
    model_dir: Path,
    cfg: dict[str, Any],
    gguf_type: str,
    n_vocab: int,
    progress: bool,
) -> int:
    """Every weight of the folder's safetensors under its GGUF name; returns how many were added."""
    from safetensors import safe_open
    from tqdm.auto import tqdm

    n_head = int(cfg["num_attention_heads"])
    n_kv = int(cfg.get("num_key_value_heads") or n_head)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, int(cfg["num_hidden_layers"]))
    tied = bool(cfg.get("tie_word_embeddings"))
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no *.safetensors weights to convert")
    handles = [safe_open(str(path), "pt") for path in files]
    keys = [(fh, key) for fh in handles for key in fh.keys()]  # noqa: SIM118 (not iterable)
    count = 0
    for fh, key in tqdm(keys, desc=f"gguf {gguf_type}", unit="tensor", disable=not progress):
        if key.endswith("rotary_emb.inv_freq") or (tied and key == "lm_head.weight"):
            continue  # rebuilt from rope.freq_base / read from token_embd by llama.cpp
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ValueError(f"{model_dir}: no GGUF name for tensor {key!r}")
        data = fh.get_tensor(key).to(torch.float32).numpy()
        if ".q_proj." in key:
            data = _interleave_rotary(data, n_head)
        elif ".k_proj." in key:
            data = _interleave_rotary(data, n_kv)
        elif name == "token_embd.weight" and data.shape[0] != n_vocab:
            raise ValueError(f"{model_dir}: {data.shape[0]} embedding rows for a vocabulary of {n_vocab}")
        data, qtype = _tensor_data(data, gguf_type)
        writer.add_tensor(name, data, raw_dtype=qtype)
        count += 1
    return count


def write_gguf(
    model_dir: Path, out_file: Path, gguf_type: str = "f16", *, progress: bool = True
) -> dict[str, Any]:
    """Write ``out_file`` from the ``save_pretrained`` folder ``model_dir``.

    The file appears whole or not at all: it is written under a temporary name in the same folder,
    then renamed over ``out_file``. All tensors are held in memory until written (fine for the small
    models this is for). Raises :class:`UnsupportedArchitecture` for anything but a Llama model.
    """
    if gguf_type not in GGUF_TYPES:
        raise ValueError(f"gguf type must be one of {', '.join(GGUF_TYPES)}, got {gguf_type!r}")
    model_dir, out_file = Path(model_dir), Path(out_file)
    cfg = _read_json(model_dir / "config.json")
    _check_config(cfg)
    tmp = out_file.with_name(f".{out_file.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    try:
        _add_metadata(writer, model_dir, cfg, gguf_type)
        n_vocab = _add_tokenizer(writer, model_dir, int(cfg.get("vocab_size") or 0))
        count = _add_tensors(writer, model_dir, cfg, gguf_type, n_vocab, progress)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=progress)
        writer.flush()
        for fout in writer.fout or []:
            os.fsync(fout.fileno())
        writer.close()
        os.replace(tmp, out_file)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
    return {
        "file": out_file.name,
        "gguf_type": gguf_type,
        "architecture": "llama",
        "tensors": count,
        "bytes": out_file.stat().st_size,
        "sha256": file_sha256(out_file),
    }


def load_gguf(gguf_file: Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a GGUF file through transformers' GGUF loader, dequantized to fp32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(Path(gguf_file).parent), Path(gguf_file).name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return model.eval(), tokenizer


@torch.inference_mode()
def compare_greedy(
    gguf_file: Path, model_dir: Path, prompts: list[str], max_new_tokens: int = 16
) -> dict[str, Any]:
    """Greedy fp32 answers of the GGUF file and of the folder to the same chat prompts, side by side.

    Each side renders the prompt with its own chat template and tokenizer, so the comparison covers
    the whole file; ``tokenizer_identical`` says whether both gave the same prompt ids every time.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sides = [
        load_gguf(gguf_file),
        (
            AutoModelForCausalLM.from_pretrained(
                str(model_dir), use_safetensors=True, dtype=torch.float32
            ).eval(),
            AutoTokenizer.from_pretrained(str(model_dir)),
        ),
    ]
    rows, same_tokens = [], True
    for prompt in prompts:
        answers, prompt_ids = [], []
        for model, tok in sides:
            text = tok.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
            ids = tok(text, add_special_tokens=False)["input_ids"]
            pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
            out = model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
            )
            answers.append(tok.decode(out[0, len(ids) :], skip_special_tokens=True))
            prompt_ids.append(ids)
        same_tokens &= prompt_ids[0] == prompt_ids[1]
        rows.append(
            {"prompt": prompt, "gguf": answers[0], "merged": answers[1], "same": answers[0] == answers[1]}
        )
    return {
        "prompts": len(prompts),
        "identical": sum(r["same"] for r in rows),
        "rows": rows,
        "tokenizer_identical": same_tokens,
    }
