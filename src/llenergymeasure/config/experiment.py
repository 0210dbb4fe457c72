"""ExperimentConfig: everything that defines one measurement, validated and hashed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llenergymeasure.config.engines import (
    ENGINE_SECTIONS,
    EngineName,
    TransformersSection,
    VLLMSection,
)
from llenergymeasure.config.hashing import stable_hash
from llenergymeasure.config.quality import QualityConfig
from llenergymeasure.domain.footprint import CarbonSettings, CostSettings
from llenergymeasure.domain.requests import OfflineArrivalModel

#: The arrival model each engine uses when the config does not name one.
DEFAULT_ARRIVAL: dict[str, str] = {"transformers": "closed", "vllm": "all_at_once"}

EnergyInstrument = Literal["auto", "nvml", "rapl", "zeus", "codecarbon", "estimate"]
FlopsMethodChoice = Literal["auto", "calflops", "architecture", "parameter_estimate"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PromptsConfig(_Strict):
    """Where prompts come from: the built-in set, a .jsonl/.txt file, or synthetic token ids."""

    source: Literal["builtin", "file", "synthetic"] = "builtin"
    path: Path | None = Field(
        default=None,
        description="A .txt (one prompt per line) or .jsonl file ('prompt' or 'text').",
    )
    synthetic_input_tokens: int = Field(
        default=128, ge=1, description="Prompt length in tokens for synthetic prompts."
    )
    seed: int = Field(default=0, description="Seed for synthetic prompts.")

    @model_validator(mode="after")
    def _path_matches_source(self) -> PromptsConfig:
        if self.source == "file":
            if self.path is None:
                raise ValueError("prompts.source is 'file' but prompts.path is not set")
            if self.path.suffix not in (".txt", ".jsonl"):
                raise ValueError(f"prompts.path must be a .txt or .jsonl file, got {self.path}")
        elif self.path is not None:
            raise ValueError(f"prompts.path is set but prompts.source is {self.source!r}")
        return self


class DecodingConfig(_Strict):
    """Greedy decoding, or sampling with temperature / top_p / top_k and a seed."""

    mode: Literal["greedy", "sample"] = "greedy"
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int = Field(default=0, ge=0, description="0 disables top-k filtering.")
    seed: int = 0


class WarmupConfig(_Strict):
    """Warm up until request latency settles (`cv`), or for a fixed number of requests.

    Either mode also stops at ``max_sec`` (the request under way finishes first): on a busy
    machine latency may never settle, and warmup must not take minutes. The result records
    the limit and what ended warmup, and a cv warmup stopped short is reported as not converged.
    """

    mode: Literal["cv", "fixed"] = "cv"
    target_cv: float = Field(default=0.05, gt=0)
    window: int = Field(default=5, ge=2, description="Requests per CV window.")
    max_prompts: int = Field(default=50, ge=1, description="Most warmup requests in cv mode.")
    n: int = Field(default=5, ge=0, description="Warmup requests in fixed mode.")
    max_sec: float | None = Field(
        default=20.0,
        gt=0,
        description="Stop warming up after this many seconds (null: no time limit).",
    )


class ExperimentConfig(_Strict):
    """One experiment. Every field that changes what is measured enters the config hash."""

    model: str = Field(
        default="builtin:tiny-llama", description="Hub id, local path, or builtin:NAME."
    )
    engine: EngineName = "transformers"
    transformers: TransformersSection = Field(
        default_factory=TransformersSection, description="Options of the transformers engine."
    )
    vllm: VLLMSection = Field(
        default_factory=VLLMSection, description="Options of the vLLM engine."
    )
    arrival: OfflineArrivalModel = Field(
        default="closed",
        description="How requests reach the engine: closed (a batch when the previous one "
        "finished) or all_at_once (every request at the window start). Default: closed for "
        "transformers, all_at_once for vllm.",
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto", description="auto: float32 on CPU, the model's own dtype on GPU."
    )
    quantization: Literal["none", "bnb-8bit", "bnb-4bit", "torch-int8"] = Field(
        default="none",
        description="bnb-*: bitsandbytes (CUDA); torch-int8: torch dynamic int8 Linear (CPU).",
    )
    device_map: str | None = Field(
        default=None, description="transformers device_map; default: cuda:0 if available else cpu."
    )
    batch_size: int = Field(default=4, ge=1)
    processes: int = Field(
        default=1, ge=1, description="Data-parallel workers, one device each (CPU: gloo)."
    )
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    n_prompts: int = Field(default=16, ge=1, description="Prompts in the measurement window.")
    max_input_tokens: int = Field(default=256, ge=1, description="Longer prompts are truncated.")
    max_output_tokens: int = Field(default=32, ge=1)
    fixed_length: bool = Field(
        default=True,
        description="Generate exactly max_output_tokens (EOS ignored) for comparability; "
        "False stops each sequence at EOS.",
    )
    decoding: DecodingConfig = Field(default_factory=DecodingConfig)
    warmup: WarmupConfig = Field(default_factory=WarmupConfig)
    baseline_sec: float = Field(
        default=10.0, ge=0, description="Idle-power baseline before measuring; 0 disables."
    )
    baseline_settle_sec: float = Field(
        default=5.0,
        ge=0,
        description="Seconds the devices rest after warmup before the idle baseline is measured "
        "(recorded with the result).",
    )
    baseline_cache: bool | Literal["refresh"] = Field(
        default=True,
        description="true: reuse a cached idle baseline measured on the same devices and "
        "instruments for at least baseline_sec after at least baseline_settle_sec of rest, "
        "younger than an hour; false: always measure, never read or write the cache; "
        "refresh: measure and replace the cached one. Not part of the config hash.",
    )
    energy: EnergyInstrument = "auto"
    flops_method: FlopsMethodChoice = "auto"
    telemetry_interval_sec: float = Field(default=0.1, gt=0, le=10)
    output_dir: Path = Field(default=Path("results"), description="Results go in OUTPUT/<id>/.")
    name: str | None = Field(default=None, description="Optional label; not part of the hash.")
    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="Perplexity / KL / top-1 beside energy."
    )
    carbon: CarbonSettings = Field(
        default_factory=CarbonSettings,
        description="Grid intensity, PUE: a view on the energy; not part of the hash.",
    )
    cost: CostSettings = Field(
        default_factory=CostSettings,
        description="Hardware prices: a view on the time; not part of the hash.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_arrival(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("arrival") is None:
            engine = data.get("engine", "transformers")
            data = {**data, "arrival": DEFAULT_ARRIVAL.get(str(engine), "closed")}
        return data

    @model_validator(mode="after")
    def _engine_options_fit(self) -> ExperimentConfig:
        if self.engine != "transformers":
            if self.quantization != "none":
                raise ValueError(
                    f"quantization {self.quantization!r} (bitsandbytes) is for the transformers "
                    f"engine; for {self.engine} set {self.engine}.quantization"
                )
            if self.device_map is not None:
                raise ValueError(f"device_map is for the transformers engine, not {self.engine}")
            if self.processes > 1:
                raise ValueError(
                    f"processes {self.processes}: data-parallel workers are for the transformers "
                    f"engine; {self.engine} spreads a model with {self.engine}.tensor_parallel_size"
                )
        return self

    @field_validator("model")
    @classmethod
    def _model_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model must not be empty")
        return value.strip()

    @model_validator(mode="after")
    def _every_process_has_prompts(self) -> ExperimentConfig:
        if self.n_prompts < self.processes:
            raise ValueError(
                f"n_prompts ({self.n_prompts}) must be at least processes ({self.processes}), "
                "so that every process has a prompt to measure"
            )
        return self

    def config_hash(self) -> str:
        """Hash of the fields that change what is measured (not HASH_EXCLUDED's, nor the
        sections of engines the config does not use)."""
        payload = self.model_dump(mode="json", exclude=HASH_EXCLUDED | self._other_sections())
        # Hashes of configs without quality (or without lm-eval tasks) stay as they were.
        quality = payload.pop("quality")
        if not self.quality.lm_eval.tasks:
            quality.pop("lm_eval")
        if self.quality.enabled:
            payload["quality"] = quality
        elif self.quality.lm_eval.tasks:
            payload["quality"] = {"lm_eval": quality["lm_eval"]}
        return stable_hash(payload)

    def resolved(self) -> dict[str, Any]:
        """The config as plain JSON data (what result.json stores); only its engine's section."""
        return self.model_dump(mode="json", exclude=self._other_sections())

    def _other_sections(self) -> set[str]:
        """The sections of the engines this config does not use (not hashed, not stored)."""
        return {name for name in ENGINE_SECTIONS if name != self.engine}


#: Fields that do not change what is measured, left out of the config hash. ``carbon`` and
#: ``cost`` are views computed from the stored energy and time (recomputable later), so two runs
#: that differ only in them measured the same thing and share a hash; ``baseline_cache`` only
#: says whether an earlier idle baseline may be reused (the result records which).
HASH_EXCLUDED = {"output_dir", "name", "carbon", "cost", "baseline_cache"}
