"""GGUF files of a merged Llama-family folder, for llama.cpp and Ollama, written with the ``gguf``
library (its writer, tensor-name map, quantizers and special-vocabulary reader).

What the library leaves to a converter, done here: the model's hyperparameters as GGUF keys, the
BPE vocabulary as a token list with token types, and the rotary layout of the q/k projections
(Hugging Face keeps the two rotary halves apart, llama.cpp interleaves them; transformers' GGUF
loader undoes this). Other architectures are refused with a pointer to llama.cpp's own converter.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

GGUF_TYPES = ("f16", "q8_0")
SUPPORTED = ("llama",)


class UnsupportedArchitecture(ValueError):
    """A model type this writer does not convert."""


def _config(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / "config.json").read_text(encoding="utf-8"))


def _interleave_rotary(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF's q/k rows (per head: first halves, then second halves) in llama.cpp's interleaved order."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _vocab(tokenizer) -> tuple[list[str], list[int]]:
    """Tokens by id and their GGUF types (normal, control for special tokens, user-defined for added)."""
    import gguf

    vocab = tokenizer.get_vocab()
    n = max(vocab.values()) + 1
    by_id = {i: t for t, i in vocab.items()}
    added = {t.content: t for t in tokenizer.added_tokens_decoder.values()}
    tokens, types = [], []
    for i in range(n):
        tok = by_id.get(i, f"[PAD{i}]")
        tokens.append(tok)
        if tok in added:
            types.append(gguf.TokenType.CONTROL if added[tok].special else gguf.TokenType.USER_DEFINED)
        elif tok.startswith("[PAD") and i not in by_id:
            types.append(gguf.TokenType.UNUSED)
        else:
            types.append(gguf.TokenType.NORMAL)
    return tokens, [int(t) for t in types]


def _pre_tokenizer(tokens: list[str]) -> str:
    """llama.cpp's pre-tokenizer name: SmolLM's vocabulary is known; anything else gets the default."""
    return "smollm" if len(tokens) == 49152 and "<|im_start|>" in tokens[:32] else "default"


def write_gguf(
    model_dir: Path, out_file: Path, gguf_type: str = "f16", *, progress: bool = True
) -> dict[str, Any]:
    """Write ``out_file`` (in one rename) from the ``save_pretrained`` folder ``model_dir``."""
    import gguf
    from transformers import AutoTokenizer

    if gguf_type not in GGUF_TYPES:
        raise ValueError(f"gguf type must be one of {', '.join(GGUF_TYPES)}, got {gguf_type!r}")
    model_dir, out_file = Path(model_dir), Path(out_file)
    cfg = _config(model_dir)
    arch = cfg.get("model_type")
    if arch not in SUPPORTED:
        raise UnsupportedArchitecture(
            f"GGUF export covers Llama-family models; this one is {arch!r}: convert the exported folder "
            "with llama.cpp's own convert_hf_to_gguf.py (https://github.com/ggml-org/llama.cpp)"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    n_head, n_kv = (
        int(cfg["num_attention_heads"]),
        int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]),
    )
    n_blocks, hidden = int(cfg["num_hidden_layers"]), int(cfg["hidden_size"])
    qtype = gguf.GGMLQuantizationType.Q8_0 if gguf_type == "q8_0" else gguf.GGMLQuantizationType.F16
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    try:
        writer.add_name(model_dir.name)
        writer.add_context_length(int(cfg.get("max_position_embeddings", 2048)))
        writer.add_embedding_length(hidden)
        writer.add_block_count(n_blocks)
        writer.add_feed_forward_length(int(cfg["intermediate_size"]))
        writer.add_head_count(n_head)
        writer.add_head_count_kv(n_kv)
        writer.add_rope_dimension_count(int(cfg.get("head_dim") or hidden // n_head))
        writer.add_rope_freq_base(
            float(cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0))
        )
        writer.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
        writer.add_file_type(
            gguf.LlamaFileType.MOSTLY_Q8_0 if gguf_type == "q8_0" else gguf.LlamaFileType.MOSTLY_F16
        )
        tokens, types = _vocab(tokenizer)
        writer.add_vocab_size(len(tokens))
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(_pre_tokenizer(tokens))
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        special = gguf.SpecialVocab(str(model_dir), load_merges=True, n_vocab=len(tokens))
        special.add_to_gguf(writer)
        if not special.chat_template and tokenizer.chat_template:
            writer.add_chat_template(tokenizer.chat_template)
        n = _add_tensors(writer, model_dir, cfg, qtype, n_head, n_kv, n_blocks, progress)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=progress)
        writer.close()
        os.replace(tmp, out_file)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
    return {
        "file": out_file.name,
        "gguf_type": gguf_type,
        "architecture": "llama",
        "tensors": n,
        "bytes": out_file.stat().st_size,
        "sha256": _sha256(out_file),
    }


def _add_tensors(
    writer, model_dir: Path, cfg: dict, qtype, n_head: int, n_kv: int, n_blocks: int, progress: bool
) -> int:
    import gguf
    from safetensors import safe_open
    from tqdm.auto import tqdm

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_blocks)
    tied = bool(cfg.get("tie_word_embeddings"))
    files = sorted(model_dir.glob("*.safetensors"))
    count = 0
    for path in files:
        with safe_open(str(path), "pt") as fh:
            for key in tqdm(list(fh.keys()), desc=f"gguf {path.name}", disable=not progress, leave=False):
                if tied and key == "lm_head.weight":
                    continue  # tied: llama.cpp reads the output projection from token_embd
                if key.endswith("rotary_emb.inv_freq"):
                    continue
                name = names.get_name(key, try_suffixes=(".weight", ".bias"))
                if name is None:
                    raise ValueError(f"{path}: no GGUF name for tensor {key!r}")
                data = fh.get_tensor(key).to(torch.float32).numpy()
                if key.endswith("q_proj.weight"):
                    data = _interleave_rotary(data, n_head)
                elif key.endswith("k_proj.weight"):
                    data = _interleave_rotary(data, n_kv)
                _add(writer, name, data, qtype)
                count += 1
    return count


def _add(writer, name: str, data: np.ndarray, qtype) -> None:
    """Norms (1-D) stay f32, as llama.cpp keeps them; q8_0 needs rows that are whole 32-value blocks."""
    import gguf

    if data.ndim == 1:
        writer.add_tensor(name, data.astype(np.float32))
        return
    if qtype == gguf.GGMLQuantizationType.Q8_0 and data.shape[-1] % 32 == 0:
        writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        return
    writer.add_tensor(name, data.astype(np.float16))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_gguf(gguf_file: Path):
    """(model, tokenizer) from a GGUF file, through transformers' GGUF loader (dequantized to fp32)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(Path(gguf_file).parent), Path(gguf_file).name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return model.eval(), tokenizer


@torch.inference_mode()
def compare_greedy(
    gguf_file: Path, model_dir: Path, prompts: list[str], max_new_tokens: int = 16
) -> dict[str, Any]:
    """Greedy answers of the GGUF file and of the folder to the same chat prompts, side by side."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    g_model, g_tok = load_gguf(gguf_file)
    m_model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), use_safetensors=True, dtype=torch.float32
    ).eval()
    m_tok = AutoTokenizer.from_pretrained(str(model_dir))
    rows, same_tok = [], True
    for prompt in prompts:
        text = m_tok.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        ids = m_tok(text, add_special_tokens=False)["input_ids"]
        same_tok &= g_tok(text, add_special_tokens=False)["input_ids"] == ids
        answers = []
        for model, tok in ((g_model, g_tok), (m_model, m_tok)):
            pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
            out = model.generate(
                torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad
            )
            answers.append(m_tok.decode(out[0, len(ids) :], skip_special_tokens=True))
        rows.append(
            {"prompt": prompt, "gguf": answers[0], "merged": answers[1], "same": answers[0] == answers[1]}
        )
    return {
        "prompts": len(prompts),
        "identical": sum(r["same"] for r in rows),
        "rows": rows,
        "tokenizer_identical": same_tok,
    }
