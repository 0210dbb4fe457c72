"""Slurm through submitit: one job per run, or one job array per wave of runs.

``sbatch_parameters`` turns the study's ``executor:`` section into submitit's Slurm
parameters (plain data, shown by ``--dry-run`` and checked by the tests without Slurm);
``cluster: local`` swaps Slurm for submitit's local executor, which runs each job as a real
separate process on this machine with the same folders, job ids and result files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from llenergymeasure.config.executor import SlurmExecutorConfig
from llenergymeasure.errors import LlemError
from llenergymeasure.study.executors.dispatch import JobState
from llenergymeasure.study.executors.task import RunTask, execute

JOBS_DIRNAME = "jobs"
#: Slurm states in which a job may still run the experiment.
ACTIVE_STATES = frozenset(
    {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED"}
)
#: What submitit reports before sacct knows a fresh job: still active.
UNKNOWN_STATES = frozenset({"UNKNOWN", "READY"})


def sbatch_parameters(config: SlurmExecutorConfig, job_name: str) -> dict[str, Any]:
    """submitit's Slurm parameters for one run's job (names as ``SlurmExecutor`` takes them)."""
    params: dict[str, Any] = {
        "job_name": job_name,
        "time": config.time_limit_min,
        "nodes": 1,
        "ntasks_per_node": 1,
        "gpus_per_node": config.gpus_per_run,
        "array_parallelism": config.max_in_flight,
    }
    optional = {
        "partition": config.partition,
        "account": config.account,
        "cpus_per_task": config.cpus_per_run,
        "mem": f"{config.mem_gb:g}GB" if config.mem_gb else None,
        "setup": list(config.setup) or None,
        "additional_parameters": dict(config.extra_sbatch) or None,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    return params


def render_sbatch(
    config: SlurmExecutorConfig, job_name: str, folder: Path, array_size: int | None = None
) -> list[str]:
    """The ``#SBATCH`` lines submitit would write for a run's job (or an array of that size)."""
    from submitit.slurm import slurm

    text = slurm._make_sbatch_string(
        command="python -u -m submitit.core._submit FOLDER", folder=folder,
        map_count=array_size, **sbatch_parameters(config, job_name),
    )  # fmt: skip
    return [line for line in text.splitlines() if line.startswith("#SBATCH")]


class SubmititBackend:
    """Submits study runs as submitit jobs and follows them by job id."""

    kind = "slurm"

    def __init__(self, config: SlurmExecutorConfig, directory: Path, study_name: str) -> None:
        try:
            import submitit
        except ImportError:
            raise LlemError(
                "executor slurm needs submitit: pip install 'llenergymeasure[cluster]'"
            ) from None
        self.config = config
        self.folder = directory / JOBS_DIRNAME / "%j"
        self._jobs: dict[str, Any] = {}
        if config.cluster == "local":
            self._executor = submitit.LocalExecutor(folder=self.folder)
            self._executor.update_parameters(
                timeout_min=config.time_limit_min, gpus_per_node=config.gpus_per_run
            )
        else:
            try:
                self._executor = submitit.SlurmExecutor(folder=self.folder)
            except RuntimeError as exc:
                raise LlemError(f"executor slurm: {exc}") from None
            self._executor.update_parameters(**sbatch_parameters(config, f"llem-{study_name}"))

    def submit(self, tasks: list[RunTask]) -> list[str]:
        if self.config.array and len(tasks) > 1:
            jobs = self._executor.map_array(execute, tasks)
        else:
            jobs = [self._executor.submit(execute, task) for task in tasks]
        for job in jobs:
            self._jobs[str(job.job_id)] = job
        return [str(job.job_id) for job in jobs]

    def state(self, job_id: str) -> JobState:
        job = self._jobs.get(job_id)
        if self.config.cluster == "local":
            return self._local_state(job_id, job)
        if job is None:
            import submitit

            job = self._jobs[job_id] = submitit.SlurmJob(folder=self.folder, job_id=job_id)
        state = str(job.state).upper().split()[0] if job.state else "UNKNOWN"
        if state in ACTIVE_STATES or state in UNKNOWN_STATES:
            return "active"
        return "ended" if state == "COMPLETED" else "lost"

    def _local_state(self, job_id: str, job: Any) -> JobState:
        """submitit's local jobs are processes of this machine: alive, ended or lost."""
        if job is not None and getattr(job, "_process", None) is not None:
            return "active" if job._process.poll() is None else "ended"
        import psutil

        try:  # a job of an earlier parent: its controller process, by pid
            process = psutil.Process(int(job_id))
            alive = process.status() != psutil.STATUS_ZOMBIE and any(
                "submitit" in part for part in process.cmdline()
            )
        except (psutil.Error, ValueError):
            alive = False
        return "active" if alive else "lost"

    def wait(self, job_ids: list[str], timeout_sec: float) -> None:
        time.sleep(timeout_sec)

    def release(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def close(self) -> None:
        self._jobs.clear()
