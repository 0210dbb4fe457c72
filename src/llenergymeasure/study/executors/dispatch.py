"""The parent's loop for Slurm and Ray: submit in study order, reattach, harvest, record.

Runs are submitted in the study's order, at most ``max_in_flight`` at a time. With the
interleaved order and ``cycle_barrier`` (the default), no run of cycle k+1 starts before every
run of cycle k has ended, so each cycle still measures every configuration within one span of
time. Every change of a run's state goes to the manifest at once (job id when submitted;
host, GPUs and start when it starts; end and outcome when it ends). A restarted parent
reattaches to the jobs the manifest names that are still queued or running and submits only
runs that have neither a valid result nor a live job.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Protocol

from llenergymeasure.config.study import PlannedRun, StudyConfig
from llenergymeasure.domain.study import RunRecord
from llenergymeasure.study.executors.task import RunTask, read_outcome
from llenergymeasure.study.manifest_store import ManifestStore
from llenergymeasure.study.result_check import check_result

JobState = Literal["active", "ended", "lost"]


class Backend(Protocol):
    """A distributed engine as the dispatcher sees it; job ids are strings it can reattach to."""

    kind: str

    def submit(self, tasks: list[RunTask]) -> list[str]: ...

    def state(self, job_id: str) -> JobState: ...

    def wait(self, job_ids: list[str], timeout_sec: float) -> None: ...

    def release(self, job_id: str) -> None: ...

    def close(self) -> None: ...


def make_backend(study: StudyConfig, directory: Path) -> Backend:
    """The backend for the study's executor (imports its engine now)."""
    executor = study.executor
    if executor.kind == "slurm":
        from llenergymeasure.study.executors.submitit_backend import SubmititBackend

        return SubmititBackend(executor, directory, study.name)
    if executor.kind == "ray":
        from llenergymeasure.study.executors.ray_backend import RayBackend

        return RayBackend(executor, study.study_hash())
    raise ValueError(f"no distributed backend for executor {executor.kind!r}")


def _parse_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


class Dispatcher:
    """Submits, watches and harvests the runs of one study on one backend."""

    def __init__(
        self,
        study: StudyConfig,
        runs: list[PlannedRun],
        runs_dir: Path,
        store: ManifestStore,
        backend: Backend,
        reporter: object,
    ) -> None:
        self.study, self.runs, self.runs_dir = study, runs, runs_dir
        self.store, self.backend, self.reporter = store, backend, reporter
        self.kind = backend.kind
        self.max_in_flight: int = study.executor.max_in_flight  # type: ignore[union-attr]
        self.barrier = study.order == "interleaved" and study.executor.cycle_barrier  # type: ignore[union-attr]
        self.poll_sec: float = study.executor.poll_sec  # type: ignore[union-attr]
        self.position = {run.run_id: i for i, run in enumerate(runs)}
        self.in_flight: dict[str, PlannedRun] = {}
        self.todo: list[PlannedRun] = []
        self.submitted = 0
        self.reattached = 0
        self.stop = False

    def record(self, run: PlannedRun) -> RunRecord:
        return self.store.records[run.run_id]

    def run(self) -> None:
        for run in self.runs:
            record = self.record(run)
            known = (record.result_sha256, record.result_schema_version)
            if check_result(run, self.runs_dir / run.run_id, record):
                if record.status != "completed" or known != (
                    record.result_sha256,
                    record.result_schema_version,
                ):
                    record.status, record.error = "completed", None
                    self.store.update(record)
                continue
            live = record.status in ("submitted", "running") and record.job_id is not None
            if live and record.executor == self.kind:
                state = self.backend.state(record.job_id)  # type: ignore[arg-type]
                if state == "active":
                    self.in_flight[run.run_id] = run
                    self.reattached += 1
                    continue
                if self._harvest(run, state):
                    continue
            self.todo.append(run)
        while self.todo or self.in_flight:
            if not self.stop:
                self._fill()
            if not self.in_flight:
                break
            ids = [self.record(r).job_id or "" for r in self.in_flight.values()]
            self.backend.wait(ids, self.poll_sec)
            for run in list(self.in_flight.values()):
                self._check(run)

    def _fill(self) -> None:
        room = self.max_in_flight - len(self.in_flight)
        if room <= 0 or not self.todo:
            return
        eligible = self.todo
        if self.barrier:
            cycle = min(r.cycle for r in [*self.todo, *self.in_flight.values()])
            eligible = [r for r in self.todo if r.cycle == cycle]
        batch = eligible[:room]
        if not batch:
            return
        tasks = []
        for run in batch:
            run_dir = self.runs_dir / run.run_id
            shutil.rmtree(run_dir, ignore_errors=True)  # a partial earlier attempt
            run_dir.mkdir(parents=True)
            config_json = run.config.model_dump_json()
            tasks.append(RunTask(run.run_id, config_json, str(run_dir), self.study.timeout_sec))
        job_ids = self.backend.submit(tasks)
        now = datetime.now(timezone.utc)
        submitted = []
        for run, job_id in zip(batch, job_ids, strict=True):
            record = self.record(run)
            record.status, record.error, record.attempts = "submitted", None, record.attempts + 1
            record.executor, record.job_id, record.submitted_at = self.kind, job_id, now
            record.host = record.gpus = record.started_at = record.finished_at = None
            record.result_sha256 = None
            submitted.append(record)
            self.in_flight[run.run_id] = run
            self.submitted += 1
        self.store.update(*submitted)  # the batch's job ids in one journal write
        self.todo = [r for r in self.todo if r.run_id not in self.in_flight]

    def _check(self, run: PlannedRun) -> None:
        record = self.record(run)
        state = self.backend.state(record.job_id or "")  # before reading the outcome: no race
        outcome = read_outcome(self.runs_dir / run.run_id)
        if outcome is not None and record.status == "submitted":
            self._placement(record, outcome)
            record.status = "running"
            self.store.update(record)
            self.reporter.run_started(run, self.position[run.run_id], len(self.runs))  # type: ignore[attr-defined]
        if (outcome is not None and outcome.get("state") == "ended") or state != "active":
            self._harvest(run, state, outcome)

    @staticmethod
    def _placement(record: RunRecord, outcome: dict) -> None:
        record.host = outcome.get("host")
        record.gpus = outcome.get("gpus")
        record.started_at = _parse_time(outcome.get("started_at")) or record.started_at

    def _harvest(self, run: PlannedRun, state: JobState, outcome: dict | None = None) -> bool:
        """Record how the run ended; True when it completed with a valid result.

        ``outcome``: the outcome file as just read after ``state`` (else it is read here)."""
        record = self.record(run)
        run_dir = self.runs_dir / run.run_id
        if outcome is None:
            outcome = read_outcome(run_dir)
        if outcome is not None:
            self._placement(record, outcome)
        ended = outcome is not None and outcome.get("state") == "ended"
        record.finished_at = (
            _parse_time(outcome.get("finished_at")) if ended and outcome else None
        ) or datetime.now(timezone.utc)
        ok = check_result(run, run_dir, record)
        if ok:
            record.status, record.error = "completed", None
        else:
            record.status = "failed"
            if ended and outcome and outcome.get("error"):
                record.error = str(outcome["error"])
            elif ended:
                record.error = "the experiment exited without a valid result.json"
            else:
                record.error = (
                    f"{self.kind} job {record.job_id} {'ended' if state == 'ended' else 'was lost'}"
                    f" before the run finished; see {run_dir}"
                )
        self.store.update(record)
        if record.job_id:
            self.backend.release(record.job_id)
        if self.in_flight.pop(run.run_id, None) is not None:
            self.reporter.run_finished(record)  # type: ignore[attr-defined]
            if not ok and self.study.fail_fast:
                self.stop = True
        return ok


def run_on_executor(
    study: StudyConfig,
    runs: list[PlannedRun],
    runs_dir: Path,
    store: ManifestStore,
    reporter: object,
) -> Dispatcher:
    """Run (or resume) the study's missing runs on its executor; returns the dispatcher."""
    backend = make_backend(study, runs_dir.parent)
    try:
        dispatcher = Dispatcher(study, runs, runs_dir, store, backend, reporter)
        dispatcher.run()
    finally:
        backend.close()
    return dispatcher
