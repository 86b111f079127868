"""Attach PEFT adapters (LoRA, DoRA) to a model, as the recipe's ``model.adapter`` says."""

from __future__ import annotations

from tunelab.config.model import AdapterConfig


def apply_adapter(model, cfg: AdapterConfig, task_type: str):
    """Return ``model`` wrapped with the adapter, or unchanged for full fine-tuning.

    ``task_type`` is a peft TaskType name (``SEQ_CLS`` keeps the new classification head
    trainable and saves it with the adapter, so a reload is complete).
    """
    if cfg.method == "none":
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(
        task_type=TaskType[task_type],
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules,
        use_dora=cfg.method == "dora",
    )
    return get_peft_model(model, lora)


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
