"""Wall time of tunelab's explanation bundle on one 64-token example against the same methods called naively.

The bundle is attention (+ rollout), integrated gradients (50 steps), gradient x input, occlusion, SHAP
(500 evaluations), LIME (1000 samples) and ERASER faithfulness of all six, on one test text of exactly
64 tokens (with [CLS]/[SEP]), for a MiniLM classifier fine-tuned briefly on the quickstart recipe. The
tunelab side calls each registered method with the recipe's precision and the shared batched predictor.
The baseline, the naive side, calls the same libraries with their defaults on the same weights: the
model loaded plainly in fp32, one text per forward pass (captum ``FeatureAblation`` with
``perturbations_per_eval=1``, ``shap.Explainer`` with the HF text masker, ``LimeTextExplainer``, and
each faithfulness variant its own pass). Each side runs in its own process; the first bundle (cold:
imports, numba JIT) is reported apart, then the median of ``--repeats`` bundles. ``--examples N`` also
times the whole explain stage on N test examples (all methods, faithfulness, global view, rules,
layers); ``--examples 0`` skips it.

    python benchmarks/explain_bundle.py [--workdir DIR] [--repeats 3] [--examples 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = "configs/quickstart.yaml"
METHODS = ("attention", "integrated_gradients", "gradient_x_input", "occlusion", "shap", "lime")
ROWS = ("predict", *METHODS, "faithfulness")
N_TOKENS, FRACTIONS, RANDOM_REPEATS, LONG_S = 64, (0.01, 0.05, 0.10, 0.20), 3, 60.0


def load(workdir: Path, extra: list[str] = ()):
    from tunelab.config import load_recipe

    base = [f"run.output_dir={workdir}", "train.max_steps=60", "model.max_length=128", "stages=[data,train]"]
    return load_recipe(RECIPE, [*base, *extra])


def prepare(workdir: Path) -> Path:
    """The quickstart data stage and a short train, unless ``workdir`` already holds the model."""
    from tunelab.pipeline import run_pipeline
    from tunelab.tasks.base import MODEL_INFO

    recipe = load(workdir)
    if not (recipe.run_dir_path() / "model" / MODEL_INFO).is_file():
        start = time.perf_counter()
        run_pipeline(recipe)
        print(f"setup: data + 60 train steps in {time.perf_counter() - start:.0f} s", flush=True)
    return recipe.run_dir_path()


def pick_text(run_dir: Path) -> str:
    """Test texts run together and cut at a word boundary so that they are exactly 64 tokens."""
    from transformers import AutoTokenizer

    from tunelab.runs import read_jsonl

    tok = AutoTokenizer.from_pretrained(str(run_dir / "model"))
    texts = [str(r["text"]) for r in read_jsonl(run_dir / "data/test.jsonl")]
    for i in range(len(texts)):
        words = " ".join(texts[i : i + 4]).split()
        for j in range(len(words), 0, -1):
            n = len(tok(" ".join(words[:j]))["input_ids"])
            if n == N_TOKENS:
                return " ".join(words[:j])
            if n < N_TOKENS:
                break
    raise SystemExit(f"no run of test texts cuts to exactly {N_TOKENS} tokens")


def count_passes(*models) -> dict:
    """Forward passes and rows through ``models`` (a pre-hook), for the side by side."""
    seen = {"passes": 0, "rows": 0}

    def hook(_, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        seen["passes"] += 1
        seen["rows"] += int(ids.shape[0]) if ids is not None else 0

    for model in models:
        model.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


class Clock:
    """Seconds per named step: each ``lap`` closes the step that began at the previous one."""

    def __init__(self) -> None:
        self.secs: dict[str, float] = {}
        self.start = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.secs[name], self.start = now - self.start, now


def repeat(bundle, repeats: int, seen: dict) -> dict:
    """The cold first bundle, then the median of ``repeats`` (1 when a warm bundle takes over a minute)."""
    cold = bundle()
    before = dict(seen)
    warm = [bundle()]
    while len(warm) < repeats and sum(warm[0].values()) <= LONG_S:
        warm.append(bundle())
    median = {k: statistics.median(w[k] for w in warm) for k in ROWS}
    per = {k: (seen[k] - before[k]) // len(warm) for k in seen}
    return {"cold": cold, "median": median, "repeats": len(warm), "total": sum(median.values()), **per}


def tunelab_side(workdir: Path, text: str, repeats: int, precision: str) -> dict:
    import torch

    from tunelab.explain.choose import subject_for
    from tunelab.explain.context import load_context
    from tunelab.explain.faithfulness import example_faithfulness
    from tunelab.explain.registry import get_method
    from tunelab.runs import RunDir

    budgets = ["explain.ig_steps=50", "explain.shap_max_evals=500", "explain.lime_num_samples=1000"]
    recipe = load(workdir, [*budgets, f"train.precision={precision}"])
    ctx = load_context(recipe, RunDir(recipe.run_dir_path()))
    seen = count_passes(ctx.model)

    def bundle() -> dict:
        clock, attrs = Clock(), {}
        subject = subject_for(ctx, text)
        clock.lap("predict")
        for name in METHODS:
            attrs[name] = get_method(name).fn(ctx, subject)
            clock.lap(name)
        example_faithfulness(ctx, subject, {n: subject.word_scores(a.token_scores) for n, a in attrs.items()})
        clock.lap("faithfulness")
        return clock.secs

    out = repeat(bundle, repeats, seen)
    return {**out, "precision": ctx.predictor.precision, "threads": torch.get_num_threads()}


def naive_side(run_dir: Path, text: str, repeats: int) -> dict:
    """What a user writes from each library's README: defaults, one text per forward pass, fp32."""
    import numpy as np
    import shap
    import torch
    from captum.attr import FeatureAblation, LayerGradientXActivation, LayerIntegratedGradients
    from lime.lime_text import LimeTextExplainer
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = str(run_dir / "model")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    eager = AutoModelForSequenceClassification.from_pretrained(path, attn_implementation="eager").eval()
    labels = json.loads((run_dir / "data/labels.json").read_text())["labels"]
    seen = count_passes(model, eager)

    @torch.no_grad()
    def predict_ids(id_lists) -> np.ndarray:
        return np.stack(
            [torch.softmax(model(input_ids=torch.tensor([i])).logits, -1)[0].numpy() for i in id_lists]
        )

    def predict(texts) -> np.ndarray:
        return predict_ids([tok(str(t))["input_ids"] for t in texts])

    def logits(ids, mask):
        return model(input_ids=ids, attention_mask=mask).logits

    def probs(ids, mask):
        return torch.softmax(logits(ids, mask), -1)

    def bundle() -> dict:
        clock, scores = Clock(), {}
        enc = tok(text, return_tensors="pt")
        ids, mask, word_ids = enc["input_ids"], enc["attention_mask"], enc.word_ids()
        target = int(predict([text])[0].argmax())
        n_words = max(w for w in word_ids if w is not None) + 1
        words = [""] * n_words
        for w, (a, b) in zip(word_ids, tok(text, return_offsets_mapping=True)["offset_mapping"], strict=True):
            if w is not None:
                words[w] += text[a:b]

        def to_words(token_scores) -> np.ndarray:
            return np.bincount(
                [w for w in word_ids if w is not None],
                minlength=n_words,
                weights=[float(s) for w, s in zip(word_ids, token_scores, strict=True) if w is not None],
            )

        clock.lap("predict")
        with torch.no_grad():
            maps = np.stack([a[0].numpy() for a in eager(**enc, output_attentions=True).attentions])
        rolled = np.eye(maps.shape[-1])
        for layer in maps.astype(np.float64):
            a = 0.5 * np.eye(len(rolled)) + 0.5 * layer.mean(0)
            rolled = (a / a.sum(-1, keepdims=True)) @ rolled
        scores["attention"] = to_words(rolled[0])
        clock.lap("attention")
        base = ids.clone()
        base[0, 1:-1] = tok.pad_token_id
        lig = LayerIntegratedGradients(logits, model.get_input_embeddings())
        attr = lig.attribute(ids, baselines=base, additional_forward_args=(mask,), target=target)
        scores["integrated_gradients"] = to_words(attr.sum(-1)[0].detach().numpy())
        clock.lap("integrated_gradients")
        gxi = LayerGradientXActivation(logits, model.get_input_embeddings())
        attr = gxi.attribute(ids, additional_forward_args=(mask,), target=target)
        scores["gradient_x_input"] = to_words(attr.sum(-1)[0].detach().numpy())
        clock.lap("gradient_x_input")
        groups = torch.tensor([[n_words if w is None else w for w in word_ids]])
        with torch.no_grad():
            attr = FeatureAblation(probs).attribute(
                ids,
                baselines=tok.mask_token_id,
                target=target,
                additional_forward_args=(mask,),
                feature_mask=groups,
            )
        scores["occlusion"] = to_words(attr[0].numpy()) / to_words(np.ones(len(word_ids)))
        clock.lap("occlusion")
        exp = shap.Explainer(predict, shap.maskers.Text(tok))([text], max_evals=500, silent=True)
        scores["shap"] = to_words(exp.values[0][:, target])
        clock.lap("shap")
        lime = LimeTextExplainer(class_names=labels, random_state=0)
        exp = lime.explain_instance(text, predict, labels=(target,), num_features=10, num_samples=1000)
        weight = {exp.domain_mapper.indexed_string.word(f): v for f, v in exp.as_map()[target]}
        scores["lime"] = np.array([weight.get(w, 0.0) for w in words])
        clock.lap("lime")
        # ERASER: each variant of each ranking (and of the random ones) is its own forward pass
        rng, full = np.random.default_rng(0), ids[0].tolist()
        rankings = [np.argsort(-s, kind="stable") for s in scores.values()]
        rankings += [rng.permutation(n_words) for _ in range(RANDOM_REPEATS)]
        f_full = predict_ids([full])[0, target]
        for order in rankings:
            for k in (min(n_words, max(1, math.ceil(f * n_words))) for f in FRACTIONS):
                top = set(order[:k].tolist())
                removed = [t for t, w in zip(full, word_ids, strict=True) if w is None or w not in top]
                kept = [t for t, w in zip(full, word_ids, strict=True) if w is None or w in top]
                _ = f_full - predict_ids([removed])[0, target], f_full - predict_ids([kept])[0, target]
        clock.lap("faithfulness")
        return clock.secs

    return {**repeat(bundle, repeats, seen), "precision": "fp32", "threads": torch.get_num_threads()}


def examples_side(workdir: Path, n: int, precision: str) -> dict:
    import torch

    from tunelab.pipeline import run_stage
    from tunelab.runs import read_jsonl

    recipe = load(workdir, [f"explain.n={n}", f"train.precision={precision}"])
    start = time.perf_counter()
    result = run_stage("explain", recipe, force=True)
    seconds = time.perf_counter() - start
    records = read_jsonl(recipe.run_dir_path() / "explain/examples.jsonl")
    names = sorted({m for r in records for m in r["methods"]})
    per_method = {
        m: statistics.mean(r["methods"][m]["seconds"] for r in records if m in r["methods"]) for m in names
    }
    out = {
        "examples": len(records),
        "seconds": seconds,
        "method_mean_s": per_method,
        "metrics": result.metrics,
    }
    return {**out, "per_example_s": seconds / max(1, len(records)), "threads": torch.get_num_threads()}


def side(args, name: str) -> dict:
    cmd = [sys.executable, __file__, "--side", name, "--workdir", str(args.workdir), "--repeats"]
    cmd += [str(args.repeats), "--examples", str(args.examples), "--precision", args.precision]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"the {name} side failed:\n{out.stderr[-3000:]}")
    return json.loads(next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT ") :])


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="ignore")
        return next(x.split(":", 1)[1].strip() for x in text.splitlines() if x.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="keep the trained run here (reused when it has a model)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--examples", type=int, default=200, help="explain stage on N test examples (0: skip)")
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto", help="tunelab's side")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--side", choices=["tunelab", "naive", "examples"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.side:
        text = (args.workdir / "bench_text.txt").read_text(encoding="utf-8")
        run_dir = load(args.workdir).run_dir_path()
        out = {
            "tunelab": lambda: tunelab_side(args.workdir, text, args.repeats, args.precision),
            "naive": lambda: naive_side(run_dir, text, args.repeats),
            "examples": lambda: examples_side(args.workdir, args.examples, args.precision),
        }[args.side]()
        print("RESULT " + json.dumps(out, default=float), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        args.workdir = (args.workdir or Path(tmp)).resolve()
        run_dir = prepare(args.workdir)
        text = pick_text(run_dir)
        (args.workdir / "bench_text.txt").write_text(text, encoding="utf-8")
        print(f"text ({N_TOKENS} tokens with [CLS]/[SEP]):\n  {text}", flush=True)
        load_before = os.getloadavg()[0]
        results = {"naive": side(args, "naive"), "tunelab": side(args, "tunelab")}  # the baseline first
        if args.examples:
            results["examples"] = side(args, "examples")
    from tunelab.train.precision import cpu_has_fast_bf16

    tl, nv = results["tunelab"], results["naive"]
    machine = {
        "cpu": cpu_name(),
        "fast_bf16": cpu_has_fast_bf16(),
        "cores": os.cpu_count(),
        "text": text,
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }
    bf16 = "yes" if machine["fast_bf16"] else "no"
    print(f"\nexplain bundle, MiniLM quickstart classifier (60 steps), one {N_TOKENS}-token text")
    print(
        f"tunelab: precision {tl['precision']}, median of {tl['repeats']}; "
        f"naive: fp32, one text per pass, median of {nv['repeats']}"
    )
    heads = (("tunelab cold", 13), ("tunelab s", 11), ("naive cold", 12), ("naive s", 10), ("speed-up", 10))
    print(f"{'method':<22}" + "".join(f"{h:>{w}}" for h, w in heads))
    for k in (*ROWS, "total"):
        c_tl, c_nv = (sum(r["cold"].values()) if k == "total" else r["cold"][k] for r in (tl, nv))
        m_tl, m_nv = (r["total"] if k == "total" else r["median"][k] for r in (tl, nv))
        print(f"{k:<22}{c_tl:>13.3f}{m_tl:>11.3f}{c_nv:>12.3f}{m_nv:>10.3f}{m_nv / max(m_tl, 1e-9):>9.1f}x")
    print(
        f"forward passes (rows) per bundle: tunelab {tl['passes']} ({tl['rows']}), "
        f"naive {nv['passes']} ({nv['rows']})"
    )
    speedup = nv["total"] / tl["total"]
    print(
        f"target bundle < 3 s: {'yes' if tl['total'] < 3 else 'NO'} ({tl['total']:.2f} s); "
        f"speed-up >= 5x: {'yes' if speedup >= 5 else 'NO'} ({speedup:.1f}x)"
    )
    print(
        f"CPU {machine['cpu']} ({machine['cores']} cores), fast bf16: {bf16}, "
        f"torch threads {tl['threads']} (naive {nv['threads']}); 1-min load average before / after "
        f"{load_before:.2f} / {machine['load_average_1min'][1]:.2f} (other work skews all figures)"
    )
    if "examples" in results:
        ex = results["examples"]
        print(
            f"\nexplain stage, {ex['examples']} test examples end to end: {ex['seconds']:.1f} s, "
            f"{ex['per_example_s']:.3f} s per example "
            "(all methods, faithfulness, global view, rules, layers, page)"
        )
        print(
            "per-method mean s per example: "
            + ", ".join(f"{m} {s:.3f}" for m, s in ex["method_mean_s"].items())
        )
    if args.json:
        args.json.write_text(json.dumps({**results, "machine": machine, "speedup": speedup}, indent=2) + "\n")


if __name__ == "__main__":
    main()
