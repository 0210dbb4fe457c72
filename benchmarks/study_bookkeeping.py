"""Bookkeeping of a 5,000-run study on a cluster executor: planning, manifest updates, resume.

Everything but the experiments is real: the study is expanded and validated, the dispatcher
submits in order with 64 runs in flight, records each run's submission, start and end in the
manifest (journal + atomic snapshots) and validates each run's result.json in full when it
ends (recording its SHA-256 in the manifest); the summary loads every result in full; then a
restarted parent resumes the finished study (it checks every result against the SHA-256 the
manifest holds, validating in full only a changed file, and submits nothing). The stand-in
backend (``InstantBackend``, a fake) "runs" a submitted run by moving a result file prepared
beforehand (untimed) into the run's directory. Each phase prints wall-clock and CPU time.
Run from the repository root:

    PYTHONPATH=src:. python benchmarks/study_bookkeeping.py [--configs 2500] [--cycles 2]

``--profile N`` also prints each phase's N costliest functions (cProfile, own time); the
phases' times are then those of the profiled code, slower than without it.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from tests import factories

from llenergymeasure.config.study import StudyConfig, expand
from llenergymeasure.results.io import save_result
from llenergymeasure.study.executors.dispatch import Dispatcher, JobState
from llenergymeasure.study.executors.task import RunTask, write_outcome
from llenergymeasure.study.manifest_store import ManifestStore, load_manifest
from llenergymeasure.study.runner import (
    RUNS_DIRNAME,
    _NullStudyReporter,
    _open_manifest,
    finish_study,
    study_directory,
)


class Clock(NamedTuple):
    """Wall-clock and CPU seconds (this process): CPU time shows the cost on a busy machine."""

    wall: float
    cpu: float

    @staticmethod
    def now() -> Clock:
        return Clock(time.perf_counter(), time.process_time())

    def __add__(self, other: object) -> Clock:
        assert isinstance(other, Clock)
        return Clock(self.wall + other.wall, self.cpu + other.cpu)

    def __sub__(self, other: Clock) -> Clock:
        return Clock(self.wall - other.wall, self.cpu - other.cpu)


class InstantBackend:
    """A fake backend: a submitted run ends at once with the result staged for it."""

    kind = "slurm"

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self.submitted = 0
        self.own = Clock(0.0, 0.0)  # the stand-in runs' own file writes, not bookkeeping
        self._ended: set[str] = set()

    def submit(self, tasks: list[RunTask]) -> list[str]:
        start = Clock.now()
        ids = []
        for task in tasks:
            self.submitted += 1
            job_id = str(100000 + self.submitted)
            os.replace(self.staging / f"{task.run_id}.json", Path(task.run_dir) / "result.json")
            write_outcome(
                Path(task.run_dir),
                {"state": "ended", "host": "node1", "gpus": "0", "ok": True,
                 "started_at": "2026-01-01T00:00:00+00:00",
                 "finished_at": "2026-01-01T00:00:01+00:00"},
            )  # fmt: skip
            self._ended.add(job_id)
            ids.append(job_id)
        self.own = self.own + (Clock.now() - start)
        return ids

    def state(self, job_id: str) -> JobState:
        return "ended" if job_id in self._ended else "lost"

    def wait(self, job_ids: list[str], timeout_sec: float) -> None:
        pass

    def release(self, job_id: str) -> None:
        pass

    def close(self) -> None:
        pass


def dispatch(study: StudyConfig, backend: InstantBackend) -> tuple[Clock, Clock, int]:
    """(time to expand, time to open the manifest and dispatch, runs)."""
    directory = study_directory(study)
    t0 = Clock.now()
    runs = expand(study, output_dir=directory / RUNS_DIRNAME)
    t1 = Clock.now()
    (directory / RUNS_DIRNAME).mkdir(parents=True, exist_ok=True)
    store = ManifestStore(directory, _open_manifest(study, directory, runs))
    Dispatcher(
        study, runs, directory / RUNS_DIRNAME, store, backend, _NullStudyReporter()
    ).run()
    store.close()
    return t1 - t0, Clock.now() - t1, len(runs)


class Phases:
    """Runs each phase, optionally under cProfile, and prints its top functions."""

    def __init__(self, top: int) -> None:
        self.top = top

    def __call__(self, name: str, fn, *args):  # type: ignore[no-untyped-def]
        if not self.top:
            return fn(*args)
        profile = cProfile.Profile()
        try:
            return profile.runcall(fn, *args)
        finally:
            print(f"--- profile of {name} (own time) ---")
            pstats.Stats(profile).sort_stats("tottime").print_stats(self.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=int, default=2500)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="llem-bookkeeping-"))
    side = int(args.configs**0.5)
    study = StudyConfig.model_validate(
        {
            "name": "big",
            "base": {"model": "builtin:tiny-llama"},
            "sweep": {
                "batch_size": list(range(1, side + 1)),
                "max_output_tokens": list(range(1, args.configs // side + 1)),
            },
            "cycles": args.cycles,
            "executor": {"kind": "slurm", "max_in_flight": 64, "poll_sec": 0.01},
            "output_dir": str(root),
        }
    )
    staging = root / "staging"
    staging.mkdir()
    template = factories.experiment_result()
    for run in expand(study):  # untimed: the experiments' own output
        result = template.model_copy(
            update={
                "experiment_id": run.run_id,
                "config_hash": run.config_hash,
                "config": run.config.model_dump(mode="json"),
            }
        )
        save_result(result, staging / f"{run.run_id}.json")

    phase = Phases(args.profile)
    backend = InstantBackend(staging)
    plan, first, n = phase("first pass", dispatch, study, backend)
    assert backend.submitted == n
    first = first - backend.own
    directory = study_directory(study)
    t0 = Clock.now()
    summary = phase("summary", lambda: finish_study(study, directory, load_manifest(directory)))
    summarising = Clock.now() - t0
    assert summary.completed == n, summary.completed

    resumed = InstantBackend(staging)
    resume_plan, resume, _ = phase("resume", dispatch, study, resumed)
    assert resumed.submitted == 0  # a finished study resumes without submitting anything
    size_mb = (directory / "manifest.json").stat().st_size / 1e6

    def row(what: str, t: Clock) -> str:
        return (
            f"{what:<50} {t.wall:>6.2f} s {t.wall / n * 1e3:>6.3f} ms/run"
            f"   (CPU {t.cpu:>5.2f} s {t.cpu / n * 1e3:>6.3f} ms/run)"
        )

    print(f"study of {n} runs ({args.configs} configurations x {args.cycles} cycles)")
    print(row("plan: expand + validate every run's config", plan))
    print(row("dispatch: submit, record, validate results in full", first))
    print(
        f"  (not counted: the stand-in runs' own result/outcome writes, {backend.own.wall:.2f} s)"
    )
    print(row("summary: load every result in full, statistics", summarising))
    print(row("resume: re-plan, manifest, SHA-256 of each result", resume_plan + resume))
    total = plan + first + resume_plan + resume
    print(row("bookkeeping total (plan + dispatch + resume)", total))
    print(f"manifest.json: {size_mb:.1f} MB")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
