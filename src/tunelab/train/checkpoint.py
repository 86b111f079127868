"""Resumable training state: trained weights, optimiser, schedule, RNG streams (python, numpy, torch
CPU and CUDA) and position.

Each checkpoint folder appears in one rename (``atomic_dir``), so the newest folder present is
always complete, even after a SIGKILL. The weights are those of the parameters the optimiser
holds (``trained_names``), whatever their ``requires_grad`` is at save time.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tunelab.runs import atomic_dir, atomic_write_json
from tunelab.train.embedding_rows import used_row_tables

WEIGHTS = "trainable.safetensors"
OPTIM = "optimizer.pt"
STATE = "trainer_state.json"


@dataclass
class TrainerState:
    """Where training is, so that a resumed run continues bit for bit."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    stopped: str = ""  # why a strategy ended training early (a resumed run stays stopped)
    window_loss: float = 0.0  # training losses since the last log line (a resumed line averages them too)
    window_steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def trained_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """Names (in model order) of the parameters ``optimizer`` holds: what a checkpoint stores.

    Not "what requires grad now": a strategy such as gradual unfreezing flips ``requires_grad``
    during training, so a group frozen at save time may have trained earlier or train later.
    """
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    names = [n for n, p in model.named_parameters() if id(p) in held]
    if len(names) != len(held):  # a wrapper copied the parameters: saving would silently drop some
        raise RuntimeError(
            f"{len(held) - len(names)} of the optimiser's {len(held)} parameters are not parameters "
            "of the model (a wrapper replaced them?)"
        )
    return names


def trainable_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, torch.Tensor]:
    """The optimiser's parameters by name; without ``optimizer``, those requiring grad. Views, not
    copies (a parameter is contiguous already): a copy of every weight would add its size to the
    run's peak memory at each checkpoint, for a file write that does not need one. The exception: an
    embedding under ``train.used_embedding_rows`` is written as its full table."""
    keep = set(trained_names(model, optimizer)) if optimizer is not None else None
    state = {
        n: p.detach().contiguous()
        for n, p in model.named_parameters()
        if (p.requires_grad if keep is None else n in keep)
    }
    # an embedding training its used rows alone is saved whole, as it is with the switch off
    state.update({n: m.merged() for n, m in used_row_tables(model).items() if n in state})
    return state


def load_trainable(model: torch.nn.Module, path: Path, expected: list[str] | None = None) -> None:
    """Copy the tensors of ``path`` into ``model``; with ``expected``, the file must hold exactly
    those names (a checkpoint restores every trained parameter, and nothing else)."""
    weights = load_file(str(path))
    params = dict(model.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise RuntimeError(f"{path}: {len(missing)} tensors do not match the model (e.g. {missing[0]})")
    if expected is not None and set(expected) != set(weights):
        absent = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        raise RuntimeError(
            f"{path} does not hold exactly the optimiser's parameters: {len(absent)} missing"
            f"{f' (e.g. {absent[0]})' if absent else ''}, {len(extra)} not trained"
            f"{f' (e.g. {extra[0]})' if extra else ''}; it was written by another run or version"
        )
    tables = used_row_tables(model)
    with torch.no_grad():
        for n, t in weights.items():
            if n in tables:
                tables[n].load_full(t)
            else:
                params[n].copy_(t)


def save_checkpoint(folder: Path, model, optimizer, scheduler, state: TrainerState, keep: int) -> Path:
    """Write ``folder/step-N`` atomically and prune older ones, keeping ``keep`` and ``best``."""
    target = folder / f"step-{state.global_step:08d}"
    with atomic_dir(target) as tmp:
        save_file(trainable_state(model, optimizer), str(tmp / WEIGHTS))
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                **torch_rng_states(),
            },
            tmp / OPTIM,
        )
        rng = {"python": _py_state(random.getstate()), "numpy": _np_state(np.random.get_state())}
        atomic_write_json(tmp / STATE, {"trainer": asdict(state), "rng": rng})
    for old in sorted(folder.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(p for p in folder.glob("step-*") if (p / STATE).is_file())
    return found[-1] if found else None


def load_checkpoint(path: Path, model, optimizer, scheduler) -> TrainerState:
    load_trainable(model, path / WEIGHTS, trained_names(model, optimizer))
    blob = torch.load(path / OPTIM, weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    restore_torch_rng(blob)
    meta = json.loads((path / STATE).read_text(encoding="utf-8"))
    random.setstate(_py_restore(meta["rng"]["python"]))
    np.random.set_state(_np_restore(meta["rng"]["numpy"]))
    return TrainerState(**meta["trainer"])


def torch_rng_states() -> dict[str, Any]:
    """The torch generators a run draws from (dropout...): the CPU one and, with CUDA, this device's."""
    states: dict[str, Any] = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda_rng"] = torch.cuda.get_rng_state()
    return states


def restore_torch_rng(blob: dict[str, Any]) -> None:
    """Undo :func:`torch_rng_states` (a CUDA state saved where there is no CUDA has nothing to restore)."""
    torch.set_rng_state(blob["torch_rng"])
    if blob.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(blob["cuda_rng"])


def save_best(folder: Path, model, optimizer) -> None:
    """Write ``folder/best``: the optimiser's parameters, as a checkpoint stores them."""
    with atomic_dir(folder / "best") as tmp:
        save_file(trainable_state(model, optimizer), str(tmp / WEIGHTS))


def load_best(folder: Path, model, optimizer) -> bool:
    """Restore ``folder/best`` if there is one; return whether there was."""
    path = folder / "best" / WEIGHTS
    if not path.is_file():
        return False
    load_trainable(model, path, trained_names(model, optimizer))
    return True


def _py_state(s):
    return [s[0], list(s[1]), s[2]]


def _py_restore(s):
    return (s[0], tuple(s[1]), s[2])


def _np_state(s):
    return [s[0], s[1].tolist(), int(s[2]), int(s[3]), float(s[4])]


def _np_restore(s):
    return (s[0], np.array(s[1], dtype=np.uint32), s[2], s[3], s[4])
