"""Study executors without running experiments: config, sbatch rendering, dry run, manifest
journal, and the execution summary (concurrency, hosts, runs sharing a host)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure.config.executor import SlurmExecutorConfig
from llenergymeasure.config.study import StudyConfig, expand
from llenergymeasure.domain.study import RunRecord, StudyManifest
from llenergymeasure.results.io import load_model
from llenergymeasure.study.executors.plan import submission_plan
from llenergymeasure.study.executors.submitit_backend import render_sbatch, sbatch_parameters
from llenergymeasure.study.manifest_store import JOURNAL_FILENAME, ManifestStore, load_manifest
from llenergymeasure.study.summary import execution_summary
from tests.cli_helpers import run_llem

SLURM = {
    "kind": "slurm",
    "partition": "gpu",
    "account": "proj42",
    "time_limit_min": 90,
    "gpus_per_run": 2,
    "cpus_per_run": 16,
    "mem_gb": 128,
    "extra_sbatch": {"constraint": "h100", "qos": "high"},
    "max_in_flight": 4,
}
STUDY_YAML = (
    "name: cl\n"
    "base: {model: builtin:tiny-llama, n_prompts: 2}\n"
    "sweep: {batch_size: [1, 2], max_output_tokens: [2, 4]}\n"
    "cycles: 2\n"
)


def test_sbatch_parameters_are_data_without_slurm(tmp_path: Path) -> None:
    config = SlurmExecutorConfig.model_validate(SLURM)
    assert sbatch_parameters(config, "llem-cl") == {
        "job_name": "llem-cl",
        "time": 90,
        "nodes": 1,
        "ntasks_per_node": 1,
        "gpus_per_node": 2,
        "array_parallelism": 4,
        "partition": "gpu",
        "account": "proj42",
        "cpus_per_task": 16,
        "mem": "128GB",
        "additional_parameters": {"constraint": "h100", "qos": "high"},
    }
    lines = render_sbatch(config, "llem-cl", tmp_path / "%j")
    for expected in (
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj42",
        "#SBATCH --time=90",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --cpus-per-task=16",
        "#SBATCH --mem=128GB",
        "#SBATCH --constraint=h100",
        "#SBATCH --qos=high",
        "#SBATCH --job-name=llem-cl",
    ):
        assert expected in lines
    assert not any("--array" in line for line in lines)
    array = render_sbatch(config, "llem-cl", tmp_path / "%j", array_size=4)
    assert "#SBATCH --array=0-3%4" in array


def test_dry_run_shows_executor_and_sbatch_lines(tmp_path: Path) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(
        STUDY_YAML + "executor:\n" + "".join(f"  {k}: {v}\n" for k, v in SLURM.items())
    )
    proc = run_llem("study", str(study), "--dry-run", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "8 runs" in out
    assert "executor slurm: Slurm through submitit: one job per run, at most 4" in out
    assert "8 runs: 8 to submit, 0 to reattach" in out
    assert "#SBATCH --partition=gpu" in out and "#SBATCH --qos=high" in out
    assert "cycle barrier" in out
    assert not (tmp_path / "cl").exists()
    ray = run_llem("study", str(study), "--dry-run", "-o", str(tmp_path), "--executor", "ray")
    assert ray.returncode == 0, ray.stderr
    assert "executor ray: a local cluster on 127.0.0.1; one actor per run with num_gpus=1" in (
        ray.stdout
    )


def test_bad_executor_is_one_line_exit_2(tmp_path: Path) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(STUDY_YAML + "executor: {kind: slurm, partiton: gpu}\n")
    proc = run_llem("study", str(study), "--dry-run")
    assert proc.returncode == 2
    assert "unknown field 'executor.partiton'; did you mean 'partition'?" in proc.stderr
    assert "Traceback" not in proc.stderr
    study.write_text(STUDY_YAML + "executor: kubernetes\n")
    proc = run_llem("study", str(study), "--dry-run")
    assert proc.returncode == 2
    assert "executor.kind: must be one of local, slurm, ray (got 'kubernetes')" in proc.stderr
    study.write_text(STUDY_YAML)
    proc = run_llem("study", str(study), "--dry-run", "--executor", "k8s")
    assert proc.returncode == 2 and "--executor: must be one of local, slurm, ray" in proc.stderr


def test_executor_is_not_part_of_the_study_identity() -> None:
    base = {"sweep": {"batch_size": [1, 2]}}
    local = StudyConfig.model_validate(base)
    slurm = StudyConfig.model_validate({**base, "executor": SLURM})
    assert local.study_hash() == slurm.study_hash()
    assert [r.run_id for r in expand(local)] == [r.run_id for r in expand(slurm)]
    assert StudyConfig.model_validate({"executor": "ray"}).executor.kind == "ray"


def _manifest(n: int) -> StudyManifest:
    return StudyManifest(
        name="m",
        study_hash="h",
        study_config={},
        created_at=datetime.now(timezone.utc),
        runs=[
            RunRecord(run_id=f"r{i}", config_index=i, cycle=0, config_hash="x") for i in range(n)
        ],
    )


def test_journal_replays_over_snapshot_and_ignores_a_torn_line(tmp_path: Path) -> None:
    assert ManifestStore(tmp_path, _manifest(20)).compact_every == 1  # small: always current
    store = ManifestStore(tmp_path, _manifest(100))
    assert store.compact_every == 100  # the journal never grows longer than the snapshot
    for i in range(20):
        record = store.records[f"r{i}"]
        record.status, record.job_id, record.host = "submitted", f"job{i}", "node7"
        store.update(record)
    batch = [store.records[f"r{i}"] for i in range(20, 99)]
    for i, record in enumerate(batch, 20):
        record.status, record.job_id, record.host = "submitted", f"job{i}", "node7"
    store.update(*batch)  # one journal write of 79 lines
    assert len((tmp_path / JOURNAL_FILENAME).read_text().splitlines()) == 99
    assert load_model(tmp_path / "manifest.json", StudyManifest).runs[0].job_id is None
    store.records["r99"].job_id = "job99"
    store.update(store.records["r99"])  # the 100th change: snapshot, journal emptied
    assert (tmp_path / JOURNAL_FILENAME).read_text() == ""
    snapshot = load_model(tmp_path / "manifest.json", StudyManifest)
    assert [r.job_id for r in snapshot.runs] == [f"job{i}" for i in range(100)]
    for i in (0, 1):
        store.records[f"r{i}"].status = "running"
        store.update(store.records[f"r{i}"])
    assert len((tmp_path / JOURNAL_FILENAME).read_text().splitlines()) == 2
    assert load_model(tmp_path / "manifest.json", StudyManifest).runs[1].status == "submitted"
    with open(tmp_path / JOURNAL_FILENAME, "a") as journal:
        journal.write('{"run_id": "r2", "config_index": 2, "cycle": 0, "config_hash": "x", "sta')
    loaded = load_manifest(tmp_path)  # a crash mid-line: the torn record is not applied
    assert [r.status for r in loaded.runs[:3]] == ["running", "running", "submitted"]
    assert loaded.runs[2].job_id == "job2"
    store.close()
    assert not (tmp_path / JOURNAL_FILENAME).exists()
    assert load_manifest(tmp_path).runs[1].status == "running"


T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _timed(i: int, host: str, start: int, end: int) -> RunRecord:
    return RunRecord(
        run_id=f"r{i}", config_index=0, cycle=0, config_hash="x", status="completed", host=host,
        started_at=T0 + timedelta(seconds=start), finished_at=T0 + timedelta(seconds=end),
    )  # fmt: skip


def test_execution_summary_counts_concurrency_and_flags_shared_hosts() -> None:
    records = [
        _timed(0, "a", 0, 10),
        _timed(1, "b", 1, 5),  # concurrent with r0 but on another host: not flagged
        _timed(2, "a", 10, 20),  # starts as r0 ends: no overlap
        _timed(3, "a", 12, 14),  # inside r2 on host a: both flagged
    ]
    summary = execution_summary("slurm", records)
    assert summary.max_concurrent == 2
    assert summary.hosts == {"a": 3, "b": 1}
    assert summary.shared_host_runs == ["r2", "r3"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ab"), st.integers(0, 50), st.integers(1, 20)),
        min_size=1,
        max_size=12,
    )
)
def test_execution_summary_matches_brute_force(spans: list[tuple[str, int, int]]) -> None:
    records = [_timed(i, h, s, s + d) for i, (h, s, d) in enumerate(spans)]
    summary = execution_summary("ray", records)

    def overlap(x: RunRecord, y: RunRecord) -> bool:
        return x.started_at < y.finished_at and y.started_at < x.finished_at  # type: ignore[operator]

    shared = [
        x.run_id
        for x in records
        if any(overlap(x, y) and x.host == y.host for y in records if y is not x)
    ]
    assert summary.shared_host_runs == shared
    instants = [r.started_at for r in records]
    assert summary.max_concurrent == max(
        sum(r.started_at <= t < r.finished_at for r in records) for t in instants
    )


def test_plan_of_a_fresh_study_submits_everything(tmp_path: Path) -> None:
    study = StudyConfig.model_validate(
        {"sweep": {"batch_size": [1, 2]}, "cycles": 2, "output_dir": str(tmp_path)}
    )
    plan = submission_plan(study)
    assert [r.run_id for r in plan.submit] == [r.run_id for r in expand(study)]
    assert plan.done == [] and plan.reattach == {}
