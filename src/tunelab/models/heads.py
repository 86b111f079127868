"""Tunelab classification heads: a pooling over the backbone's token states, then a linear or MLP layer.

``model.head.type: auto`` (the default) does not come here: it keeps the model's own transformers head,
loadable by plain ``transformers``. A tunelab head makes a :class:`HeadedModel`, the pretrained backbone
(``AutoModel``) plus a module named ``classifier``. That name is the one peft's sequence-classification
wrapper trains fully and saves with the adapter (``modules_to_save``), so an adapter reload is complete.

A full fine-tune is saved as the backbone's ``save_pretrained`` folder plus ``tunelab_head.json`` and
``tunelab_head.safetensors``. Plain transformers would load only the backbone (with a new, untrained
head): reload such a folder with tunelab (``Task.load_tuned`` / :func:`load_headed`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from tunelab.config.model import HeadConfig

HEAD_SPEC = "tunelab_head.json"
HEAD_WEIGHTS = "tunelab_head.safetensors"


def _cls(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return states[:, 0]


def _mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(states.dtype)
    return (states * m).sum(1) / m.sum(1).clamp(min=1.0)


def _last(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # the last real token of each row, wherever the padding is
    idx = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(-1)
    return states[torch.arange(states.shape[0], device=states.device), idx]


POOLINGS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cls": _cls,
    "mean": _mean,
    "last": _last,
}


class ClassifierHead(nn.Module):
    """Pool the token states, then dropout and a linear layer (``mlp``: one hidden GELU layer first)."""

    def __init__(self, hidden: int, num_labels: int, pooling: str, dropout: float, mlp_hidden: int | None):
        super().__init__()
        self.pool = POOLINGS[pooling]
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if mlp_hidden:
            layers += [nn.Linear(hidden, mlp_hidden), nn.GELU(), nn.Dropout(dropout)]
            hidden = mlp_hidden
        layers.append(nn.Linear(hidden, num_labels))
        self.net = nn.Sequential(*layers)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(self.pool(states, mask))


class HeadedModel(nn.Module):
    """A backbone with a tunelab head; called like a transformers sequence classifier."""

    def __init__(self, backbone: nn.Module, spec: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = backbone.config
        self.name_or_path = getattr(backbone, "name_or_path", "")
        self.head_spec = spec
        hidden = backbone.config.hidden_size
        self.classifier = ClassifierHead(
            hidden, spec["num_labels"], spec["pooling"], spec["dropout"], spec["mlp_hidden"]
        )

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,  # peft passes it; we always return an output object
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, **extra, **kwargs,
        )
        states = out.last_hidden_state
        mask = attention_mask if attention_mask is not None else states.new_ones(states.shape[:2])
        logits = self.classifier(states, mask)
        loss = None
        if labels is not None:  # tunelab computes its own loss; this serves callers that pass labels
            loss = (nn.functional.cross_entropy(logits.float(), labels) if not labels.is_floating_point()
                    else nn.functional.mse_loss(logits.float().reshape(-1), labels.reshape(-1)))
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                        attentions=out.attentions)

    def save_pretrained(self, folder: str | Path, **kwargs: Any) -> None:
        folder = Path(folder)
        self.backbone.save_pretrained(folder, **kwargs)
        weights = {k: v.contiguous() for k, v in self.classifier.state_dict().items()}
        save_file(weights, str(folder / HEAD_WEIGHTS))
        (folder / HEAD_SPEC).write_text(json.dumps(self.head_spec, indent=2) + "\n", encoding="utf-8")


def head_spec(cfg: HeadConfig, config, num_labels: int) -> dict[str, Any]:
    """The head's shape as saved in ``tunelab_head.json``; unset values come from the model config."""
    dropout = cfg.dropout
    if dropout is None:  # the model's own classifier dropout, as its transformers head would use
        dropout = getattr(config, "classifier_dropout", None)
    if dropout is None:
        dropout = getattr(config, "hidden_dropout_prob", 0.1)
    mlp = (cfg.hidden_size or config.hidden_size) if cfg.type == "mlp" else None
    return {"type": cfg.type, "pooling": cfg.pooling or "cls", "dropout": float(dropout), "mlp_hidden": mlp,
            "num_labels": num_labels}


def build_headed(path: str, config, cfg: HeadConfig, num_labels: int, **load_kwargs: Any) -> HeadedModel:
    """The pretrained backbone at ``path`` with a new tunelab head."""
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(path, config=config, **load_kwargs)
    return HeadedModel(backbone, head_spec(cfg, config, num_labels))


def is_headed(folder: Path) -> bool:
    return (folder / HEAD_SPEC).is_file()


def load_headed(folder: Path) -> HeadedModel:
    """A full model saved by :meth:`HeadedModel.save_pretrained`."""
    from transformers import AutoModel

    spec = json.loads((folder / HEAD_SPEC).read_text(encoding="utf-8"))
    model = HeadedModel(AutoModel.from_pretrained(str(folder), use_safetensors=True), spec)
    model.classifier.load_state_dict(load_file(str(folder / HEAD_WEIGHTS)))
    return model
