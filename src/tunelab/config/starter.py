"""The commented starter recipe that ``tunelab init`` writes, and one fitted to a data file.

:data:`STARTER` is the bundled default (Rotten Tomatoes). :func:`starter_for` reads a sample of
the user's file with the data stage's own readers and fits the task, the column mapping and the
labels to it (:func:`infer_data`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = """\
# tunelab recipe: one file describes a whole run. `tunelab validate` checks it;
# `tunelab run` runs every stage; `tunelab <stage>` runs one. Override any key on the
# command line, e.g. `tunelab run recipe.yaml train.epochs=2`.
@@FROM@@
run:
  name: my-run            # folder under output_dir that holds every artifact
  output_dir: runs
  seed: 42                # splits, initialisation and data order all derive from it

"""

DEFAULT_DATA = """\
data:
  sources:
    - bundled: rotten_tomatoes       # or: path: reviews.jsonl (jsonl, csv, tsv, parquet)
      # columns: {text: review, label: sentiment}   # our field -> your column
      # chat / instruction data (task: sft; see configs/sft-quickstart.yaml) maps instead:
      #   columns: {messages: conversation}              # a list of {role, content} messages
      #   columns: {prompt: question, response: answer}  # or instruction / input / output
  # The labels below are the bundled Rotten Tomatoes ones. With your own file, edit the list
  # to your labels (lower-case) or delete the line to keep every label: rows whose label is
  # not listed go to data/quarantine.jsonl. (`tunelab init --data FILE` fills it in for you.)
  labels: [fresh, rotten]
  split: {validation: 0.1, test: 0.1, stratify: true}
"""

ENCODER_BODY = """\
model:
  name: minilm            # a bundled alias (`tunelab models`), a hub id, or a local folder
  max_length: 128
  adapter:
    method: none          # none (full fine-tune) | lora | dora
    r: 8
    alpha: 16
    dropout: 0.05
    target_modules: all-linear
  # head: {type: mlp, pooling: mean, dropout: 0.1}   # default: the model's own transformers head
  # freeze: {embeddings: true, layers: 2}             # freeze embeddings and the first N layers
  # dropout: {hidden: 0.1, attention: 0.1}            # override the model's dropout rates
  trust_remote_code: false
  allow_pickle: false     # safetensors only unless true

train:
  epochs: 2
  batch_size: 32
  grad_accum: 1
  learning_rate: 5.0e-5
  weight_decay: 0.01
  warmup_ratio: 0.06
  scheduler: linear       # linear | cosine | constant
  max_grad_norm: 1.0
  precision: auto         # auto picks bf16 only where the hardware runs it fast
  group_by_length: true   # batch similar lengths together: less padding, same results
  metric_for_best: @@METRIC@@   # any validation metric, or your own: mypkg.metrics:cost
  # loss: {name: focal, gamma: 2.0}     # cross_entropy | class_weighted | label_smoothing | focal | mse
  # strategies:                          # each acts on the training loop
  #   - {name: curriculum, difficulty: length, pacing: competence}
  #   - {name: gradual_unfreezing, every: epoch}
  #   - {name: layerwise_lr, decay: 0.9}
  #   - {name: early_stopping, patience: 2, metric: @@METRIC@@}

evaluate:
  split: test
  bootstrap_samples: 1000
  confidence: 0.95
  compare_base: true      # also score the base model, side by side in metrics/comparison.json
  # metrics: [mypkg.metrics:cost]   # more headline figures, with intervals
"""

SFT_BODY = """\
model:
  name: smollm2-135m-instruct   # a decoder with a chat template (`tunelab models`), a hub id or a folder
  max_length: 256
  adapter:
    method: lora          # none (full fine-tune) | lora | dora
    r: 16
    alpha: 32
    dropout: 0.05
    target_modules: all-linear
  trust_remote_code: false
  allow_pickle: false     # safetensors only unless true

train:
  epochs: 1
  batch_size: 8
  learning_rate: 5.0e-4
  warmup_ratio: 0.05
  precision: auto         # auto picks bf16 only where the hardware runs it fast
  metric_for_best: loss   # the loss covers the answer tokens only

evaluate:
  split: test
  bootstrap_samples: 500
  compare_base: true      # also score the base model, side by side in metrics/comparison.json
  generate_examples: 24   # answers generated for ROUGE-L
  max_new_tokens: 64
"""

FOOTER = """
# stages: [data, train, evaluate]   # what `tunelab run` runs, in order
# plugins: [mypkg.stages]           # modules that register more stages, losses or metrics
"""

TASK_LINE = "task: @@TASK@@      # classification | regression | multilabel | sft | lm\n\n"


def _compose(task: str, data: str, metric: str = "accuracy", source: str | None = None) -> str:
    origin = f"# Fitted by `tunelab init --data` to {source}: check the task, columns and labels.\n" if source else ""
    body = SFT_BODY if task == "sft" else ENCODER_BODY.replace("@@METRIC@@", metric)
    head = HEADER.replace("@@FROM@@", origin)
    return head + TASK_LINE.replace("@@TASK@@", task.ljust(14)) + data + "\n" + body + FOOTER


STARTER = _compose("classification", DEFAULT_DATA)

# -- fitting the recipe to a data file -------------------------------------------------------------

SAMPLE_ROWS = 2000  # rows whose columns are looked at (labels are collected from every row)
MAX_LABELS = 200  # more distinct values than this is not a label column worth listing

TEXT_COLUMNS = ("text", "sentence", "review", "content", "comment", "document", "body", "utterance",
                "tweet", "message", "title")
LABEL_COLUMNS = ("label", "labels", "sentiment", "class", "category", "target", "intent", "tag", "tags",
                 "topic", "rating", "stars", "score", "y")
CHAT_COLUMNS = ("messages", "conversation", "conversations", "chat", "dialog", "dialogue")
ASK_COLUMNS = ("prompt", "question", "query", "user")
ANSWER_COLUMNS = ("response", "answer", "completion", "reply", "assistant", "output")
METRIC = {"classification": "accuracy", "multilabel": "micro_f1", "regression": "rmse"}


@dataclass
class Inferred:
    """What a data file says about the recipe: the task, our field -> its column, the labels."""

    task: str
    columns: dict[str, str] = field(default_factory=dict)
    labels: list[str] | None = None
    note: str = ""  # a comment for the labels line (e.g. why there is none)


def infer_data(path: Path) -> Inferred:
    """Read ``path`` with the data stage's readers; tell its task, column mapping and labels."""
    from tunelab.config.data import DataConfig, SourceConfig
    from tunelab.data.sources import read_source

    src = SourceConfig(path=str(path))
    data = read_source(src, DataConfig(sources=[src], on_malformed="quarantine"), seed=0)
    rows = [r.row for r in data.rows if r.problem is None and isinstance(r.row, dict)]
    if not rows:
        raise ValueError(f"{path}: no readable rows to fit a recipe to")
    names = _column_names(rows[:SAMPLE_ROWS])
    chat = _chat_columns(rows[:SAMPLE_ROWS], names)
    if chat is not None:
        return Inferred("sft", chat)
    text = _pick(names, TEXT_COLUMNS) or _longest_text(rows[:SAMPLE_ROWS], names)
    label = _pick([n for n in names if n != text], LABEL_COLUMNS) or _fewest_values(
        rows[:SAMPLE_ROWS], [n for n in names if n != text]
    )
    if text is None or label is None:
        raise ValueError(
            f"{path}: cannot tell the text and label columns (columns: {names[:12]}); "
            "run `tunelab init` without --data and set data.sources[].columns yourself"
        )
    columns = {k: v for k, v in (("text", text), ("label", label)) if k != v}
    return _labels_of([r.get(label) for r in rows], columns)


def _column_names(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        seen.update(dict.fromkeys(str(k) for k in r))
    return list(seen)


def _pick(names: list[str], wanted: tuple[str, ...]) -> str | None:
    """The first of ``wanted`` among ``names`` (case-insensitive), as the file spells it."""
    by_lower = {n.lower(): n for n in reversed(names)}
    return next((by_lower[w] for w in wanted if w in by_lower), None)


def _is_chat(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def _chat_columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, str] | None:
    """The sft column mapping, when the file holds chat, instruction or prompt/response rows."""
    chats = [n for n in names if any(_is_chat(r.get(n)) for r in rows[:200])]
    if chats:
        col = _pick(chats, CHAT_COLUMNS) or chats[0]
        return {} if col == "messages" else {"messages": col}
    instruction = _pick(names, ("instruction",))
    output = _pick(names, ("output", "response", "answer", "completion"))
    if instruction and output:
        extra = _pick(names, ("input", "context"))
        mapping = {"instruction": instruction, "output": output}
        if extra:
            mapping["input"] = extra
        return {k: v for k, v in mapping.items() if k != v}
    ask = _pick(names, ASK_COLUMNS)
    answer = _pick(names, ANSWER_COLUMNS)
    if ask and answer and answer.lower() != "output":  # an `output` column reads as instruction data
        return {k: v for k, v in (("prompt", ask), ("response", answer)) if k != v}
    return None


def _longest_text(rows: list[dict[str, Any]], names: list[str]) -> str | None:
    def mean_len(n: str) -> float:
        values = [r.get(n) for r in rows]
        texts = [v for v in values if isinstance(v, str)]
        return sum(map(len, texts)) / len(texts) if len(texts) * 2 >= len(values) else 0.0

    best = max(names, key=mean_len, default=None)
    return best if best is not None and mean_len(best) > 0 else None


def _fewest_values(rows: list[dict[str, Any]], names: list[str]) -> str | None:
    counts = {n: len({_hashable(r.get(n)) for r in rows if r.get(n) is not None}) for n in names}
    fit = [n for n in names if 2 <= counts[n] <= MAX_LABELS]
    return min(fit, key=lambda n: counts[n], default=None)


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v if isinstance(v, str | int | float | bool) else str(v)


def _normalise(value: Any) -> str:
    """A label as the data stage keeps it: its string form, whitespace collapsed, lower-cased."""
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split()).lower()


def _labels_of(values: list[Any], columns: dict[str, str]) -> Inferred:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    present = [v for v in present if not (isinstance(v, str) and not v.strip())]
    if present and all(isinstance(v, list) for v in present):
        names = sorted({_normalise(x) for v in present for x in v} - {""})
        task = "multilabel"
    else:
        numbers = [n for n in map(_number, present) if n is not None]
        if present and len(numbers) == len(present) and any(not n.is_integer() for n in numbers):
            return Inferred("regression", columns, None, "numeric targets: no label list")
        names = sorted({_normalise(v) for v in present} - {""})
        task = "classification"
    if len(names) > MAX_LABELS:
        return Inferred(task, columns, None, f"{len(names)} distinct labels: too many to list")
    return Inferred(task, columns, names or None)


def _number(v: Any) -> float | None:
    """A numeric target (a CSV cell holds "0.75"), else ``None``."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        try:
            x = float(v)
        except ValueError:
            return None
        return x if math.isfinite(x) else None
    return None


def _flow(value: Any) -> str:
    """``value`` as one line of YAML flow style (quoted where YAML would misread it)."""
    import yaml

    dumped = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=10**9).strip()
    return dumped[1:-1]  # drop the list brackets put round it


def data_section(path: str, found: Inferred) -> str:
    lines = ["data:", "  sources:", f"    - path: {_flow(path)}"]
    if found.columns:
        lines.append(f"      columns: {_flow(found.columns)}   # our field -> your column")
    if found.task == "sft":
        lines.append("  # system_prompt: You are a helpful assistant.   # put first in every conversation")
        lines.append("  split: {validation: 0.1, test: 0.1, stratify: false}")
        return "\n".join(lines) + "\n"
    if found.labels:
        lines.append("  # the labels found in the file (lower-cased, as the data stage normalises them):")
        lines.append("  # rows whose label is not listed go to data/quarantine.jsonl; edit or delete to taste")
        lines.append(f"  labels: {_flow(found.labels)}")
    elif found.note:
        lines.append(f"  # labels: [...]   # {found.note}; list some to keep only those")
    stratify = "false" if found.task == "regression" else "true"
    lines.append(f"  split: {{validation: 0.1, test: 0.1, stratify: {stratify}}}")
    return "\n".join(lines) + "\n"


def starter_for(path: Path) -> tuple[str, Inferred]:
    """A starter recipe fitted to the data file at ``path``, and what was found (:func:`infer_data`)."""
    found = infer_data(path)
    text = _compose(
        found.task, data_section(str(path), found), METRIC.get(found.task, "accuracy"), source=str(path)
    )
    return text, found
