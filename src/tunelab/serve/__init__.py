"""Deployment: the export stage (merged safetensors, int8, GGUF) and ``tunelab serve``, an
OpenAI-compatible HTTP server with batching, API keys and limits.

Export is a stage that needs a trained model and writes only under ``export/``; serving is a
long-running verb (see ``tunelab.serve.app``), not a stage.
"""

from __future__ import annotations

from tunelab.serve.config import ExportConfig
from tunelab.stages import Option, Stage, register

STAGE = register(
    Stage(
        name="export",
        run="tunelab.serve.export:run",
        help="Export the fine-tuned model: merged safetensors folder, optionally int8 and GGUF.",
        reads=("task", "model", "export", "run.seed"),
        needs=("data", "train"),
        outputs=("export/model", "export/manifest.json"),
        section=ExportConfig,
        options=(
            Option("quantize", None, "int8: also write a dynamically quantized int8 model", str, reruns=True),
            Option(
                "format", None, "gguf: also GGUF files (f16, q8_0) for llama.cpp and Ollama", str, reruns=True
            ),
            Option("dtype", None, "weights of the merged folder: auto, fp32, bf16 or fp16", str, reruns=True),
        ),
    )
)

__all__ = ["STAGE", "ExportConfig"]
