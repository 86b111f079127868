"""Which parameters sit in the embeddings, in transformer layer i, or above the layers; and freezing them.

The layer stack is found by shape, not by name: the ``nn.ModuleList`` holding the most parameters
(``bert.encoder.layer``, ``model.layers``, ...). Parameters registered before it are the embeddings,
those after it (final norm, pooler, classification head) the top. This holds for plain transformers
models, tunelab heads and peft-wrapped models alike (LoRA weights live inside their layer).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from tunelab.config.model import FreezeConfig

Named = list[tuple[str, nn.Parameter]]


@dataclass
class LayerGroups:
    embeddings: Named
    layers: list[Named]  # bottom (0) to top
    top: Named  # everything above the layer stack: final norm, pooler, head

    def top_down(self) -> list[Named]:
        """Groups from the head down to the embeddings (the order of gradual unfreezing)."""
        return [self.top, *reversed(self.layers), self.embeddings]


def layer_stack(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The (name, module) of the model's transformer layer list."""
    best: tuple[int, str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(m) for m in module}) != 1:  # layers of one kind, not a list of mixed parts
            continue
        size = sum(p.numel() for p in module.parameters())
        if best is None or size > best[0]:
            best = (size, name, module)
    if best is None:
        raise ValueError(
            f"cannot find the transformer layers of {type(model).__name__} (no nn.ModuleList of layers); "
            "freezing by layer and layer-wise strategies need one"
        )
    return best[1], best[2]


def layer_groups(model: nn.Module) -> LayerGroups:
    """Split ``model.named_parameters()`` into embeddings, layers and top."""
    stack_name, stack = layer_stack(model)
    prefix = f"{stack_name}." if stack_name else ""
    groups = LayerGroups(embeddings=[], layers=[[] for _ in stack], top=[])
    past_stack = False
    for name, p in model.named_parameters():
        if name.startswith(prefix):
            groups.layers[int(name[len(prefix):].split(".", 1)[0])].append((name, p))
            past_stack = True
        else:
            (groups.top if past_stack else groups.embeddings).append((name, p))
    return groups


def freeze(model: nn.Module, cfg: FreezeConfig) -> int:
    """Apply ``model.freeze``; return how many parameter tensors were frozen.

    With a tied LM head (``tie_word_embeddings``) freezing the embeddings also freezes the output layer:
    they are one tensor.
    """
    if not cfg.embeddings and not cfg.layers:
        return 0
    groups = layer_groups(model)
    if cfg.layers > len(groups.layers):
        raise ValueError(f"model.freeze.layers is {cfg.layers} but the model has {len(groups.layers)} layers")
    chosen = [x for g in groups.layers[: cfg.layers] for x in g]
    if cfg.embeddings:
        chosen += groups.embeddings
    for _, p in chosen:
        p.requires_grad_(False)
    return len(chosen)
