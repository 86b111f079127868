"""Shared fixtures: tiny models built from configs (no downloads) and small recipes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.helpers import corpus, qa_rows, sentiment_rows, write_jsonl

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="session", autouse=True)
def tunelab_cache():
    """``TUNELAB_CACHE`` for the whole session: a folder of this session only, removed at its end.

    Model conversions (the bundled SmolLM2 GGUF, ~25 s) then happen once per session and never write
    into the real ``~/.cache/tunelab``; subprocesses inherit the variable.
    """
    folder = Path(tempfile.mkdtemp(prefix="tunelab-test-cache-"))
    before = os.environ.get("TUNELAB_CACHE")
    os.environ["TUNELAB_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("TUNELAB_CACHE", None)
    else:
        os.environ["TUNELAB_CACHE"] = before
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT (hidden 32) with a WordPiece tokenizer trained on a toy vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    # A fixed vocabulary (trained once on ``corpus()``): the WordPiece trainer breaks ties differently
    # in every process, and a different vocabulary trains a different model (flaky tests).
    words = (Path(__file__).parent / "data" / "tiny_bert_vocab.txt").read_text(encoding="utf-8").split("\n")
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(w for w in words if w)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    cfg = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=fast.pad_token_id,
    )
    import torch

    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A 2-layer Llama (hidden 32) with a BPE tokenizer and a ChatML chat template."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<unk>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=500, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([*corpus(), "system user assistant\n"], trainer)
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        bos_token="<|im_start|>",
        model_max_length=256,
    )
    fast.chat_template = CHATML
    cfg = LlamaConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        tie_word_embeddings=True,
        initializer_range=0.3,  # frozen embeddings need scale for LoRA to move logits
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture
def classification_files(tmp_path) -> dict[str, Path]:
    return {"train": write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(240))}


@pytest.fixture
def sft_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "qa.jsonl", qa_rows(160))


@pytest.fixture(scope="session")
def minilm_run(tmp_path_factory):
    """The quickstart recipe (MiniLM on Rotten Tomatoes) briefly trained, once per session.

    The slow tests of later stages (explain, ...) share it instead of each training its own. It
    returns ``(recipe path, overrides)``: a test loads the recipe with its own extra overrides, and
    the run directory (``recipe.run_dir_path()``) already holds ``data/`` and ``model/``.
    """
    from tunelab.config import load_recipe
    from tunelab.pipeline import run_pipeline

    root = Path(__file__).resolve().parents[1]
    path = root / "configs/quickstart.yaml"
    out = tmp_path_factory.mktemp("minilm-run")
    # 160 steps of 32 texts (about a third of an epoch): test accuracy about 0.8
    overrides = [f"run.output_dir={out}", "train.max_steps=160", "model.max_length=64", "stages=[data,train]"]
    run_pipeline(load_recipe(path, overrides))
    return path, overrides


@pytest.fixture
def fresh_accelerator_state():
    """accelerate keeps one process-wide state and refuses another mixed_precision once it is set:
    tests that force fp32 (or bf16) start from, and leave, a clean one."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    yield
    AcceleratorState._reset_state()
