"""Where a study's runs execute: this machine (default), a Slurm cluster (submitit) or Ray.

The executor is not part of a study's identity (its hash): the same study can be resumed on
another executor. Each run is still one fresh process running one experiment; the executor
only decides where that process starts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Executor(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalExecutorConfig(_Executor):
    """Runs one after another on this machine, each in a fresh subprocess (today's behaviour)."""

    kind: Literal["local"] = "local"


class SlurmExecutorConfig(_Executor):
    """One Slurm job per run (or job arrays), submitted through submitit."""

    kind: Literal["slurm"] = "slurm"
    partition: str | None = Field(default=None, description="sbatch --partition.")
    account: str | None = Field(default=None, description="sbatch --account.")
    time_limit_min: int = Field(default=60, ge=1, description="sbatch --time, in minutes.")
    gpus_per_run: int = Field(default=1, ge=0, description="GPUs of each run's job.")
    cpus_per_run: int | None = Field(default=None, ge=1, description="sbatch --cpus-per-task.")
    mem_gb: float | None = Field(default=None, gt=0, description="sbatch --mem, in GB.")
    extra_sbatch: dict[str, Any] = Field(
        default_factory=dict,
        description="Further sbatch options, e.g. {constraint: h100, qos: high}.",
    )
    setup: list[str] = Field(
        default_factory=list, description="Shell lines run before each job (module load ...)."
    )
    max_in_flight: int = Field(default=8, ge=1, description="Jobs queued or running at once.")
    array: bool = Field(
        default=False, description="Submit each wave of runs as one job array (--array)."
    )
    cycle_barrier: bool = Field(
        default=True,
        description="With interleaved order, start cycle k+1 only after cycle k has ended.",
    )
    poll_sec: float = Field(default=10.0, gt=0, description="How often job states are read.")
    cluster: Literal["slurm", "local", "debug"] = Field(
        default="slurm",
        description="submitit's backend: slurm, or its local/debug stand-ins (tests, trials).",
    )

    @field_validator("extra_sbatch")
    @classmethod
    def _plain_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not key or key.startswith("-") or any(c.isspace() for c in key):
                raise ValueError(f"extra_sbatch key {key!r} must be a bare option name")
        return value


class RayExecutorConfig(_Executor):
    """One Ray task per run (a fresh worker process), on an existing cluster or a local one."""

    kind: Literal["ray"] = "ray"
    address: str | None = Field(
        default=None,
        description="Cluster address ('auto', 'HOST:PORT', 'ray://...'); none: start a local one.",
    )
    gpus_per_run: float = Field(default=1, ge=0, description="Ray num_gpus of each run.")
    cpus_per_run: float = Field(default=1, ge=0, description="Ray num_cpus of each run.")
    max_in_flight: int = Field(default=8, ge=1, description="Runs submitted at once.")
    cycle_barrier: bool = True
    local_num_gpus: int | None = Field(
        default=None,
        ge=0,
        description="GPUs a local cluster advertises (default: detected); fake ones for tests.",
    )
    local_num_cpus: int | None = Field(default=None, ge=1)
    namespace: str | None = Field(
        default=None, description="Ray namespace of the run actors (default: per study)."
    )
    poll_sec: float = Field(default=2.0, gt=0)


ExecutorConfig = Annotated[
    LocalExecutorConfig | SlurmExecutorConfig | RayExecutorConfig, Field(discriminator="kind")
]
EXECUTOR_KINDS = ("local", "slurm", "ray")


def executor_from_value(value: Any) -> Any:
    """``executor: slurm`` is short for ``executor: {kind: slurm}``."""
    if isinstance(value, str):
        return {"kind": value}
    return value
