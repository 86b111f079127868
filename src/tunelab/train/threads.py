"""CPU thread settings of a training run (``train.num_threads``, ``train.num_interop_threads``).

Intra-op threads split one operator (a matmul) across cores; inter-op threads run independent
operators at once (the autograd engine and TorchScript/fork work on CPU). torch lets the inter-op
count be set once, before any inter-op work has started in the process: a later request that
differs is not possible, and the run keeps (and reports) the count it has.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("tunelab")


def apply_threads(intra: int | None, inter: int | None) -> dict[str, int]:
    """Set the requested thread counts (None: keep torch's) and return those in force."""
    if intra is not None and torch.get_num_threads() != intra:
        torch.set_num_threads(intra)
    if inter is not None and torch.get_num_interop_threads() != inter:
        try:
            torch.set_num_interop_threads(inter)
        except RuntimeError:  # inter-op work already ran in this process
            log.warning(
                "train.num_interop_threads: %d cannot be set after torch's inter-op pool started; "
                "keeping %d (set it in a fresh process)", inter, torch.get_num_interop_threads()
            )
    return {"intra_op_threads": torch.get_num_threads(), "inter_op_threads": torch.get_num_interop_threads()}
