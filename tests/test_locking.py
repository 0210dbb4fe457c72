"""One writer per directory: a second writer is refused at once, naming the holder; a
SIGKILLed holder leaves no stale lock; other studies running on the machine are warned about."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llenergymeasure.domain.study import StudyManifest
from llenergymeasure.locking import (
    HELD_ENV,
    LOCK_FILENAME,
    REGISTRY_ENV,
    DirectoryBusyError,
    DirectoryLock,
    active_holders,
    registry_dir,
)
from llenergymeasure.results.io import load_model, load_result
from tests.cli_helpers import ROOT, run_llem, source_env

HOLD = (
    "import sys, time\n"
    "from llenergymeasure.locking import DirectoryLock\n"
    "lock = DirectoryLock(sys.argv[1], 'study')\n"
    "print(lock.acquire(), flush=True)\n"
    "time.sleep(300)\n"
)


@pytest.fixture(autouse=True)
def _own_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test lists its locks in its own registry (the real one may hold other runs)."""
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "registry"))
    monkeypatch.delenv(HELD_ENV, raising=False)


def _holder(directory: Path, **env: str) -> subprocess.Popen[str]:
    """A separate process that takes the lock on ``directory`` and keeps it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
        env=source_env(**env),
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # printed once the lock is held
    return proc


def test_second_writer_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    directory = tmp_path / "study"
    holder = _holder(directory, LLEM_LOCK_REGISTRY=os.environ[REGISTRY_ENV])
    try:
        start = time.monotonic()
        with pytest.raises(DirectoryBusyError) as refused:
            DirectoryLock(directory, "study").acquire()
        assert time.monotonic() - start < 1.0  # non-blocking: no waiting for the holder
        message = str(refused.value)
        assert f"pid {holder.pid} on {socket.gethostname()}, started 20" in message
        assert str(directory) in message and "\n" not in message
        assert holder.poll() is None  # the holder is untouched
    finally:
        holder.kill()
        holder.wait()


def test_sigkilled_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    directory = tmp_path / "study"
    holder = _holder(directory, LLEM_LOCK_REGISTRY=os.environ[REGISTRY_ENV])
    assert [h.pid for h in active_holders()] == [holder.pid]
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (directory / LOCK_FILENAME).exists()  # the file stays; the kernel dropped the lock
    lock = DirectoryLock(directory, "study")
    assert lock.acquire() == []  # no warning about the dead holder either
    try:
        assert json.loads((directory / LOCK_FILENAME).read_text())["pid"] == os.getpid()
        assert [h.pid for h in active_holders()] == [os.getpid()]  # dead entry removed
    finally:
        lock.release()
    assert active_holders() == []
    assert not list(registry_dir().glob("*.lock"))


def test_another_directory_in_use_is_warned_about_by_name(tmp_path: Path) -> None:
    other = tmp_path / "other-study"
    holder = _holder(other, LLEM_LOCK_REGISTRY=os.environ[REGISTRY_ENV])
    try:
        with DirectoryLock(tmp_path / "mine", "study") as lock:
            assert len(lock.warnings) == 1
            assert str(other.resolve()) in lock.warnings[0]
            assert f"pid {holder.pid}" in lock.warnings[0]
            # A process started by this holder (a study's experiment) neither warns about
            # its parent's directory nor lists itself.
            assert os.environ[HELD_ENV] == str((tmp_path / "mine").resolve())
            with DirectoryLock(tmp_path / "mine" / "runs" / "r1", "experiment") as child:
                assert len(child.warnings) == 1 and str(other.resolve()) in child.warnings[0]
                assert len(active_holders()) == 2
        assert HELD_ENV not in os.environ
    finally:
        holder.kill()
        holder.wait()


def test_lock_is_reentrant_across_releases(tmp_path: Path) -> None:
    for _ in range(3):
        with DirectoryLock(tmp_path / "d"):
            pass
    assert active_holders() == []


# ---- the real commands ------------------------------------------------------------------------

STUDY = (
    "name: locked\n"
    "base:\n"
    "  model: builtin:tiny-llama\n"
    "  n_prompts: 2\n"
    "  batch_size: 1\n"
    "  max_output_tokens: 2\n"
    "  baseline_sec: 0\n"
    "  energy: estimate\n"
    "  warmup: {mode: fixed, n: 0}\n"
)


LLEM = [sys.executable, "-m", "llenergymeasure.cli.main"]


def _start_study(study_file: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*LLEM, "study", str(study_file), "-o", str(out), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=source_env(),
        cwd=ROOT,
        start_new_session=True,
    )


def _wait_for_lock(directory: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None and time.monotonic() < deadline
        try:
            if json.loads((directory / LOCK_FILENAME).read_text())["pid"] == proc.pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)


@pytest.mark.slow
def test_two_studies_on_one_directory_second_refused_first_unaffected(tmp_path: Path) -> None:
    study_file = tmp_path / "study.yaml"
    study_file.write_text(STUDY)
    directory = tmp_path / "out" / "locked"
    first = _start_study(study_file, tmp_path / "out")
    _wait_for_lock(directory, first)
    second = subprocess.Popen(
        [*LLEM, "study", str(study_file), "-o", str(tmp_path / "out"), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=source_env(),
        cwd=ROOT,
    )
    started = time.monotonic()
    _, err = second.communicate(timeout=60)
    refused_after_sec = time.monotonic() - started
    assert second.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert f"is in use by another llem study (pid {first.pid} on {socket.gethostname()}" in err
    # Interpreter start-up included; the refusal itself does not wait (see the unit test).
    assert refused_after_sec < 30
    assert first.poll() is None  # still running, undisturbed

    _, err_first = first.communicate(timeout=900)
    assert first.returncode == 0, err_first
    manifest = load_model(directory / "manifest.json", StudyManifest)
    assert [(r.status, r.attempts) for r in manifest.runs] == [("completed", 1)]
    result = load_result(directory / "runs" / manifest.runs[0].run_id / "result.json")
    assert result.inference.num_requests == 2
    assert not any("another llem" in w for w in result.warnings)


@pytest.mark.slow
def test_sigkilled_study_leaves_no_stale_lock_and_resumes(tmp_path: Path) -> None:
    study_file = tmp_path / "study.yaml"
    study_file.write_text(STUDY)
    directory = tmp_path / "out" / "locked"
    first = _start_study(study_file, tmp_path / "out")
    _wait_for_lock(directory, first)
    deadline = time.monotonic() + 120
    while not list((directory / "runs").glob("*/child.log")):  # the experiment has started
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the study and its experiment process
    first.wait()
    proc = run_llem("study", "--resume", str(directory), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "in use" not in proc.stderr
    manifest = load_model(directory / "manifest.json", StudyManifest)
    assert [r.status for r in manifest.runs] == ["completed"]


def test_aggregate_refuses_a_directory_being_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llenergymeasure.cli.main import main

    directory = tmp_path / "exp"
    holder = _holder(directory, LLEM_LOCK_REGISTRY=os.environ[REGISTRY_ENV])
    try:
        with pytest.raises(SystemExit) as exited:
            main(["aggregate", str(directory)])
        assert exited.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(
            f"error: {directory} is in use by another llem study (pid {holder.pid}"
        )
    finally:
        holder.kill()
        holder.wait()
