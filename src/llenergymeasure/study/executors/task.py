"""What runs on the cluster for one study run: the same experiment child process as locally.

The task starts ``python -m llenergymeasure.study.child`` exactly as the local executor does,
and records where and when it ran in ``runs/<run_id>/outcome.json`` (written atomically, once
when it starts and once when it ends) on the shared file system, so the parent learns a run's
host, GPUs, start and end even if it was restarted meanwhile.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llenergymeasure.files import atomic_write_text

OUTCOME_FILENAME = "outcome.json"


@dataclass(frozen=True)
class RunTask:
    """Everything a cluster process needs to run one study run (plain data, picklable)."""

    run_id: str
    config_json: str
    run_dir: str
    timeout_sec: float | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _job_id_seen_inside() -> str | None:
    """The scheduler's id for this process, as the process itself sees it."""
    if "SLURM_ARRAY_JOB_ID" in os.environ and "SLURM_ARRAY_TASK_ID" in os.environ:
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")


def execute(
    task: RunTask, task_id: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run the experiment in a fresh child process; returns (and writes) the outcome.

    ``extra`` adds what the engine knows about the placement (e.g. Ray's GPU ids)."""
    from llenergymeasure.config.experiment import ExperimentConfig
    from llenergymeasure.config.study import PlannedRun
    from llenergymeasure.measure.progress import NullReporter
    from llenergymeasure.study.runner import _run_child

    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    outcome: dict[str, Any] = {
        "run_id": task.run_id,
        "state": "running",
        "host": socket.gethostname(),
        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "task_id": task_id or _job_id_seen_inside(),
        "pid": os.getpid(),
        "started_at": _now(),
        **(extra or {}),
    }
    write_outcome(run_dir, outcome)
    config = ExperimentConfig.model_validate_json(task.config_json)
    run = PlannedRun(task.run_id, 0, 0, {}, config)
    try:
        result = _run_child(run, run_dir, task.timeout_sec, NullReporter())
        outcome.update(ok=result.ok, error=result.error)
    except Exception as exc:  # recorded for the parent; the study goes on
        outcome.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    outcome.update(state="ended", finished_at=_now())
    write_outcome(run_dir, outcome)
    return outcome


def write_outcome(run_dir: Path, outcome: dict[str, Any]) -> None:
    atomic_write_text(run_dir / OUTCOME_FILENAME, json.dumps(outcome, sort_keys=True))


def read_outcome(run_dir: Path) -> dict[str, Any] | None:
    """The task's outcome file, or None when absent or unreadable."""
    try:
        data = json.loads((run_dir / OUTCOME_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
