"""The ``model`` section: which pretrained model, and how it is adapted."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tunelab.config.base import Section


class AdapterConfig(Section):
    """PEFT adapter. ``method: none`` means full fine-tuning."""

    method: Literal["none", "lora", "dora"] = "none"
    r: int = Field(8, ge=1, le=1024)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class HeadConfig(Section):
    """Classification head.

    ``type: auto`` keeps the model's own transformers head and pooling (CLS for BERT-style encoders),
    so plain ``transformers`` loads the result. ``linear`` / ``mlp`` are tunelab heads over a chosen
    pooling; a full model saved with one of them needs tunelab to reload.
    """

    type: Literal["auto", "linear", "mlp"] = "auto"
    pooling: Literal["cls", "mean", "last"] | None = Field(
        None, description="tunelab heads: cls (first token), mean (over real tokens) or last; default cls"
    )
    dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="dropout before the head; default the model's classifier dropout"
    )
    hidden_size: int | None = Field(None, ge=1, description="mlp: hidden width; default the model's")

    @model_validator(mode="after")
    def _consistent(self) -> HeadConfig:
        if self.type == "auto" and self.pooling is not None:
            raise ValueError(
                "pooling needs a tunelab head (type: linear or mlp); type auto pools as the model does"
            )
        if self.type != "mlp" and self.hidden_size is not None:
            raise ValueError("hidden_size applies to type: mlp only")
        return self


class FreezeConfig(Section):
    """Parameters kept at their pretrained values for the whole run."""

    embeddings: bool = False
    layers: int = Field(0, ge=0, description="freeze the first (bottom) N transformer layers")


class DropoutConfig(Section):
    """Dropout overrides, written onto the model config's own fields (hidden_dropout_prob, ...)."""

    hidden: float | None = Field(None, ge=0.0, lt=1.0)
    attention: float | None = Field(None, ge=0.0, lt=1.0)


class ChunkConfig(Section):
    """How ``long_text: chunk`` reads a long text: overlapping windows, pooled back to one output."""

    stride: int = Field(
        64,
        ge=0,
        description="tokens each window shares with the one before it; below max_length minus the "
        "tokenizer's special tokens",
    )
    pooling: Literal["mean", "max"] = Field(
        "mean", description="how a text's window logits become its own, before softmax and loss"
    )
    max_chunks: int = Field(
        8, ge=1, le=1024, description="windows per text at most; windows past it are dropped and counted"
    )


# Room for the special tokens a BERT-style encoder adds around a window ([CLS] ... [SEP]); the exact
# count comes from the tokenizer when the windows are made (tunelab.tasks.windows).
SPECIAL_TOKENS_ROOM = 2


class ModelConfig(Section):
    name: str = Field(
        "minilm",
        description="bundled alias (see `tunelab models`), a Hugging Face hub id, or a local folder",
    )
    revision: str | None = None
    max_length: int = Field(128, ge=8, le=32768)
    long_text: Literal["truncate", "head_tail", "chunk"] = Field(
        "truncate",
        description="texts longer than max_length: truncate (keep the first tokens), head_tail (the "
        "first quarter and last three quarters of the budget) or chunk (overlapping windows, pooled)",
    )
    chunk: ChunkConfig = ChunkConfig()
    adapter: AdapterConfig = AdapterConfig()
    trust_remote_code: bool = False
    allow_pickle: bool = Field(
        False, description="also load .bin (pickle) weights; safetensors only if false"
    )
    attn_implementation: Literal["sdpa", "eager"] | None = None
    head: HeadConfig = HeadConfig()
    freeze: FreezeConfig = FreezeConfig()
    dropout: DropoutConfig = DropoutConfig()

    @model_validator(mode="after")
    def _name_not_blank(self) -> ModelConfig:
        if not self.name.strip():
            raise ValueError("model.name is empty: give an alias, a hub id or a folder")
        return self

    @model_validator(mode="after")
    def _stride_fits(self) -> ModelConfig:
        room = self.max_length - SPECIAL_TOKENS_ROOM
        if self.long_text == "chunk" and self.chunk.stride >= room:
            raise ValueError(
                f"model.chunk.stride ({self.chunk.stride}) must be below model.max_length "
                f"({self.max_length}) minus the special tokens ({SPECIAL_TOKENS_ROOM}), i.e. at most "
                f"{room - 1}: a window must move on by at least one token"
            )
        return self
