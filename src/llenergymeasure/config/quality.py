"""The ``quality:`` section of an experiment: perplexity, KL and top-1 agreement beside energy."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Reference texts shipped in the package (``llenergymeasure/data/quality/<name>.txt``).
BUILTIN_TEXTS = ("shakespeare-heldout",)


class LmEvalConfig(BaseModel):
    """Task accuracy through lm-eval (the ``lmeval`` extra) on the model llem already loaded."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    tasks: list[str] = Field(
        default_factory=list,
        description="lm-eval task names; empty: no task accuracy. "
        "'llem_macbeth_next_line' ships with llem and runs offline.",
    )
    include_path: Path | None = Field(
        default=None,
        description="A directory of task YAMLs (relative data_files resolve against it).",
    )
    limit: int | None = Field(
        default=None, ge=1, description="Most documents scored per task; default: all."
    )
    num_fewshot: int | None = Field(
        default=None, ge=0, description="Few-shot examples; default: each task's own."
    )
    batch_size: int = Field(default=8, ge=1, description="Requests per forward pass.")
    bootstrap_iters: int = Field(
        default=1000, ge=0, description="Bootstrap draws for non-mean metrics' stderr."
    )
    seed: int = 0

    @model_validator(mode="after")
    def _names(self) -> LmEvalConfig:
        for name in self.tasks:
            if not name.strip():
                raise ValueError("quality.lm_eval.tasks has an empty task name")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"quality.lm_eval.tasks lists a task twice: {self.tasks}")
        return self


class QualityConfig(BaseModel):
    """Quality evaluation, run after the energy window (off by default: it costs time)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(default=False, description="Score the model on a reference text.")
    source: Literal["builtin", "file", "hf"] = Field(
        default="builtin",
        description="builtin: a text shipped with llem; file: a .txt/.jsonl; hf: a dataset.",
    )
    text: str = Field(default="shakespeare-heldout", description="Builtin text name.")
    path: Path | None = Field(default=None, description="A .txt or .jsonl ('text') file.")
    dataset: str | None = Field(default=None, description="HF dataset id, e.g. 'wikitext'.")
    dataset_config: str | None = Field(default=None, description="e.g. 'wikitext-2-raw-v1'.")
    split: str = "test"
    revision: str | None = Field(default=None, description="Dataset revision (commit or tag).")
    field: str = Field(default="text", description="Column / JSON key holding the text.")
    window: int | None = Field(
        default=None, ge=2, description="Tokens per forward pass; default: the model's context."
    )
    stride: int | None = Field(
        default=None,
        ge=1,
        description="Tokens between window starts (< window); default: window / 2.",
    )
    max_tokens: int = Field(default=8192, ge=2, description="Most tokens of the text scored.")
    reference_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto", description="Reference precision; auto: float32 on CPU, bfloat16 on GPU."
    )
    kl_top_k: int = Field(
        default=256,
        ge=1,
        description="Reference probabilities kept per token for KL; >= vocab size is exact.",
    )
    block_tokens: int = Field(default=256, ge=1, description="Bootstrap block size in tokens.")
    bootstrap_samples: int = Field(default=1000, ge=10)
    seed: int = 0
    lm_eval: LmEvalConfig = Field(
        default_factory=LmEvalConfig,
        description="Task accuracy through lm-eval; runs when tasks are listed, even if "
        "'enabled' (perplexity) is off.",
    )

    @model_validator(mode="after")
    def _source_fields(self) -> QualityConfig:
        if self.source == "builtin" and self.text not in BUILTIN_TEXTS:
            raise ValueError(
                f"quality.text {self.text!r} is not a builtin text; allowed: {list(BUILTIN_TEXTS)}"
            )
        if self.source == "file":
            if self.path is None:
                raise ValueError("quality.source is 'file' but quality.path is not set")
            if self.path.suffix not in (".txt", ".jsonl"):
                raise ValueError(f"quality.path must be a .txt or .jsonl file, got {self.path}")
        if self.source == "hf" and not self.dataset:
            raise ValueError("quality.source is 'hf' but quality.dataset is not set")
        if self.window is not None and self.stride is not None and self.stride >= self.window:
            raise ValueError(
                f"quality.stride ({self.stride}) must be less than quality.window ({self.window})"
            )
        return self
