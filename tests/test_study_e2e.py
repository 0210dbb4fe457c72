"""`llem study` end to end: dry run, SIGKILL midway and resume, failures, statistics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llenergymeasure import run_study
from llenergymeasure.config.study import StudyConfig
from llenergymeasure.domain.stats import confidence_interval
from llenergymeasure.domain.study import StudyManifest, StudyResult
from llenergymeasure.results.io import load_model, load_result
from tests.cli_helpers import ROOT, run_llem, source_env

TINY = (
    "base:\n"
    "  model: builtin:tiny-llama\n"
    "  n_prompts: 4\n"
    "  max_output_tokens: 4\n"
    "  baseline_sec: 0\n"
    "  warmup: {mode: fixed, n: 1}\n"
)
SWEEP = TINY + "sweep:\n  batch_size: [1, 2]\n  max_output_tokens: [2, 4]\ncycles: 3\nname: sweep\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def manifest(directory: Path) -> StudyManifest:
    return load_model(directory / "manifest.json", StudyManifest)


def test_dry_run_lists_twelve_runs(tmp_path: Path) -> None:
    proc = run_llem("study", str(write(tmp_path, SWEEP)), "--dry-run", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "12 runs" in proc.stdout
    assert proc.stdout.count("batch_size=") == 12
    assert not (tmp_path / "sweep").exists()  # nothing ran, nothing written


def test_sigkill_midway_then_resume_completes_without_rerunning(tmp_path: Path) -> None:
    study_file = write(tmp_path, SWEEP)
    directory = tmp_path / "sweep"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llenergymeasure.cli.main",
            "study",
            str(study_file),
            "-o",
            str(tmp_path),
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=source_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while True:  # wait until a few runs have completed, then kill everything at once
        assert parent.poll() is None and time.monotonic() < deadline
        if (directory / "manifest.json").exists():
            done = [r for r in manifest(directory).runs if r.status == "completed"]
            if len(done) >= 4:
                break
        time.sleep(0.2)
    os.killpg(parent.pid, signal.SIGKILL)
    parent.wait()
    before = {p.parent.name: p.read_bytes() for p in (directory / "runs").glob("*/result.json")}
    assert 4 <= len(before) < 12

    proc = run_llem("study", str(study_file), "-o", str(tmp_path), "-q")
    assert proc.returncode == 0, proc.stderr
    final = manifest(directory)
    assert [r.status for r in final.runs] == ["completed"] * 12
    results = {p.parent.name: p for p in (directory / "runs").glob("*/result.json")}
    assert len(results) == 12
    for run_id, content in before.items():  # completed before the kill: never run again
        assert results[run_id].read_bytes() == content
        assert next(r for r in final.runs if r.run_id == run_id).attempts == 1
    assert sum(r.attempts for r in final.runs) <= 12 + 1  # at most the killed run twice

    summary = load_model(directory / "study_summary.json", StudyResult)
    assert len(summary.summaries) == 4
    for s in summary.summaries:
        assert s.completed == 3 and s.failed == 0
        mine = [r for r in final.runs if r.config_index == s.config_index]
        values = [load_result(results[r.run_id]).energy_per_output_token_j for r in mine]
        low, high = confidence_interval(values)
        assert s.energy_per_output_token_j.mean == pytest.approx(sum(values) / 3)
        assert (s.energy_per_output_token_j.ci95_low, s.energy_per_output_token_j.ci95_high) == (
            pytest.approx(low), pytest.approx(high),
        )  # fmt: skip
    assert "J / output token" in proc.stdout or proc.stdout == ""


def test_failing_experiment_is_recorded_and_others_complete(tmp_path: Path) -> None:
    study = StudyConfig.model_validate(
        {
            "name": "with-failure",
            "base": {
                "model": "builtin:tiny-llama",
                "n_prompts": 2,
                "max_output_tokens": 2,
                "baseline_sec": 0,
                "warmup": {"mode": "fixed", "n": 0},
            },
            "experiments": [{}, {"device_map": "cuda:0"}, {"batch_size": 2}],
            "order": "sequential",
            "output_dir": str(tmp_path),
        }
    )
    result = run_study(study)
    statuses = [r.status for r in result.runs]
    assert statuses == ["completed", "failed", "completed"]
    failed = result.runs[1]
    assert failed.error is not None and "needs a CUDA GPU" in failed.error
    assert result.summaries[1].completed == 0 and result.summaries[1].failed == 1
    assert result.summaries[0].completed == 1
    assert not (tmp_path / "with-failure" / "runs" / failed.run_id / "result.json").exists()


def test_timeout_is_recorded(tmp_path: Path) -> None:
    study = StudyConfig.model_validate(
        {
            "name": "timeout",
            "base": {
                "model": "builtin:tiny-llama",
                "baseline_sec": 0,
                "warmup": {"mode": "fixed", "n": 1000},
            },
            "timeout_sec": 3,
            "output_dir": str(tmp_path),
        }
    )
    result = run_study(study)
    assert result.runs[0].status == "failed"
    assert result.runs[0].error == "timed out after 3 s"
