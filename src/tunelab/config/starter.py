"""The commented starter recipe that ``tunelab init`` writes, and one fitted to a data file.

:data:`STARTER` is the bundled default (Rotten Tomatoes). :func:`fitted_starter` writes one for
the task, column mapping and labels found in a data file (``tunelab init --data``; the reading is
done by ``tunelab.cli.datafit`` with the data stage's readers, a layer above this one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
# explain:                # `tunelab explain`: attributions with their faithfulness (docs/explain.md)
#   n: 12                 # examples explained, picked by select: confident | misclassified | random
#   methods: [integrated_gradients, gradient_x_input, saliency, occlusion, shap, lime, attention]
# generate:               # `tunelab generate` (causal LMs; docs/generate.md)
#   decoding: {preset: balanced, num_samples: 4, max_new_tokens: 64}
#   sweep: {enabled: true}              # temperature x top-p: diversity vs quality, Pareto front
#   synthetic: {enabled: true, n: 200}  # new rows with provenance; a source the data stage reads
# audit:                  # `tunelab audit`: counterfactual and group fairness, gates, cards (docs/audit.md)
#   group_column: gender  # a column kept from the source (data.sources[0].keep: [gender])
#   gates: {flip_rate: 0.1, parity_difference: 0.1}
# export: {quantize: int8, format: gguf}   # `tunelab export`: merged, int8, GGUF (docs/serve.md)
# serve: {port: 8000, max_batch_size: 8}   # `tunelab serve RUN`: an OpenAI-compatible API

# stages: [data, train, evaluate, explain, audit, report]   # what `tunelab run` runs, in order
# plugins: [mypkg.stages]           # modules that register more stages, losses or metrics
"""

TASK_LINE = "task: @@TASK@@      # classification | regression | multilabel | sft | lm\n\n"


def _compose(task: str, data: str, metric: str = "accuracy", source: str | None = None) -> str:
    where = " ".join(str(source).splitlines())
    origin = f"# Fitted by `tunelab init --data` to {where}:\n# check the task, the columns and the labels.\n"
    origin = origin if source else ""
    body = SFT_BODY if task == "sft" else ENCODER_BODY.replace("@@METRIC@@", metric)
    head = HEADER.replace("@@FROM@@", origin)
    return head + TASK_LINE.replace("@@TASK@@", task.ljust(14)) + data + "\n" + body + FOOTER


STARTER = _compose("classification", DEFAULT_DATA)

# -- a starter fitted to a data file (what is in it: ``tunelab.cli.datafit``) --------------------

METRIC = {"classification": "accuracy", "multilabel": "micro_f1", "regression": "rmse"}


@dataclass
class Inferred:
    """What a data file says about the recipe: the task, our field -> its column, the labels."""

    task: str
    columns: dict[str, str] = field(default_factory=dict)
    labels: list[str] | None = None
    note: str = ""  # a comment for the labels line (e.g. why there is none)


def _flow(value: Any) -> str:
    """``value`` as one line of YAML flow style (quoted where YAML would misread it)."""
    import yaml

    dumped = yaml.safe_dump(
        [value], default_flow_style=True, allow_unicode=True, sort_keys=False, width=10**9
    ).strip()
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
        lines.append("  # the labels found in the file, lower-cased as the data stage normalises them; rows")
        lines.append("  # whose label is not listed go to data/quarantine.jsonl (edit the list or delete it)")
        lines.append(f"  labels: {_flow(found.labels)}")
    elif found.note:
        lines.append(f"  # labels: [...]   # {found.note}; list some to keep only those")
    stratify = "false" if found.task == "regression" else "true"
    lines.append(f"  split: {{validation: 0.1, test: 0.1, stratify: {stratify}}}")
    return "\n".join(lines) + "\n"


def fitted_starter(path: str, found: Inferred) -> str:
    """The starter recipe for the data file at ``path``, given what was found in it."""
    return _compose(found.task, data_section(path, found), METRIC.get(found.task, "accuracy"), source=path)
