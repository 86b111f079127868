"""GGUF export of a tiny Llama: loads back with transformers and answers like the folder it came from."""

from __future__ import annotations

import json
import shutil

import gguf
import pytest
import torch

from tunelab.serve.gguf import UnsupportedArchitecture, compare_greedy, load_gguf, write_gguf

PROMPTS = ["What is a film?", "Say something kind.", "Tell me a story about a dog"]
TEXTS = ["Hello world", "  two  spaces\nand a line", "<|im_start|>user\nhi<|im_end|>", "café 123 ünïcode"]


@pytest.fixture(scope="module")
def exported(tiny_llama, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    return {
        t: (out / f"model-{t}.gguf", write_gguf(tiny_llama, out / f"model-{t}.gguf", t, progress=False))
        for t in ("f16", "q8_0")
    }


def _prompt_logits(model, tok) -> torch.Tensor:
    text = tok.apply_chat_template(
        [{"role": "user", "content": PROMPTS[0]}], add_generation_prompt=True, tokenize=False
    )
    with torch.no_grad():
        return model(**tok(text, return_tensors="pt", add_special_tokens=False)).logits[0]


def _folder_model(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def folder_logits(tiny_llama):
    from transformers import AutoTokenizer

    return _prompt_logits(_folder_model(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama))


def test_f16_loads_back_with_the_folders_logits_answers_and_tokens(exported, tiny_llama, folder_logits):
    from transformers import AutoTokenizer

    path, info = exported["f16"]
    assert info["file"] == path.name and info["bytes"] == path.stat().st_size and len(info["sha256"]) == 64
    assert info["architecture"] == "llama" and info["tensors"] == 2 * 9 + 2  # no output.weight: tied
    reader = gguf.GGUFReader(path)
    field = lambda key: reader.fields[key].contents()  # noqa: E731
    assert field("llama.block_count") == 2 and field("llama.attention.head_count_kv") == 2
    assert field("tokenizer.ggml.model") == "gpt2" and field("tokenizer.ggml.pre") == "gpt-2"
    assert field("tokenizer.ggml.eos_token_id") == AutoTokenizer.from_pretrained(tiny_llama).eos_token_id
    assert "<|im_start|>" in field("tokenizer.chat_template")
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert "output.weight" not in types and types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    assert types["blk.0.attn_norm.weight"] == types["output_norm.weight"] == gguf.GGMLQuantizationType.F32

    model, tok = load_gguf(path)
    # weights of scale ~0.3 rounded to f16 (relative error <= 2**-11) move these logits (scale ~10) by
    # under 1e-2 (measured 0.009); a wrong q/k permutation or a missing tensor moves them by whole units
    logits = _prompt_logits(model, tok)
    assert logits.shape == folder_logits.shape
    assert torch.allclose(logits, folder_logits, atol=2e-2), float((logits - folder_logits).abs().max())
    folder_tok = AutoTokenizer.from_pretrained(tiny_llama)
    for text in TEXTS:
        assert (
            tok(text, add_special_tokens=False)["input_ids"]
            == folder_tok(text, add_special_tokens=False)["input_ids"]
        )
    checked = compare_greedy(path, tiny_llama, PROMPTS, max_new_tokens=8)
    assert checked["prompts"] == 3 and checked["tokenizer_identical"]
    assert checked["identical"] == 3, checked["rows"]


def test_q8_0_carries_exactly_the_q8_0_rounded_weights(exported, tiny_llama, folder_logits, tmp_path):
    path, info = exported["q8_0"]
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(path).tensors}
    assert types["token_embd.weight"] == types["blk.1.ffn_down.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["blk.1.ffn_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert info["bytes"] < exported["f16"][1]["bytes"]
    model, tok = load_gguf(path)
    # Rounding to q8_0 (8 bits per weight, one f16 scale per 32) moves this model's logits by up to
    # ~0.3 (of ~6): its weights are large (init 0.3) and amplify the error, enough to flip a greedy
    # token late in one of the three answers. So the file is checked against the folder's model
    # with the same q8_0 rounding applied to its weights in torch: logits must match to float
    # precision and greedy answers exactly, which a wrong layout, permutation or tensor would break.
    rounded = _folder_model(tiny_llama)
    with torch.no_grad():
        for param in rounded.parameters():
            if param.ndim == 2:
                q8 = gguf.quants.quantize(param.numpy(), gguf.GGMLQuantizationType.Q8_0)
                param.copy_(torch.from_numpy(gguf.quants.dequantize(q8, gguf.GGMLQuantizationType.Q8_0)))
    logits = _prompt_logits(model, tok)
    assert torch.allclose(logits, _prompt_logits(rounded, tok), atol=1e-4)
    assert torch.allclose(logits, folder_logits, atol=0.5), float((logits - folder_logits).abs().max())
    rounded.save_pretrained(tmp_path / "rounded")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tiny_llama / name).is_file():
            shutil.copy(tiny_llama / name, tmp_path / "rounded" / name)
    checked = compare_greedy(path, tmp_path / "rounded", PROMPTS, max_new_tokens=8)
    assert checked["identical"] == 3 and checked["tokenizer_identical"], checked["rows"]


def test_other_architectures_and_rope_scaling_are_refused(tiny_bert, tiny_llama, tmp_path):
    with pytest.raises(UnsupportedArchitecture, match=r"'bert'.*convert_hf_to_gguf\.py"):
        write_gguf(tiny_bert, tmp_path / "bert.gguf")
    scaled = shutil.copytree(tiny_llama, tmp_path / "scaled")
    cfg = json.loads((scaled / "config.json").read_text())
    cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0}
    (scaled / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedArchitecture, match=r"llama3.*convert_hf_to_gguf"):
        write_gguf(scaled, tmp_path / "scaled.gguf")
    with pytest.raises(ValueError, match="q8_0"):
        write_gguf(tiny_llama, tmp_path / "x.gguf", "q4_k")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scaled"]


def test_a_failed_write_leaves_no_file_and_keeps_the_old_one(tiny_llama, tmp_path, monkeypatch):
    target = tmp_path / "model.gguf"
    target.write_bytes(b"the earlier export")

    def broken(self, *, progress=False):
        self.write_ti_data_to_file()
        self.fout[0].write(b"half a tensor")
        raise OSError("disk full")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", broken)
    with pytest.raises(OSError, match="disk full"):
        write_gguf(tiny_llama, target, "q8_0", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["model.gguf"]
    assert target.read_bytes() == b"the earlier export"


def test_llama_cpp_reads_the_f16_file_like_the_folder(exported, tiny_llama, folder_logits):
    llama_cpp = pytest.importorskip("llama_cpp")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    text = tok.apply_chat_template(
        [{"role": "user", "content": PROMPTS[0]}], add_generation_prompt=True, tokenize=False
    )
    llm = llama_cpp.Llama(
        model_path=str(exported["f16"][0]), n_ctx=128, logits_all=True, n_threads=1, verbose=False
    )
    try:
        for s in [*TEXTS, text]:  # llama.cpp's own tokenizer, from the file's vocabulary, merges and pre name
            assert (
                llm.tokenize(s.encode(), add_bos=False, special=True)
                == tok(s, add_special_tokens=False)["input_ids"]
            )
        ids = tok(text, add_special_tokens=False)["input_ids"]
        llm.eval(ids)
        logits = torch.tensor(llm.scores[: len(ids)])
    finally:
        llm.close()
    # f16 weights, f32 arithmetic in a different order: measured 0.012 off; a layout error is units off
    assert torch.allclose(logits, folder_logits, atol=5e-2), float((logits - folder_logits).abs().max())
