"""The commented starter recipe that ``tunelab init`` writes."""

STARTER = """\
# tunelab recipe: one file describes a whole run. `tunelab validate` checks it;
# `tunelab run` runs every stage; `tunelab <stage>` runs one. Override any key on the
# command line, e.g. `tunelab run recipe.yaml train.epochs=2`.

run:
  name: my-run            # folder under output_dir that holds every artifact
  output_dir: runs
  seed: 42                # splits, initialisation and data order all derive from it

task: classification      # classification | regression | multilabel | sft | lm

data:
  sources:
    - bundled: rotten_tomatoes       # or: path: reviews.jsonl (jsonl, csv, tsv, parquet)
      # columns: {text: review, label: sentiment}   # our field -> your column
  labels: [fresh, rotten]            # keep these labels; other rows go to data/quarantine.jsonl
  split: {validation: 0.1, test: 0.1, stratify: true}

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
  metric_for_best: accuracy   # any validation metric, or your own: mypkg.metrics:cost
  # loss: {name: focal, gamma: 2.0}     # cross_entropy | class_weighted | label_smoothing | focal | mse
  # strategies:                          # each acts on the training loop
  #   - {name: curriculum, difficulty: length, pacing: competence}
  #   - {name: gradual_unfreezing, every: epoch}
  #   - {name: layerwise_lr, decay: 0.9}
  #   - {name: early_stopping, patience: 2, metric: accuracy}

evaluate:
  split: test
  bootstrap_samples: 1000
  confidence: 0.95
  compare_base: true      # also score the base model, side by side in metrics/comparison.json
  # metrics: [mypkg.metrics:cost]   # more headline figures, with intervals

# stages: [data, train, evaluate]   # what `tunelab run` runs, in order
# plugins: [mypkg.stages]           # modules that register more stages, losses or metrics
"""
