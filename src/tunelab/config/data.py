"""The ``data`` section: where rows come from, how they are cleaned, deduplicated and split."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tunelab.config.base import Section

BUNDLED_DATASETS = ("rotten_tomatoes", "chatterbot")
# Our field names that a source's ``columns`` may map onto the file's own column names.
FIELDS = (
    "text",
    "label",
    "group",
    "messages",
    "instruction",
    "input",
    "output",
    "prompt",
    "response",
    "system",
)
SPLITS = ("train", "validation", "test")


class SourceConfig(Section):
    """One input: a bundled dataset, a file or folder, or a hub dataset.

    ``columns`` maps our field names to the file's columns (``text: review``).
    """

    bundled: Literal["rotten_tomatoes", "chatterbot"] | None = None
    path: str | None = Field(
        None,
        description="a jsonl/csv/tsv/parquet file, a <root>/<label>/*.txt folder "
        "or a folder written by datasets' save_to_disk",
    )
    hub: str | None = Field(None, description="a Hugging Face hub dataset name (needs network)")
    subset: str | None = Field(None, description="hub: the dataset configuration name")
    hub_split: str = Field("train", description="hub / saved dataset: which split to read")
    format: Literal["jsonl", "csv", "tsv", "parquet", "text_folder", "hf_disk"] | None = Field(
        None, description="file format; inferred from the extension (or folder layout) when omitted"
    )
    columns: dict[str, str] = Field(default_factory=dict, description="field -> column, e.g. text: review")
    split: Literal["train", "validation", "test"] | None = Field(
        None, description="put every row of this source in this split (explicit split files)"
    )
    max_rows: int | None = Field(
        None, ge=1, description="cap: a seeded random sample of at most this many rows"
    )
    weight: float = Field(
        1.0,
        gt=0,
        le=100,
        description="train mix: 0.5 keeps half this source's train rows, 2 repeats them twice",
    )
    keep: list[str] | None = Field(None, description="extra columns copied into the output rows")
    name: str | None = Field(None, description="name shown in the report; default the file or bundled name")

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(FIELDS))
        if unknown:
            raise ValueError(
                f"unknown field(s) {unknown}; columns maps one of {list(FIELDS)} to a file column"
            )
        return v

    @model_validator(mode="after")
    def _one_origin(self) -> SourceConfig:
        given = [k for k in ("bundled", "path", "hub") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'bundled', 'path' or 'hub'")
        return self

    def display_name(self) -> str:
        return self.name or self.bundled or self.path or self.hub or "source"


class UnicodeStep(Section):
    enabled: bool = True
    form: Literal["NFC", "NFKC", "NFD", "NFKD"] = Field(
        "NFKC", description="NFKC also folds width and ligatures"
    )


class HtmlStep(Section):
    enabled: bool = True


class WhitespaceStep(Section):
    enabled: bool = True
    keep_newlines: bool = Field(True, description="keep line breaks (collapsed to at most one blank line)")


class PiiStep(Section):
    enabled: bool = True
    types: list[Literal["email", "phone", "card", "ip", "url"]] = Field(
        default_factory=lambda: ["email", "phone", "card", "ip", "url"]
    )


class LabelStep(Section):
    enabled: bool = True
    lowercase: bool = True
    map: dict[str, str] = Field(
        default_factory=dict, description="rename labels after lower-casing: pos: positive"
    )


class LengthStep(Section):
    enabled: bool = True
    min_chars: int = Field(1, ge=0)
    max_chars: int = Field(100_000, ge=1, description="guards against runaway rows such as a 10 MB line")
    min_tokens: int | None = Field(None, ge=0, description="uses the model's tokenizer (loaded only if set)")
    max_tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> LengthStep:
        if self.min_chars > self.max_chars:
            raise ValueError("min_chars must not exceed max_chars")
        if self.min_tokens is not None and self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError("min_tokens must not exceed max_tokens")
        return self


DEFAULT_STEPS = ["unicode", "html", "whitespace", "pii", "labels", "length"]


class CleanConfig(Section):
    steps: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STEPS),
        description="order of the row cleaning steps; a dotted path ('pkg.mod:fn') adds a custom step",
    )
    unicode: UnicodeStep = UnicodeStep()
    html: HtmlStep = HtmlStep()
    whitespace: WhitespaceStep = WhitespaceStep()
    pii: PiiStep = PiiStep()
    labels: LabelStep = LabelStep()
    length: LengthStep = LengthStep()
    conflicts: Literal["drop", "majority", "keep"] = Field(
        "drop", description="same text with different labels: drop all, keep the majority label, or keep all"
    )


class NearDupConfig(Section):
    enabled: bool = True
    threshold: float = Field(0.8, ge=0.3, le=0.99, description="estimated Jaccard of shingle sets")
    num_perm: int = Field(128, ge=16, le=1024)
    ngram: int = Field(5, ge=1, le=20)
    unit: Literal["char", "word"] = Field("char", description="char n-grams suit short texts")
    action: Literal["drop", "keep_together"] = Field(
        "drop", description="drop: keep one row per cluster; keep_together: keep all, in one split"
    )


class DedupConfig(Section):
    exact: bool = Field(
        True, description="drop exact duplicates after Unicode, case and whitespace normalisation"
    )
    near: NearDupConfig = NearDupConfig()
    leakage: Literal["error", "warn", "off"] = Field(
        "error", description="what to do if a near-duplicate pair straddles train and validation/test"
    )

    @model_validator(mode="before")
    @classmethod
    def _bool_shorthand(cls, v: Any) -> Any:
        # `dedup: false` switches both kinds off (the leakage check still runs).
        if isinstance(v, bool):
            return {"exact": v, "near": {"enabled": v}}
        return v


class SplitConfig(Section):
    validation: float = Field(0.1, ge=0.0, lt=1.0)
    test: float = Field(0.1, ge=0.0, lt=1.0)
    stratify: bool = True
    group_by: str | None = Field(
        None, description="a column (or 'group') whose value never straddles two splits, e.g. movie_name"
    )

    @model_validator(mode="after")
    def _leaves_train(self) -> SplitConfig:
        if self.validation + self.test >= 1.0:
            raise ValueError("validation + test must leave rows for train (sum < 1)")
        return self


class ReportConfig(Section):
    examples: int = Field(5, ge=0, le=100, description="examples of kept and removed rows per step")
    length_unit: Literal["auto", "tokens", "words"] = Field(
        "auto", description="auto: tokens when a token filter loaded the tokenizer, else words"
    )
    imbalance_ratio: float = Field(
        3.0, gt=1.0, description="warn when the largest label exceeds the smallest by this"
    )


class DataConfig(Section):
    sources: list[SourceConfig] = Field(min_length=1)
    labels: list[str] | None = Field(
        None,
        description="classification, multilabel: keep only these labels (every member of a label set); "
        "other rows go to quarantine",
    )
    label_delimiter: str | None = Field(
        None,
        min_length=1,
        description="multilabel: split a string label on this, e.g. '|' for 'sports|politics'; "
        "default none: label sets come as lists and a plain string is one label",
    )
    system_prompt: str | None = Field(
        None, description="sft: a system message put first in every conversation"
    )
    on_malformed: Literal["error", "quarantine"] = Field(
        "error", description="a line that does not parse (bad JSON): stop with its location, or quarantine it"
    )
    clean: CleanConfig = CleanConfig()
    dedup: DedupConfig = DedupConfig()
    split: SplitConfig = SplitConfig()
    report: ReportConfig = ReportConfig()
    long_text_warning: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="warn when more than this share of train texts is longer than model.max_length "
        "tokens (counted with the model's tokenizer); 1 turns the warning off",
    )

    @field_validator("labels")
    @classmethod
    def _labels_distinct(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or len(set(v)) != len(v)):
            raise ValueError("labels must be a non-empty list without repeats")
        return v
