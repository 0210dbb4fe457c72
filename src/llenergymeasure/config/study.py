"""StudyConfig: many experiments from a base config, a sweep or a list, repeated in cycles."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llenergymeasure.config.executor import (
    ExecutorConfig,
    LocalExecutorConfig,
    executor_from_value,
)
from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.config.loading import check_prompt_file, read_yaml, set_dotted, validate
from llenergymeasure.errors import ConfigError


class StudyConfig(BaseModel):
    """A study: which experiments, how often, in what order, and what to do on failure."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="study", description="Names the study's output directory.")
    base: dict[str, Any] = Field(
        default_factory=dict, description="Experiment fields shared by every run."
    )
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict, description="Dotted config keys -> values; Cartesian product."
    )
    experiments: list[dict[str, Any]] = Field(
        default_factory=list, description="Explicit runs: overrides of the base (dotted keys)."
    )
    cycles: int = Field(default=1, ge=1, description="Repeat the whole set this many times.")
    order: Literal["sequential", "interleaved", "shuffled"] = "interleaved"
    seed: int = Field(default=0, description="Seed of the shuffled order.")
    gap_sec: float = Field(default=0.0, ge=0, description="Cool-down between experiments.")
    timeout_sec: float | None = Field(default=None, gt=0, description="Per-experiment limit.")
    fail_fast: bool = False
    output_dir: Path = Path("results")
    executor: ExecutorConfig = Field(
        default_factory=LocalExecutorConfig,
        description="Where runs execute: local (default), slurm or ray (docs/executors.md).",
    )

    @field_validator("executor", mode="before")
    @classmethod
    def _executor_shorthand(cls, value: Any) -> Any:
        return executor_from_value(value)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not value or any(c in value for c in "/\\\0") or value in (".", ".."):
            raise ValueError(
                "name must be a plain directory name (no '/', '\\' or NUL byte; not '.' or '..')"
            )
        return value

    @field_validator("output_dir")
    @classmethod
    def _output_dir_plain(cls, value: Path) -> Path:
        if "\0" in str(value):
            raise ValueError("output_dir holds a NUL byte; choose another path")
        return value

    @field_validator("sweep")
    @classmethod
    def _sweep_values(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"sweep.{key} has no values")
        return value

    @model_validator(mode="after")
    def _one_source_of_variation(self) -> StudyConfig:
        if self.sweep and self.experiments:
            raise ValueError("give either sweep or experiments, not both")
        return self

    def study_hash(self) -> str:
        """Identity of what the study measures (not where it writes)."""
        payload = self.model_dump(
            mode="json", exclude={"output_dir", "gap_sec", "fail_fast", "executor"}
        )
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PlannedRun:
    """One experiment of the study: which configuration, which cycle, and its id."""

    run_id: str
    config_index: int
    cycle: int
    overrides: dict[str, Any]
    config: ExperimentConfig
    #: ``config.config_hash()``, computed once (given by ``expand``, else computed here).
    config_hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.config_hash:
            object.__setattr__(self, "config_hash", self.config.config_hash())


def _variations(study: StudyConfig) -> list[dict[str, Any]]:
    if study.sweep:
        keys = list(study.sweep)
        return [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(study.sweep[k] for k in keys))
        ]
    return [dict(e) for e in study.experiments] or [{}]


def expand(study: StudyConfig, output_dir: Path | None = None) -> list[PlannedRun]:
    """Every run of the study, in execution order; each config validated and named."""
    configs: list[tuple[dict[str, Any], ExperimentConfig, str]] = []
    for index, overrides in enumerate(_variations(study)):
        data = copy.deepcopy(study.base)
        for key, value in overrides.items():
            set_dotted(data, key, value)
        source = f"study run {index + 1} ({describe_overrides(overrides)})"
        config = validate(ExperimentConfig, data, source=source)
        if output_dir is not None:
            config = config.model_copy(update={"output_dir": output_dir})
        configs.append((overrides, config, config.config_hash()))

    def run(index: int, cycle: int) -> PlannedRun:
        overrides, config, config_hash = configs[index]
        run_id = f"c{index + 1:03d}-cycle{cycle + 1}-{config_hash[:8]}"
        return PlannedRun(run_id, index, cycle, overrides, config, config_hash)

    n, cycles = len(configs), study.cycles
    if study.order == "sequential":
        runs = [run(i, c) for i in range(n) for c in range(cycles)]
    else:
        runs = [run(i, c) for c in range(cycles) for i in range(n)]
        if study.order == "shuffled":
            random.Random(study.seed).shuffle(runs)
    return runs


def describe_overrides(overrides: dict[str, Any]) -> str:
    """A run's difference from the base, e.g. ``batch_size=4, dtype=float16``."""
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "base"


def load_study_config(path: str | Path, output_dir: Path | None = None) -> StudyConfig:
    """A StudyConfig from YAML; ``base`` may also name an experiment YAML file."""
    path = Path(path)
    data = read_yaml(path)
    base = data.get("base")
    if isinstance(base, str):
        base_path = (path.parent / base).resolve()
        if not base_path.is_file():
            raise ConfigError(f"{path}: base: experiment config not found: {base_path}")
        data["base"] = read_yaml(base_path)
    if output_dir is not None:
        data["output_dir"] = str(output_dir)
    if data.get("experiments") == []:  # the manifest's dump has [] when absent: check here
        raise ConfigError(
            f"{path}: experiments is empty; list at least one experiment, or leave the key "
            "out to run the base config alone"
        )
    study = validate(StudyConfig, data, source=str(path))
    # Validate every run's config now, before anything starts: fields, prompt files, memory.
    seen: set[str] = set()
    for run in expand(study):
        if run.config_hash not in seen:
            seen.add(run.config_hash)
            check_prompt_file(run.config)
    return study
