"""The dispatcher through ``run_study`` with a scripted fake backend: order, cycle barrier,
jobs in flight, reattaching on resume, fail-fast. No experiment runs: a job "ends" by writing
the run's result file (from the test factories) and its outcome."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from llenergymeasure.config.study import StudyConfig, expand
from llenergymeasure.domain.study import StudyManifest
from llenergymeasure.results.io import save_model, save_result
from llenergymeasure.study import result_check
from llenergymeasure.study.executors import dispatch
from llenergymeasure.study.executors.task import RunTask, write_outcome
from llenergymeasure.study.manifest_store import load_manifest
from llenergymeasure.study.runner import run_study
from tests import factories


class FakeBackend:
    """Scripted stand-in for Slurm: each job ends after ``polls`` waits, with a result unless
    its run id is in ``failing``; jobs named in ``alive`` are reattachable from earlier."""

    kind = "slurm"

    def __init__(self, polls: int = 2, failing: tuple[str, ...] = ()) -> None:
        self.polls, self.failing = polls, failing
        self.batches: list[list[str]] = []
        self.jobs: dict[str, tuple[RunTask | None, int]] = {}
        self.alive: dict[str, RunTask] = {}
        self.unfinished_at_submit: list[set[int]] = []  # cycles still in flight per batch
        self.reattached: list[str] = []

    def submit(self, tasks: list[RunTask]) -> list[str]:
        flying = {RUN_CYCLE[t.run_id] for t, left in self.jobs.values() if t and left > 0}
        self.unfinished_at_submit.append(flying)
        self.batches.append([t.run_id for t in tasks])
        ids = []
        for task in tasks:
            job_id = str(1000 + len(self.jobs))
            self.jobs[job_id] = (task, self.polls + len(self.jobs) % 2)  # staggered ends
            ids.append(job_id)
        return ids

    def state(self, job_id: str) -> str:
        if job_id not in self.jobs and job_id in self.alive:
            self.jobs[job_id] = (self.alive.pop(job_id), self.polls)
            self.reattached.append(job_id)
        task, left = self.jobs.get(job_id, (None, 0))
        if task is None:
            return "lost"
        return "active" if left > 0 else "ended"

    def wait(self, job_ids: list[str], timeout_sec: float) -> None:
        for job_id in job_ids:
            task, left = self.jobs[job_id]
            if task is not None and left > 0:
                self.jobs[job_id] = (task, left - 1)
                if left == 1:
                    self._finish(task)

    def _finish(self, task: RunTask) -> None:
        run_dir = Path(task.run_dir)
        ok = task.run_id not in self.failing
        if ok:
            config = factories.experiment_result().model_copy(
                update={"experiment_id": task.run_id, "config_hash": RUN_HASH[task.run_id]}
            )
            save_result(config, run_dir / "result.json")
        write_outcome(
            run_dir,
            {"state": "ended", "host": "node-a", "gpus": "3", "ok": ok,
             "error": None if ok else "boom", "started_at": "2026-01-01T00:00:00+00:00",
             "finished_at": "2026-01-01T00:00:05+00:00"},
        )  # fmt: skip

    def release(self, job_id: str) -> None:
        pass

    def close(self) -> None:
        pass


RUN_HASH: dict[str, str] = {}
RUN_CYCLE: dict[str, int] = {}


def make_study(tmp_path: Path, **kw: object) -> StudyConfig:
    study = StudyConfig.model_validate(
        {
            "name": "d",
            "base": {"n_prompts": 2},
            "sweep": {"batch_size": [1, 2, 3]},
            "cycles": 2,
            "output_dir": str(tmp_path),
            "executor": {"kind": "slurm", "max_in_flight": 2, "poll_sec": 0.01},
            **kw,
        }
    )
    for run in expand(study):
        RUN_HASH[run.run_id] = run.config.config_hash()
        RUN_CYCLE[run.run_id] = run.cycle
    return study


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    fake = FakeBackend()
    monkeypatch.setattr(dispatch, "make_backend", lambda study, directory: fake)
    return fake


def test_order_in_flight_limit_and_cycle_barrier(tmp_path: Path, backend: FakeBackend) -> None:
    study = make_study(tmp_path)
    result = run_study(study)
    order = [r.run_id for r in expand(study)]
    submitted = [run_id for batch in backend.batches for run_id in batch]
    assert submitted == order  # study order kept
    assert all(len(b) <= 2 for b in backend.batches)
    cycle = {r.run_id: r.cycle for r in expand(study)}
    for batch, flying in zip(backend.batches, backend.unfinished_at_submit, strict=True):
        # a batch of cycle k is never submitted while a run of another cycle is in flight
        assert flying <= {cycle[batch[0]]} and len({cycle[r] for r in batch}) == 1
    assert result.completed == 6
    for record in result.runs:
        assert (record.executor, record.host, record.gpus, record.attempts) == (
            "slurm", "node-a", "3", 1,
        )  # fmt: skip
        assert record.job_id is not None and record.finished_at is not None
    assert result.execution is not None and result.execution.hosts == {"node-a": 6}


def test_without_barrier_cycles_overlap(tmp_path: Path, backend: FakeBackend) -> None:
    study = make_study(tmp_path, order="shuffled", seed=1)
    run_study(study)
    mixed = [
        flying - {RUN_CYCLE[batch[0]]}
        for batch, flying in zip(backend.batches, backend.unfinished_at_submit, strict=True)
    ]
    assert any(mixed)  # some run was submitted while one of another cycle was in flight


def test_resume_reattaches_live_jobs_and_submits_only_missing(
    tmp_path: Path, backend: FakeBackend
) -> None:
    study = make_study(tmp_path)
    runs = expand(study)
    run_study(study)  # a finished study ...
    directory = tmp_path / "d"
    manifest: StudyManifest = load_manifest(directory)
    records = {r.run_id: r for r in manifest.runs}
    # ... rewound: run 3 still running as job 77 (alive), run 4 as job 88 (lost), run 5 never ran
    for i, job in ((3, "77"), (4, "88")):
        records[runs[i].run_id].status, records[runs[i].run_id].job_id = "running", job
        for name in ("result.json", "outcome.json"):  # as a live or lost attempt leaves it
            (directory / "runs" / runs[i].run_id / name).unlink()
    records[runs[5].run_id].status, records[runs[5].run_id].job_id = "pending", None
    (directory / "runs" / runs[5].run_id / "result.json").unlink()
    save_model(manifest, directory / "manifest.json")

    backend.batches.clear()
    backend.unfinished_at_submit.clear()
    backend.alive["77"] = RunTask(runs[3].run_id, "{}", str(directory / "runs" / runs[3].run_id))
    result = run_study(study)
    assert backend.reattached == ["77"]
    assert [r for b in backend.batches for r in b] == [runs[4].run_id, runs[5].run_id]
    assert result.completed == 6
    final = {r.run_id: r for r in result.runs}
    assert final[runs[3].run_id].job_id == "77" and final[runs[3].run_id].attempts == 1
    assert final[runs[4].run_id].attempts == 2  # its job was lost: submitted again


def test_a_resume_on_another_executor_is_refused_while_jobs_are_attached(
    tmp_path: Path, backend: FakeBackend
) -> None:
    from llenergymeasure.errors import LlemError

    study = make_study(tmp_path)
    backend.polls = 10**9  # never ends: stop after the first submission
    def interrupted(job_ids: list[str], timeout_sec: float) -> None:
        raise KeyboardInterrupt

    backend.wait = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run_study(study)
    assert [r.status for r in load_manifest(tmp_path / "d").runs][:2] == ["submitted"] * 2
    local = study.model_copy(update={"executor": StudyConfig().executor})
    with pytest.raises(LlemError, match=r"2 run\(s\) of this study are still attached to slurm"):
        run_study(local)


def test_fail_fast_stops_submitting(tmp_path: Path, backend: FakeBackend) -> None:
    study = make_study(tmp_path, fail_fast=True)
    backend.failing = (expand(study)[0].run_id,)
    result = run_study(study)
    statuses = [r.status for r in result.runs]
    assert statuses[0] == "failed" and result.runs[0].error == "boom"
    assert statuses.count("pending") >= 3  # nothing submitted after the failure was seen


def _rewrite_keeping_size_and_mtime(path: Path, old: bytes, new: bytes) -> None:
    """Replace bytes in place so that the file's size and modification time stay the same."""
    assert len(old) == len(new)
    stat = path.stat()
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)


def test_resume_trusts_unchanged_results_and_revalidates_changed_ones(
    tmp_path: Path, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(tmp_path)
    runs = expand(study)
    first = run_study(study)
    directory = tmp_path / "d"
    digests = {r.run_id: r.result_sha256 for r in first.runs}
    for run in runs:  # the manifest records the SHA-256 of each result it validated
        data = (directory / "runs" / run.run_id / "result.json").read_bytes()
        assert digests[run.run_id] == hashlib.sha256(data).hexdigest()
    assert load_manifest(directory).runs[0].result_sha256 == digests[runs[0].run_id]

    full: list[str] = []  # results parsed and validated in full
    real = result_check.model_from_text
    monkeypatch.setattr(
        result_check, "model_from_text", lambda path, *a: full.append(Path(path).parent.name)
        or real(path, *a),
    )
    backend.batches.clear()
    run_study(study)  # nothing changed: every result trusted by its digest, none parsed
    assert full == [] and backend.batches == []

    # Run 1: the JSON corrupted (same size, same mtime). Run 2: its config hash changed to
    # another run's. Run 3: still a valid result of its config, another experiment id.
    one, two, three = (directory / "runs" / runs[i].run_id / "result.json" for i in (1, 2, 3))
    _rewrite_keeping_size_and_mtime(one, b'"experiment_id"', b'"experiment_id\'')
    other = RUN_HASH[runs[4].run_id].encode()
    _rewrite_keeping_size_and_mtime(two, RUN_HASH[runs[2].run_id].encode(), other)
    old_id = f'"experiment_id": "{runs[3].run_id}"'.encode()
    new_id = f'"experiment_id": "{"x" * len(runs[3].run_id)}"'.encode()
    _rewrite_keeping_size_and_mtime(three, old_id, new_id)
    result = run_study(study)
    # the three changed files validated in full, then the two new results of runs 1 and 2
    assert full == [runs[i].run_id for i in (1, 2, 3, 1, 2)]
    assert [r for b in backend.batches for r in b] == [runs[1].run_id, runs[2].run_id]
    final = {r.run_id: r for r in result.runs}
    assert result.completed == 6
    assert final[runs[1].run_id].attempts == final[runs[2].run_id].attempts == 2
    assert final[runs[3].run_id].attempts == 1  # re-validated, kept, its new digest recorded
    assert final[runs[3].run_id].result_sha256 == hashlib.sha256(three.read_bytes()).hexdigest()
    assert final[runs[3].run_id].result_sha256 != digests[runs[3].run_id]


def test_a_manifest_without_digests_is_validated_in_full_once(
    tmp_path: Path, backend: FakeBackend
) -> None:
    study = make_study(tmp_path)
    run_study(study)
    directory = tmp_path / "d"
    manifest = load_manifest(directory)
    for record in manifest.runs:  # as a study written before digests were recorded (1.2)
        record.result_sha256 = None
    save_model(manifest.model_copy(update={"schema_version": "1.2"}), directory / "manifest.json")
    backend.batches.clear()
    result = run_study(study)
    assert backend.batches == [] and result.completed == 6
    assert all(r.result_sha256 for r in load_manifest(directory).runs)


def test_a_digest_recorded_under_another_result_schema_is_validated_again(
    tmp_path: Path, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(tmp_path)
    run_study(study)
    directory = tmp_path / "d"
    manifest = load_manifest(directory)
    assert {r.result_schema_version for r in manifest.runs} == {result_check.SCHEMA_VERSION}
    stale = manifest.runs[0].run_id
    manifest.runs[0].result_schema_version = "2.0"  # validated by older code
    save_model(manifest, directory / "manifest.json")
    full: list[str] = []
    real = result_check.model_from_text
    monkeypatch.setattr(
        result_check, "model_from_text", lambda path, *a: full.append(Path(path).parent.name)
        or real(path, *a),
    )
    backend.batches.clear()
    result = run_study(study)
    assert full == [stale] and backend.batches == [] and result.completed == 6
    record = next(r for r in load_manifest(directory).runs if r.run_id == stale)
    assert record.result_schema_version == result_check.SCHEMA_VERSION
