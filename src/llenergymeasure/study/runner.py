"""Run a study: every planned experiment in a fresh subprocess, resumable, with statistics.

The parent only waits: it blocks reading the child's progress lines (no polling, no spinning
thread), so the measured child has the machine to itself. Results and the manifest are
written atomically, so a study killed at any moment loses no completed result; running it
again into the same directory skips every run whose result exists and validates.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from llenergymeasure.config.study import PlannedRun, StudyConfig, expand, load_study_config
from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.domain.study import RunRecord, StudyManifest, StudyResult
from llenergymeasure.errors import LlemError, ResultFileError
from llenergymeasure.files import check_output_dir
from llenergymeasure.locking import DirectoryLock
from llenergymeasure.measure.progress import NullReporter, Reporter
from llenergymeasure.results.intensity import check_region
from llenergymeasure.results.io import load_result, save_model
from llenergymeasure.results.layout import RESULT_FILENAME
from llenergymeasure.study.manifest_store import MANIFEST_FILENAME, ManifestStore, load_manifest
from llenergymeasure.study.result_check import check_result
from llenergymeasure.study.summary import execution_summary, summarise

SUMMARY_FILENAME = "study_summary.json"
RUNS_DIRNAME = "runs"
CHILD_LOG = "child.log"


class StudyReporter(Reporter, Protocol):
    """Receives a study's progress: runs starting and ending, and each run's stages."""

    def run_started(self, run: PlannedRun, position: int, total: int) -> None: ...

    def run_finished(self, record: RunRecord) -> None: ...


class _NullStudyReporter(NullReporter):
    def run_started(self, run: PlannedRun, position: int, total: int) -> None:
        pass

    def run_finished(self, record: RunRecord) -> None:
        pass


@dataclass
class _Outcome:
    ok: bool
    error: str | None


def study_directory(study: StudyConfig) -> Path:
    """Where a study writes: OUTPUT_DIR/NAME."""
    return Path(study.output_dir) / study.name


def _open_manifest(study: StudyConfig, directory: Path, runs: list[PlannedRun]) -> StudyManifest:
    path = directory / MANIFEST_FILENAME
    if path.exists():
        manifest = load_manifest(directory)
        if manifest.study_hash != study.study_hash():
            raise LlemError(
                f"{directory} holds a different study ({manifest.name}, hash "
                f"{manifest.study_hash}); write this one elsewhere with -o"
            )
        known = {r.run_id for r in manifest.runs}
        if known == {r.run_id for r in runs}:
            return manifest
    return StudyManifest(
        name=study.name,
        study_hash=study.study_hash(),
        study_config=study.model_dump(mode="json"),
        created_at=datetime.now(timezone.utc),
        runs=[
            RunRecord(
                run_id=r.run_id,
                config_index=r.config_index,
                cycle=r.cycle,
                config_hash=r.config_hash,
                overrides=r.overrides,
            )
            for r in runs
        ],
    )


def run_study(
    study: StudyConfig | str | Path,
    *,
    output_dir: Path | None = None,
    reporter: StudyReporter | None = None,
) -> StudyResult:
    """Run (or resume) a study; returns every run's record and the per-configuration stats."""
    if not isinstance(study, StudyConfig):
        study = load_study_config(study, output_dir)
    elif output_dir is not None:
        study = study.model_copy(update={"output_dir": output_dir})
    reporter = reporter or _NullStudyReporter()  # type: ignore[assignment]
    directory = study_directory(study)
    runs_dir = directory / RUNS_DIRNAME
    runs = expand(study, output_dir=runs_dir)
    for carbon in {run.config.carbon.model_dump_json(): run.config.carbon for run in runs}.values():
        check_region(carbon)  # fail before the first run, not after
    check_output_dir(directory)
    with DirectoryLock(directory, "study") as lock:
        for line in lock.warnings:
            reporter.message(f"warning: {line}")  # type: ignore[union-attr]
        return _run_locked(study, directory, runs, reporter)  # type: ignore[arg-type]


def _run_locked(
    study: StudyConfig, directory: Path, runs: list[PlannedRun], reporter: StudyReporter
) -> StudyResult:
    """The body of run_study, run while this process holds the study directory's lock."""
    runs_dir = directory / RUNS_DIRNAME
    runs_dir.mkdir(parents=True, exist_ok=True)
    store = ManifestStore(directory, _open_manifest(study, directory, runs))
    _check_attached_elsewhere(study, store.manifest)
    try:
        if study.executor.kind == "local":
            _run_local(study, runs, runs_dir, store, reporter)  # type: ignore[arg-type]
        else:  # Slurm or Ray: the parent submits and waits (study/executors/)
            from llenergymeasure.study.executors.dispatch import run_on_executor

            run_on_executor(study, runs, runs_dir, store, reporter)  # type: ignore[arg-type]
    finally:
        store.close()
    return finish_study(study, directory, store.manifest)


def _check_attached_elsewhere(study: StudyConfig, manifest: StudyManifest) -> None:
    """Refuse to run again what another executor may still be running."""
    kind = study.executor.kind
    attached = [
        r
        for r in manifest.runs
        if r.status in ("submitted", "running") and r.job_id and r.executor not in (None, kind)
    ]
    if attached:
        first = attached[0]
        raise LlemError(
            f"{len(attached)} run(s) of this study are still attached to {first.executor} "
            f"jobs (e.g. {first.run_id}: job {first.job_id}); resume with executor "
            f"{first.executor}, or cancel those jobs and mark them failed"
        )


def _run_local(
    study: StudyConfig,
    runs: list[PlannedRun],
    runs_dir: Path,
    store: ManifestStore,
    reporter: StudyReporter,
) -> None:
    """One run after another on this machine, each in a fresh subprocess."""
    records = store.records
    launched = 0
    host = socket.gethostname()
    for position, run in enumerate(runs):
        record = records[run.run_id]
        run_dir = runs_dir / run.run_id
        known = (record.result_sha256, record.result_schema_version)
        if check_result(run, run_dir, record):
            if record.status != "completed" or known != (
                record.result_sha256,
                record.result_schema_version,
            ):
                record.status, record.error = "completed", None
                store.update(record)
            continue
        if launched and study.gap_sec:
            time.sleep(study.gap_sec)  # cool-down between measured experiments
        shutil.rmtree(run_dir, ignore_errors=True)  # a partial earlier attempt
        run_dir.mkdir(parents=True)
        record.status, record.error = "running", None
        record.attempts += 1
        record.started_at, record.finished_at = datetime.now(timezone.utc), None
        record.executor, record.job_id, record.submitted_at = "local", None, record.started_at
        record.host, record.gpus = host, os.environ.get("CUDA_VISIBLE_DEVICES")
        record.result_sha256 = None
        store.update(record)
        reporter.run_started(run, position, len(runs))
        outcome = _run_child(run, run_dir, study.timeout_sec, reporter)
        launched += 1
        if not check_result(run, run_dir, record) and outcome.ok:
            outcome = _Outcome(False, "the experiment exited without a valid result.json")
        record.status = "completed" if outcome.ok else "failed"
        record.error = outcome.error
        record.finished_at = datetime.now(timezone.utc)
        store.update(record)
        reporter.run_finished(record)
        if not outcome.ok and study.fail_fast:
            break


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while thousands of results are loaded and kept:
    each of its passes would walk every object loaded so far again (half the summary's time for
    5,000 results). Reference counting still frees everything that is dropped at once."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def finish_study(study: StudyConfig, directory: Path, manifest: StudyManifest) -> StudyResult:
    """Compute the per-configuration statistics and write the study summary."""
    runs_dir = directory / RUNS_DIRNAME
    results: dict[str, ExperimentResult] = {}
    with _cycle_collector_paused():
        for record in manifest.runs:
            if record.status != "completed":
                continue
            try:
                results[record.run_id] = load_result(runs_dir / record.run_id / RESULT_FILENAME)
            except ResultFileError:
                record.status, record.error = "failed", "result.json unreadable after the run"
    result = StudyResult(
        name=study.name,
        study_hash=manifest.study_hash,
        directory=str(directory),
        runs=manifest.runs,
        summaries=summarise(manifest.runs, results),
        execution=execution_summary(study.executor.kind, manifest.runs),
    )
    save_model(result, directory / SUMMARY_FILENAME)
    return result


def _run_child(
    run: PlannedRun, run_dir: Path, timeout_sec: float | None, reporter: Reporter
) -> _Outcome:
    """Run one experiment in a fresh interpreter and relay its progress."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    with open(run_dir / CHILD_LOG, "w", encoding="utf-8") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "llenergymeasure.study.child", run.run_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        timed_out = threading.Event()
        timer = None
        if timeout_sec:
            timer = threading.Timer(timeout_sec, _kill, (child, timed_out))
            timer.daemon = True
            timer.start()
        try:
            error = _relay(child, run, reporter)
        except BaseException:  # Ctrl-C or SIGTERM: the child stops too, and is waited for
            _stop(child)
            raise
        code = child.wait()
        if timer is not None:
            timer.cancel()
    if timed_out.is_set():
        return _Outcome(False, f"timed out after {timeout_sec:g} s")
    if code == 0:
        return _Outcome(True, None)
    return _Outcome(False, error or f"exited with status {code}; see {run_dir / CHILD_LOG}")


def _stop(child: subprocess.Popen[str], grace_sec: float = 10.0) -> None:
    """Ask the child to stop (SIGTERM: it logs and exits), then kill it after a grace period."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(grace_sec)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _kill(child: subprocess.Popen[str], flag: threading.Event) -> None:
    flag.set()
    child.kill()


def _relay(child: subprocess.Popen[str], run: PlannedRun, reporter: Reporter) -> str | None:
    """Feed the config, then block on the child's progress lines until it closes stdout."""
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(run.config.model_dump_json())
        child.stdin.close()
    except BrokenPipeError:
        pass
    error: str | None = None
    handlers: dict[str, Callable[[dict], None]] = {
        "stage": lambda e: reporter.stage(e.get("name", ""), e.get("total")),
        "advance": lambda e: reporter.advance(e.get("amount", 1.0), e.get("info")),
        "message": lambda e: reporter.message(e.get("text", "")),
    }
    for line in child.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # stray output from a library; the log has stderr
        if not isinstance(event, dict):
            continue
        if event.get("event") == "error":
            error = str(event.get("text"))
        elif event.get("event") in handlers:
            handlers[event["event"]](event)
    return error
