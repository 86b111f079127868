"""Load a pretrained model's config with the recipe's architecture settings written onto it.

``model.dropout`` maps onto whichever dropout fields the model family's config has (BERT:
``hidden_dropout_prob``; Llama: ``attention_dropout``; GPT-2: ``resid_pdrop``, ...). A family without a
matching field is an error that names the key, not a silent no-op.
"""

from __future__ import annotations

from typing import Any

from tunelab.config.model import DropoutConfig, ModelConfig

DROPOUT_FIELDS: dict[str, tuple[str, ...]] = {
    "hidden": ("hidden_dropout_prob", "hidden_dropout", "resid_pdrop", "embd_pdrop", "dropout"),
    "attention": ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop"),
}


def apply_dropout(config, cfg: DropoutConfig) -> list[str]:
    """Set the dropout fields ``cfg`` asks for on ``config``; return the fields set."""
    changed = []
    for key, fields in DROPOUT_FIELDS.items():
        value = getattr(cfg, key)
        if value is None:
            continue
        present = [f for f in fields if hasattr(config, f)]
        if not present:
            raise ValueError(
                f"model.dropout.{key}: a {config.model_type} config has none of the fields {list(fields)}; "
                "remove the override"
            )
        for f in present:
            setattr(config, f, value)
        changed += present
    return changed


def pretrained_config(cfg: ModelConfig, path: str, **overrides: Any):
    """``AutoConfig`` for ``path`` with ``overrides`` (num_labels, ...) and the dropout overrides."""
    from transformers import AutoConfig

    kw: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code}
    if cfg.revision:
        kw["revision"] = cfg.revision
    config = AutoConfig.from_pretrained(path, **kw, **overrides)
    apply_dropout(config, cfg.dropout)
    return config


def on_device(model, batch: dict[str, Any]) -> dict[str, Any]:
    """``batch`` on the model's device: validation and evaluation batches are built on the CPU."""
    device = next(model.parameters()).device
    return {k: v.to(device) for k, v in batch.items()}
