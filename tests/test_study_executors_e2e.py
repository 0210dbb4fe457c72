"""Studies on submitit's local executor and on a local Ray cluster, against the local executor.

The same 2 x 2 x 2 study (batch size x output length x cycles) runs three ways; each ends with
8 results and the same per-configuration summary (configurations, counts, token counts) as
the local executor. submitit's jobs are real separate processes: the parent is SIGKILLed
midway and a new one reattaches to the jobs still running and submits nothing twice. Ray runs
inside a network namespace that has only the loopback interface, so nothing can leave it.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llenergymeasure.config.study import StudyConfig
from llenergymeasure.domain.study import StudyResult
from llenergymeasure.results.io import load_model, load_result
from llenergymeasure.study.executors.task import read_outcome
from llenergymeasure.study.manifest_store import load_manifest
from llenergymeasure.study.runner import run_study
from tests.cli_helpers import ROOT, run_llem, source_env

pytestmark = pytest.mark.slow

BASE = {
    "model": "builtin:tiny-llama",
    "n_prompts": 2,
    "baseline_sec": 0,
    "warmup": {"mode": "fixed", "n": 0},
}
SWEEP = {"batch_size": [1, 2], "max_output_tokens": [2, 3]}


def study_yaml(tmp_path: Path, name: str, executor: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        "base: {model: builtin:tiny-llama, n_prompts: 2, baseline_sec: 0,"
        " warmup: {mode: fixed, n: 0}}\n"
        "sweep: {batch_size: [1, 2], max_output_tokens: [2, 3]}\n"
        f"cycles: 2\nexecutor: {executor}\n"
    )
    return path


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[StudyResult, float]:
    out = tmp_path_factory.mktemp("local")
    study = StudyConfig.model_validate(
        {"name": "ref", "base": BASE, "sweep": SWEEP, "cycles": 2, "output_dir": str(out)}
    )
    start = time.monotonic()
    result = run_study(study)
    return result, time.monotonic() - start


def assert_same_study(result: StudyResult, reference: StudyResult) -> None:
    def shape(r: StudyResult) -> list[tuple]:
        return [
            (s.config_index, s.config_hash, s.overrides, s.completed, s.failed)
            for s in r.summaries
        ]

    assert shape(result) == shape(reference)
    assert [s.completed for s in result.summaries] == [2, 2, 2, 2]
    for summary in result.summaries:
        assert summary.energy_per_output_token_j.n == 2
        assert summary.energy_per_output_token_j.mean > 0
        assert summary.tokens_per_second.mean > 0

    def tokens(r: StudyResult) -> dict[str, tuple[int, int, str]]:
        found = {}
        for record in r.runs:
            res = load_result(Path(r.directory) / "runs" / record.run_id / "result.json")
            found[record.run_id] = (
                res.inference.input_tokens, res.inference.output_tokens, res.config_hash
            )  # fmt: skip
        return found

    assert tokens(result) == tokens(reference)  # same runs, same prompts, same token counts


def job_folders(directory: Path) -> list[Path]:
    return [p for p in (directory / "jobs").iterdir() if p.is_dir() and p.name.isdigit()]


def test_submitit_local_kill_parent_then_resume(
    tmp_path: Path, local_reference: tuple[StudyResult, float]
) -> None:
    executor = "{kind: slurm, cluster: local, gpus_per_run: 0, max_in_flight: 2, poll_sec: 0.2}"
    study_file = study_yaml(tmp_path, "sub", executor)
    directory = tmp_path / "sub"
    command = [sys.executable, "-m", "llenergymeasure.cli.main", "study", str(study_file)]
    start = time.monotonic()
    parent = subprocess.Popen(
        [*command, "-o", str(tmp_path), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=source_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 900
    while True:  # some runs done, some in flight: kill the parent alone (jobs live on)
        assert parent.poll() is None and time.monotonic() < deadline
        if (directory / "manifest.json").exists():
            runs = load_manifest(directory).runs
            done = [r for r in runs if r.status == "completed"]
            flying = {r.run_id: r.job_id for r in runs if r.status in ("submitted", "running")}
            if len(done) >= 2 and flying:
                break
        time.sleep(0.1)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    before = {p.parent.name: p.read_bytes() for p in directory.glob("runs/*/result.json")}

    proc = run_llem("study", str(study_file), "-o", str(tmp_path), "-q", timeout=900)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    final = load_manifest(directory)
    assert [r.status for r in final.runs] == ["completed"] * 8
    assert len(job_folders(directory)) == 8  # every run submitted exactly once
    assert all(r.attempts == 1 for r in final.runs)
    records = {r.run_id: r for r in final.runs}
    for run_id, job_id in flying.items():  # in flight at the kill: reattached, same job
        assert records[run_id].job_id == job_id
    for run_id, content in before.items():
        assert (directory / "runs" / run_id / "result.json").read_bytes() == content
    for record in final.runs:
        assert record.executor == "slurm" and record.host == socket.gethostname()
        assert record.job_id and record.job_id.isdigit()
        assert record.started_at and record.finished_at and record.submitted_at
        assert record.submitted_at <= record.started_at < record.finished_at
    summary = load_model(directory / "study_summary.json", StudyResult)
    reference, reference_sec = local_reference
    assert_same_study(summary, reference)
    assert summary.execution is not None and summary.execution.executor == "slurm"
    assert 1 <= summary.execution.max_concurrent <= 2
    print(f"\nsubmitit local (kill + resume): {elapsed:.1f} s; local: {reference_sec:.1f} s")


def loopback_only_namespace() -> list[str] | None:
    """A command prefix that runs in a new network namespace with only ``lo`` (up), or None."""
    prefix = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    probe = "import psutil; print(sorted(psutil.net_if_addrs()))"
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "-c", probe], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if proc.returncode == 0 and proc.stdout.strip() == "['lo']" else None


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_local_cluster_on_loopback_with_fake_gpus(
    tmp_path: Path, local_reference: tuple[StudyResult, float]
) -> None:
    prefix = loopback_only_namespace()
    if prefix is None:
        pytest.skip("cannot make a loopback-only network namespace (unshare -n) here")
    executor = (
        "{kind: ray, local_num_gpus: 2, local_num_cpus: 2, gpus_per_run: 1, max_in_flight: 2}"
    )
    study_file = study_yaml(tmp_path, "ray", executor)
    command = [sys.executable, "-m", "llenergymeasure.cli.main", "study", str(study_file)]
    start = time.monotonic()
    proc = subprocess.run(
        [*prefix, *command, "-o", str(tmp_path), "-q"],
        capture_output=True,
        text=True,
        env=source_env(),
        cwd=ROOT,
        timeout=900,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    directory = tmp_path / "ray"
    summary = load_model(directory / "study_summary.json", StudyResult)
    reference, reference_sec = local_reference
    assert_same_study(summary, reference)
    for record in summary.runs:
        outcome = read_outcome(directory / "runs" / record.run_id)
        assert outcome is not None
        assert record.gpus in ("0", "1")  # the task's CUDA_VISIBLE_DEVICES ...
        assert outcome["ray_gpu_ids"] == [record.gpus]  # ... is the GPU Ray granted it
        assert record.executor == "ray" and record.job_id.startswith(record.run_id)
    for a in summary.runs:  # two runs at the same time never share a fake GPU
        for b in summary.runs:
            if a is not b and a.started_at < b.finished_at and b.started_at < a.finished_at:  # type: ignore[operator]
                assert a.gpus != b.gpus
    assert summary.execution is not None and summary.execution.hosts == {
        socket.gethostname(): 8
    }
    print(f"\nray local cluster: {elapsed:.1f} s; local executor: {reference_sec:.1f} s")


RAY_REATTACH_SCRIPT = r"""
set -e
export RAY_AUTH_MODE=disabled RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1,localhost
ray start --head --node-ip-address=127.0.0.1 --port=6391 --num-gpus=2 --num-cpus=2 \
    --include-dashboard=false --disable-usage-stats > ray_start.log 2>&1
trap 'ray stop --force > /dev/null 2>&1' EXIT
"$PYTHON" -m llenergymeasure.cli.main study study.yaml -o out -q > first.log 2>&1 &
parent=$!
for i in $(seq 1 600); do  # until both runs are in flight, then SIGKILL the parent alone
  if grep -qE '"status": ?"running"' out/re/manifest.json 2>/dev/null; then break; fi
  sleep 0.5
done
kill -9 $parent
"$PYTHON" -c "
from pathlib import Path
from llenergymeasure.study.manifest_store import load_manifest
runs = load_manifest(Path('out/re')).runs
print('FLYING', sum(r.status in ('submitted', 'running') for r in runs))
print('JOBS', sorted(r.job_id or '-' for r in runs))
"
"$PYTHON" -m llenergymeasure.cli.main study study.yaml -o out -q > second.log 2>&1
"""


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_cluster_parent_killed_then_resume_reattaches_by_actor_name(tmp_path: Path) -> None:
    prefix = loopback_only_namespace()
    if prefix is None:
        pytest.skip("cannot make a loopback-only network namespace (unshare -n) here")
    (tmp_path / "study.yaml").write_text(
        "name: re\n"
        "base: {model: builtin:tiny-llama, n_prompts: 2, baseline_sec: 0,"
        " warmup: {mode: fixed, n: 0}}\n"
        "sweep: {batch_size: [1, 2]}\n"
        'executor: {kind: ray, address: "127.0.0.1:6391", gpus_per_run: 1, max_in_flight: 2,'
        " poll_sec: 0.5}\n"
    )
    script = tmp_path / "run.sh"
    script.write_text(RAY_REATTACH_SCRIPT)
    bindir = str(Path(sys.executable).parent)  # the `ray` command of this environment
    env = source_env(PYTHON=sys.executable, PATH=f"{bindir}:{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [*prefix, "sh", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    logs = "".join((tmp_path / n).read_text() for n in ("second.log",) if (tmp_path / n).exists())
    assert proc.returncode == 0, proc.stderr[-2000:] + logs[-2000:]
    jobs_at_kill = proc.stdout.split("JOBS", 1)[1].strip()
    assert int(proc.stdout.split("FLYING", 1)[1].split()[0]) >= 1  # killed with runs in flight
    final = load_manifest(tmp_path / "out" / "re")
    assert [r.status for r in final.runs] == ["completed", "completed"]
    assert all(r.attempts == 1 for r in final.runs)  # reattached, not submitted again
    assert str(sorted(r.job_id for r in final.runs)) == jobs_at_kill
    assert sorted(r.gpus for r in final.runs) == ["0", "1"]
