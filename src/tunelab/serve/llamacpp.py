"""The llama.cpp engine: a run's GGUF export decoded by llama-cpp-python on the CPU.

Prompts are rendered and tokenized by the model's own (transformers) tokenizer, exactly as for
the transformers engine, and llama.cpp is handed the token ids; new tokens are decoded by the
same tokenizer. So both engines see the same prompt and write text the same way, and the API
layer (keys, limits, errors, metrics, streaming) is the same whichever runs underneath.
llama.cpp decodes one request at a time here: the batcher gives it batches of one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tunelab.config.serve import ServeConfig
from tunelab.models.decoding import Sample, eos_ids
from tunelab.serve.engine import GenJob
from tunelab.serve.source import Served
from tunelab.serve.streaming import safe_prefix


def find_gguf(served: Served, cfg: ServeConfig) -> Path:
    """``serve.gguf``, else the run's q8_0 (then f16) export next to the served folder."""
    if cfg.gguf:
        path = Path(cfg.gguf).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"serve.gguf: {path} does not exist")
        return path
    source = Path(served.source)
    for folder in (source / "export" / "gguf", source.parent / "gguf"):
        for name in ("model-q8_0.gguf", "model-f16.gguf"):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(
        f"no GGUF export found for {source}: run `tunelab export RUN --format gguf` first, or set serve.gguf"
    )


class LlamaCppEngine:
    name = "llama.cpp"

    def __init__(self, served: Served, gguf: Path, threads: int | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ImportError(
                "serve.engine: llama.cpp needs llama-cpp-python: pip install 'tunelab[llamacpp]' "
                "(it compiles llama.cpp, about 7 minutes on 2 cores)"
            ) from exc
        if served.kind != "causal":
            raise ValueError(f"serve.engine: llama.cpp serves causal LMs; this model is a {served.kind}")
        self.served, self.gguf = served, gguf
        self.ends = set(eos_ids(served.tokenizer))
        self.llm = Llama(
            model_path=str(gguf),
            n_ctx=served.context,
            n_threads=threads or os.cpu_count() or 1,
            n_batch=512,
            verbose=False,
        )
        self._lock = threading.Lock()

    @classmethod
    def for_served(cls, served: Served, cfg: ServeConfig) -> LlamaCppEngine:
        return cls(served, find_gguf(served, cfg), cfg.threads)

    def generate(self, jobs: list[GenJob]) -> None:
        for job in jobs:
            job.samples = [self._one(job, k) for k in range(job.n if job.decoding.temperature > 0 else 1)]
            if len(job.samples) < job.n:  # greedy: every choice is the same; choice 0 was streamed,
                job.samples = job.samples * job.n  # the others get their text with their last chunk

    def _one(self, job: GenJob, choice: int) -> Sample:
        d = job.decoding
        tok = self.served.tokenizer
        greedy = d.temperature == 0
        with self._lock:
            self.llm.set_seed(job.seed + choice)
            new: list[int] = []
            sent, stopped = "", False
            for token in self.llm.generate(
                job.prompt,
                temp=d.temperature,
                top_k=1 if greedy else (d.top_k or 0),
                top_p=1.0 if greedy or d.top_p is None else d.top_p,
                min_p=0.0 if greedy else (d.min_p or 0.0),
                typical_p=1.0 if greedy or d.typical_p is None else d.typical_p,
                repeat_penalty=d.repetition_penalty or 1.0,
                reset=True,
            ):
                new.append(int(token))
                if token in self.ends or job.cancelled:
                    break
                text = tok.decode(new, skip_special_tokens=True)
                if any(s in text for s in d.stop):
                    stopped = True
                    break
                if job.emit is not None:
                    ready = safe_prefix(text, d.stop)
                    if len(ready) > len(sent) and ready.startswith(sent):
                        job.emit(choice, ready[len(sent) :])
                        sent = ready
                if len(new) >= d.max_new_tokens:
                    break
        text = tok.decode(new, skip_special_tokens=True)
        hits = [text.find(s) for s in d.stop if s in text]
        if hits:
            text = text[: min(hits)]
        ended = bool(new) and new[-1] in self.ends
        finish = "stop" if ended or stopped or len(new) < d.max_new_tokens else "length"
        return Sample(text=text, token_ids=new, n_tokens=len(new), finish_reason=finish)
