"""tunelab: from a raw text dataset to a fine-tuned, evaluated language model, driven by one recipe."""

import os as _os
import sys as _sys

# 2 MB transparent huge pages for torch's large CPU tensors. Activations and the dense embedding
# gradient are allocated afresh every training step, and on 4 KB pages each allocation faults in page
# by page (measured: 6-15% of a MiniLM and of a SmolLM2 + LoRA training step, 2-core EPYC). torch reads
# the switch once, at its first CPU allocation, so it is set here, before torch loads; a user's own
# THP_MEM_ALLOC_ENABLE (0 to opt out) wins. tunelab.train.threads.huge_pages reports what holds.
HUGE_PAGES_BEFORE_TORCH = "torch" not in _sys.modules or "THP_MEM_ALLOC_ENABLE" in _os.environ
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
