"""Convert a GGUF checkpoint once into a plain ``save_pretrained`` folder.

transformers dequantises GGUF on every load (slow) and Trainer/``save_pretrained`` refuse a model
marked as GGUF-quantised, so we convert once and cache. The folder appears in one rename, so a
conversion killed half way is redone, never trusted.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tunelab.runs import atomic_dir

log = logging.getLogger(__name__)


def converted_gguf_folder(gguf_file: Path, target: Path) -> Path:
    """Return ``target``, converting ``gguf_file`` into it first if it is not there yet."""
    if (target / "config.json").is_file():
        return target
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF)
    except ImportError as exc:
        raise ImportError(
            "reading the bundled GGUF model needs the 'gguf' package: pip install gguf"
        ) from exc
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to %s (once)", gguf_file.name, target)
    folder, name = str(gguf_file.parent), gguf_file.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return target
