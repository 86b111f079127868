"""SFT training throughput: tunelab's sft task against HF ``Trainer`` + peft and TRL's ``SFTTrainer``,
each set up as an informed user would.

SmolLM2-135M-Instruct (the bundled GGUF, converted once into tunelab's cache folder, fp32 weights),
LoRA r16 / alpha 32 / dropout 0.05 on every linear layer but the LM head, batch 8, max length 128,
``--steps`` optimiser steps (default 40), learning rate 5e-4, 5 % warm-up, weight decay 0.01, on the
chatterbot pairs of configs/sft-quickstart.yaml after tunelab's data stage. bf16 autocast where the
machine has fast bf16 (a bf16 GPU, or a CPU with AMX / AVX512-BF16), else fp32; SDPA attention.

- ``tunelab``: its sft task, the recipe's own settings (length grouping on), overrides for the above.
- ``HF + peft``: ``Trainer`` on a ``get_peft_model`` model, ``bf16`` (``use_cpu`` on CPU), length
  grouping, ``use_cache=False``, answer-only loss: examples built the way tunelab's sft task builds
  them (the tokenizer's chat template; prompt = every message but the last, with the generation
  prompt; labels -100 on the prompt tokens; truncated to the max length; a row whose answer is cut
  away is dropped), checked token for token against tunelab's own ``SFTTask.encode``.
- ``TRL``: ``SFTTrainer`` on conversational prompt-completion rows with ``completion_only_loss=True``,
  the same LoRA as ``peft_config``, the same flags, ``gradient_checkpointing=False`` (TRL turns it on
  by default; no other side recomputes). Skipped, with the reason, when ``trl`` does not import
  (``pip install 'tunelab[bench]'``).

Counting, as in train_throughput.py: real tokens (``attention_mask.sum()`` of the batches trained,
prompt and answer) over the training steps' time only (collate to optimiser step; no model load,
tokenisation, evaluation or saving), each side in its own process, peak memory its ``ru_maxrss`` (on
CUDA ``max_memory_allocated``). Validation loss: the mean cross-entropy over the answer tokens of all
the same validation rows (sum of NLL / answer tokens, under the training precision), computed by
tunelab itself for its side and by ``answer_loss`` here for the others.

FLOP per trained token (LoRA, frozen base): ``4 * sum(in * out of every nn.Linear, LM head included)``
(forward 2, backward to the activations 2, no weight gradient) ``+ 6 * LoRA weights + 12 * layers *
width * T`` (PaLM's attention term; ``T = sum(len^2) / sum(len)`` over the train examples). The LM
head counts at every position, as the MFU convention does. GFLOP/s = tokens/s x that, against the
matmul peak timed in the same run in the side's precision.

    python benchmarks/sft_throughput.py [--steps 40] [--repeat 3] [--json PATH]
    python benchmarks/sft_throughput.py --ablate      # tunelab alone, one speed switch added per row
    python benchmarks/sft_throughput.py --quick       # a smoke test: 3 steps, 32 train and 8 validation rows
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

CONFIG = "configs/sft-quickstart.yaml"
HP = {"batch_size": 8, "max_length": 128, "learning_rate": 5e-4, "warmup_ratio": 0.05, "weight_decay": 0.01,
      "seed": 42, "r": 16, "alpha": 32, "dropout": 0.05}
IGNORE = -100


def recipe_overrides(steps: int) -> list[str]:
    h = HP
    return [
        f"run.seed={h['seed']}", f"train.max_steps={steps}", f"train.batch_size={h['batch_size']}",
        f"train.learning_rate={h['learning_rate']}", f"train.warmup_ratio={h['warmup_ratio']}",
        f"train.weight_decay={h['weight_decay']}", f"model.max_length={h['max_length']}",
        f"model.adapter.r={h['r']}", f"model.adapter.alpha={h['alpha']}",
        f"model.adapter.dropout={h['dropout']}", "model.adapter.target_modules=all-linear",
    ]


def model_path() -> str:
    """The converted SmolLM2 folder (tunelab converts the bundled GGUF once into its cache)."""
    from tunelab.config import load_recipe
    from tunelab.models.resolve import resolve_model_path

    return resolve_model_path(load_recipe(CONFIG).model)


def encode(rows: list[dict[str, Any]], tok) -> list[dict[str, list[int]]]:
    """Answer-only examples, built the way tunelab's sft task builds them (see the docstring)."""
    def ids(x) -> list[int]:
        return list(x["input_ids"] if hasattr(x, "keys") else x)

    out = []
    for r in rows:
        prompt = ids(tok.apply_chat_template(r["messages"][:-1], add_generation_prompt=True))
        full = ids(tok.apply_chat_template(r["messages"]))
        if full[: len(prompt)] != prompt:
            prompt = prompt[: len(full)]
        full = full[: HP["max_length"]]
        labels = [IGNORE] * min(len(prompt), len(full)) + full[len(prompt):]
        if any(t != IGNORE for t in labels):
            out.append({"input_ids": full, "labels": labels})
    return out


def load(run_dir: Path, split: str):
    from transformers import AutoTokenizer

    from tunelab.runs import read_jsonl

    tok = AutoTokenizer.from_pretrained(model_path())
    tok.pad_token = tok.pad_token or tok.eos_token
    tok.padding_side = "right"
    return tok, read_jsonl(run_dir / f"data/{split}.jsonl")


def answer_loss(model, feats: list[dict[str, list[int]]], pad_id: int, bf16: bool) -> float:
    """Mean CE over answer tokens: summed NLL / answer-token count, 8 rows a pass, right padding."""
    import torch
    import torch.nn.functional as F

    model.eval()
    dev, nll, n = next(model.parameters()).device, 0.0, 0
    with torch.no_grad():
        for i in range(0, len(feats), 8):
            chunk = feats[i : i + 8]
            width = max(len(f["input_ids"]) for f in chunk)
            ids = torch.full((len(chunk), width), pad_id)
            labels = torch.full((len(chunk), width), IGNORE)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, f in enumerate(chunk):
                k = len(f["input_ids"])
                ids[j, :k], labels[j, :k] = torch.tensor(f["input_ids"]), torch.tensor(f["labels"])
                mask[j, :k] = 1
            ids, labels, mask = ids.to(dev), labels.to(dev), mask.to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            target = labels[:, 1:]
            nll += float(F.cross_entropy(logits[:, :-1].float().transpose(1, 2), target, reduction="sum"))
            n += int((target != IGNORE).sum())
    return nll / max(n, 1)


# ---- the sides (each in its own process) ----------------------------------------------------------


def side_tunelab(run_dir: Path, steps: int, overrides: list[str]) -> dict[str, Any]:
    r = C.run_tunelab(CONFIG, run_dir, recipe_overrides(steps) + overrides)
    return {**r, "val_loss": r["final_validation"].get("loss")}


def _args(cls, run_dir: Path, steps: int, bf16: bool, **kw: Any):
    """The training arguments both HF sides share (an informed user's flags included)."""
    import torch

    h = HP
    flags = {"bf16": bf16, "use_cpu": not torch.cuda.is_available()}
    if "train_sampling_strategy" in cls.__dataclass_fields__:
        flags["train_sampling_strategy"] = "group_by_length"
    else:  # transformers 4.x
        flags["group_by_length"] = True
    return cls(
        output_dir=str(run_dir / "hf"), per_device_train_batch_size=h["batch_size"], max_steps=steps,
        learning_rate=h["learning_rate"], warmup_steps=int(h["warmup_ratio"] * steps),
        weight_decay=h["weight_decay"], seed=h["seed"], save_strategy="no", report_to=[], disable_tqdm=True,
        **flags, **kw,
    )


def _lora():
    from peft import LoraConfig

    h = HP
    return LoraConfig(task_type="CAUSAL_LM", r=h["r"], lora_alpha=h["alpha"], lora_dropout=h["dropout"],
                      target_modules="all-linear")


def _base_model():
    import torch
    from transformers import AutoModelForCausalLM

    path = model_path()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
    model.config.use_cache = False
    return model


def side_hf(run_dir: Path, steps: int, trl: bool) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import set_seed

    set_seed(HP["seed"])
    tok, rows = load(run_dir, "train")
    _, val_rows = load(run_dir, "validation")
    val, bf16 = encode(val_rows, tok), C.fast_bf16()
    extra: dict[str, Any] = {}
    if trl:
        from trl import SFTConfig, SFTTrainer

        pairs = [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows]
        data = Dataset.from_list(pairs)
        args = _args(SFTConfig, run_dir, steps, bf16, max_length=HP["max_length"], completion_only_loss=True,
                     gradient_checkpointing=False, logging_steps=500)
        trainer = SFTTrainer(model=_base_model(), args=args, train_dataset=data, processing_class=tok,
                             peft_config=_lora())
        mine = encode(rows, tok)
        built = [{"input_ids": x["input_ids"], "labels": x["labels"]} for x in trainer.train_dataset]
        extra["examples_as_tunelab"] = same_count(built, mine)
    else:
        from peft import get_peft_model
        from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

        model = get_peft_model(_base_model(), _lora())
        trainer = Trainer(model=model, args=_args(TrainingArguments, run_dir, steps, bf16),
                          train_dataset=Dataset.from_list(encode(rows, tok)), processing_class=tok,
                          data_collator=DataCollatorForSeq2Seq(tok, label_pad_token_id=IGNORE))
    timing = C.StepTiming(trainer)
    trainer.train()
    loss = answer_loss(trainer.model, val, tok.pad_token_id, bf16)
    return {**timing.figures(), **extra, "precision": "bf16" if bf16 else "fp32", "val_loss": loss}


# ---- the parent -----------------------------------------------------------------------------------


def same_count(ours: list[dict], theirs: list[dict]) -> str:
    """'k/n': how many of the n examples match token for token (labels included)."""
    return f"{sum(a == b for a, b in zip(ours, theirs, strict=False))}/{max(len(ours), len(theirs))}"


def check_and_flop(run_dir: Path) -> tuple[float, dict[str, Any]]:
    """FLOP per token, and whether ``encode`` builds tunelab's own examples (train and validation)."""
    from tunelab.config import load_recipe
    from tunelab.tasks import get_task

    recipe = load_recipe(CONFIG, recipe_overrides(1))
    tok, train = load(run_dir, "train")
    _, val = load(run_dir, "validation")
    task, same = get_task("sft"), {}
    for split, rows in (("train", train), ("validation", val)):
        ours, theirs = encode(rows, tok), task.encode(rows, tok, recipe)
        same[split] = same_count(ours, theirs)
    lengths = [len(f["input_ids"]) for f in encode(train, tok)]
    path = model_path()
    shapes = C.linear_shapes(path, "AutoModelForCausalLM")
    frozen = sum(i * o for _, i, o in shapes)
    lora = sum(HP["r"] * (i + o) for name, i, o in shapes if not name.endswith("lm_head"))
    context = C.token_weighted_length(lengths)
    attn = C.attention_flop(path, context)
    parts = {"frozen_linear_weights": frozen, "lora_weights": lora, "context": context,
             "mean_length": sum(lengths) / len(lengths), "attention_flop": attn, "examples_as_tunelab": same}
    return 4.0 * frozen + 6.0 * lora + attn, parts


def child(run_dir: Path, args, side: str, overrides: list[str]) -> dict[str, Any]:
    argv = [__file__, "--side", side, "--run-dir", str(run_dir), "--steps", str(args.steps)]
    return C.run_child([*argv, "--overrides", json.dumps(overrides)], timeout=900 if args.quick else None)


def trl_status() -> str | None:
    """None when trl imports, else why not."""
    try:
        import trl  # noqa: F401
    except Exception as exc:  # ImportError, or a trl built for other torch/transformers versions
        return f"trl does not import ({type(exc).__name__}: {exc}); pip install 'tunelab[bench]'"
    return None


def compare(args, run_dir: Path, flop: float, peak) -> dict[str, Any]:
    why = trl_status()
    measures = {
        "tunelab": lambda: child(run_dir, args, "tunelab", []),
        "HF + peft": lambda: child(run_dir, args, "hf", []),
    }
    if not why:
        measures["TRL SFTTrainer"] = lambda: child(run_dir, args, "trl", [])
    sides = C.interleaved(measures, args.repeat)
    if why:
        sides["TRL SFTTrainer"] = {"skipped": why}
    hf, tl = sides["HF + peft"], sides["TRL SFTTrainer"]
    rows = []
    for name, r in sides.items():
        if "error" in r or "skipped" in r:
            rows.append([name, ("failed: " + r["error"] if "error" in r else "skipped")[:100], *[""] * 7])
            continue
        gflops, share = C.efficiency(r, flop, peak)
        rows.append([name, r["precision"], f"{r['tokens_per_s']:,.0f}", C.ratio(r, hf), C.ratio(r, tl),
                     f"{C.peak_mb(r):,.0f}", f"{r['val_loss']:.4f}", f"{gflops:,.1f}", f"{share:.1%}"])
    print(f"\nSmolLM2-135M + LoRA r{HP['r']} all-linear, {args.steps} steps of batch {HP['batch_size']}, "
          f"max length {HP['max_length']}, chatterbot pairs")
    C.print_table(["side", "precision", "tokens/s", "vs HF + peft", "vs TRL", "peak MB", "val loss",
                   "GFLOP/s", "of matmul peak"], rows)
    for name, r in sides.items():
        if "skipped" in r or "error" in r:
            print(f"  {name}: {r.get('skipped') or r.get('error')}")
        if len(r.get("runs_tokens_per_s", [])) > 1:
            print(f"  {name}: tokens/s of its runs {r['runs_tokens_per_s']} (the median run is shown)")
        if "examples_as_tunelab" in r:
            print(f"  {name}: train examples identical to tunelab's: {r['examples_as_tunelab']}")
    C.print_round_ratios("tunelab", sides["tunelab"], "HF + peft", hf)
    return sides


def ablate(args, run_dir: Path, flop: float, peak, budget: int) -> list[dict[str, Any]]:
    def measure(overrides: list[str]) -> dict[str, Any]:
        return child(run_dir, args, "tunelab", overrides)

    rows = C.ablation_rows(budget, compile=not args.no_compile)
    out = C.run_ablation(CONFIG, recipe_overrides(args.steps), rows, measure)
    print(f"\ntunelab ablation, SmolLM2-135M + LoRA, {args.steps} steps, a switch more a row")
    C.print_ablation(out, flop, peak, "val loss", "val_loss", "{:.4f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--val-rows", type=int, default=None, help="default: the whole validation split")
    ap.add_argument("--ablate", action="store_true", help="tunelab alone, one speed switch added per row")
    ap.add_argument("--repeat", type=int, default=1, help="run the sides this many times, interleaved")
    ap.add_argument("--no-compile", action="store_true", help="ablation without the compile row")
    ap.add_argument("--quick", action="store_true", help="smoke test: 3 steps, 32 train, 8 validation rows")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--side", choices=["tunelab", "hf", "trl"], help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--overrides", default="[]", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.side:
        if args.side == "tunelab":
            C.emit(side_tunelab(args.run_dir, args.steps, json.loads(args.overrides)))
        else:
            C.emit(side_hf(args.run_dir, args.steps, trl=args.side == "trl"))
        return
    train_rows = None
    if args.quick:
        args.steps, args.val_rows, train_rows = 3, 8, 32
    info, peak = C.machine(), C.matmul_peak()
    C.print_machine(info, peak)
    model_path()  # the one-off GGUF conversion, outside every side
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = C.prepare(CONFIG, Path(tmp), train_rows, args.val_rows)
        flop, parts = check_and_flop(run_dir)
        print(f"FLOP per trained token {flop / 1e6:.1f} M (4 x {parts['frozen_linear_weights'] / 1e6:.1f} M "
              f"frozen Linear + 6 x {parts['lora_weights'] / 1e6:.2f} M LoRA + attention at context "
              f"{parts['context']:.1f}; mean example {parts['mean_length']:.1f} tokens)")
        print(f"benchmark examples identical to tunelab's SFTTask.encode: {parts['examples_as_tunelab']}")
        budget = HP["batch_size"] * round(parts["mean_length"])
        if args.ablate:
            results: Any = ablate(args, run_dir, flop, peak, budget)
        else:
            results = compare(args, run_dir, flop, peak)
    C.write_json(args.json, {
        "benchmark": "sft_throughput", "mode": "ablate" if args.ablate else "compare",
        "args": {k: v for k, v in vars(args).items() if k not in ("side", "run_dir", "overrides")},
        "hparams": HP, "machine": info, "matmul_peak_gflops": peak, "flop_per_token": flop,
        "flop_parts": parts, "results": results,
    })


if __name__ == "__main__":
    main()
