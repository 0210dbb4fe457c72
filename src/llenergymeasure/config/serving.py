"""ServingConfig: a load against an OpenAI-compatible server, validated like an experiment."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_serializer, field_validator, model_validator

from llenergymeasure.config.experiment import EnergyInstrument, PromptsConfig, _Strict


class ServerConfig(_Strict):
    """The server: the URL of a running one, or a command llem starts and stops."""

    url: str = Field(default="http://127.0.0.1:8000", description="Base URL (no /v1).")
    launch: str | None = Field(
        default=None, description="A command that starts the server; llem waits for it."
    )
    ready_timeout_sec: float = Field(default=600.0, gt=0)
    endpoint: Literal["completions", "chat"] = "completions"
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment for the launched server."
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"server.url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")


class LoadConfig(_Strict):
    """How requests are sent: rate(s), arrival process, how many, and a concurrency cap."""

    request_rate: float | list[float] = Field(
        default=4.0, description="Requests per second (inf: all at once); a list sweeps rates."
    )
    arrival: Literal["poisson", "gamma"] = "poisson"
    burstiness: float = Field(default=1.0, gt=0, description="Gamma shape; 1 = Poisson.")
    n_requests: int | None = Field(default=64, ge=1, le=1_000_000)
    duration_sec: float | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, ge=1)
    seed: int = 0

    @field_validator("request_rate", mode="before")
    @classmethod
    def _parse_inf(cls, value: Any) -> Any:
        def one(v: Any) -> Any:
            infinite = isinstance(v, str) and v.strip().lower() in ("inf", "infinity")
            return math.inf if infinite else v

        return [one(v) for v in value] if isinstance(value, list) else one(value)

    @field_serializer("request_rate")
    def _inf_as_text(self, value: float | list[float]) -> Any:
        def one(v: float) -> Any:
            return "inf" if math.isinf(v) else v

        return [one(v) for v in value] if isinstance(value, list) else one(value)

    @model_validator(mode="after")
    def _check(self) -> LoadConfig:
        rates = self.rates()
        if not rates or any(not (r > 0) for r in rates):
            raise ValueError(f"load.request_rate must be > 0 or inf, got {self.request_rate}")
        if self.n_requests is None and self.duration_sec is None:
            raise ValueError("load needs n_requests or duration_sec")
        if self.n_requests is None and any(math.isinf(r) for r in rates):
            raise ValueError("an infinite request_rate needs n_requests")
        if self.arrival == "poisson" and self.burstiness != 1.0:
            raise ValueError("load.burstiness applies to arrival 'gamma' (Poisson is 1)")
        return self

    def rates(self) -> list[float]:
        rate = self.request_rate
        return list(rate) if isinstance(rate, list) else [rate]


class SloConfig(_Strict):
    """Latency limits for goodput (None: no limit)."""

    ttft_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)
    e2e_ms: float | None = Field(default=None, gt=0)


class ServingConfig(_Strict):
    """One serving experiment per request rate, against one server."""

    scenario: Literal["serving"] = "serving"
    name: str | None = None
    model: str = Field(default="builtin:tiny-llama", description="The model name the server knows.")
    flops_model: str | None = Field(
        default=None,
        description="Where to read the model's config for FLOPs (builtin:NAME, a local HF "
        "folder or a cached hub id); default: model.",
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto", description="The precision the server computes in (auto: the config's)."
    )
    server: ServerConfig = Field(default_factory=ServerConfig)
    gpus: list[int] | None = Field(
        default=None,
        description="GPU indices to meter; default: the launched server's "
        "CUDA_VISIBLE_DEVICES, else every visible GPU.",
    )
    load: LoadConfig = Field(default_factory=LoadConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    max_output_tokens: int = Field(default=32, ge=1, le=32768)
    min_output_tokens: int | None = Field(
        default=None,
        ge=1,
        description="With it, each request asks for a length drawn uniformly from "
        "[min_output_tokens, max_output_tokens] (seeded by load.seed); without, every request "
        "asks for max_output_tokens.",
    )
    ignore_eos: bool = True
    slo: SloConfig = Field(default_factory=SloConfig)
    warmup_requests: int = Field(default=4, ge=0, description="Sent one by one, not measured.")
    energy: EnergyInstrument = "auto"
    baseline_sec: float = Field(default=10.0, ge=0, description="Idle server, model loaded.")
    telemetry_interval_sec: float = Field(default=0.1, gt=0, le=10)
    output_dir: Path = Path("results")

    @model_validator(mode="after")
    def _lengths(self) -> ServingConfig:
        if self.min_output_tokens is not None and self.min_output_tokens > self.max_output_tokens:
            raise ValueError(
                f"min_output_tokens {self.min_output_tokens} > max_output_tokens "
                f"{self.max_output_tokens}"
            )
        return self

    def output_lengths(self, n: int) -> list[int]:
        """Each request's requested output length (fixed, or drawn with the load's seed)."""
        if self.min_output_tokens is None:
            return [self.max_output_tokens] * n
        import random

        rng = random.Random(self.load.seed)
        return [rng.randint(self.min_output_tokens, self.max_output_tokens) for _ in range(n)]

    @model_validator(mode="after")
    def _prompts_are_text(self) -> ServingConfig:
        if self.prompts.source == "synthetic":
            raise ValueError("prompts.source 'synthetic' (token ids) is not available in serving")
        return self
