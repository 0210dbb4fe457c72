"""What a study would submit, for ``llem study --dry-run``: executor, runs, sbatch lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llenergymeasure.config.study import PlannedRun, StudyConfig, expand


@dataclass
class SubmissionPlan:
    """Runs by what a (re)started study would do with them."""

    executor: str
    done: list[str] = field(default_factory=list)
    reattach: dict[str, str] = field(default_factory=dict)  # run id -> job id
    submit: list[PlannedRun] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    sbatch: list[str] = field(default_factory=list)


def submission_plan(study: StudyConfig) -> SubmissionPlan:
    """Which runs already have a result, which live jobs would be reattached, what is missing."""
    from llenergymeasure.study.manifest_store import MANIFEST_FILENAME, load_manifest
    from llenergymeasure.study.result_check import check_result
    from llenergymeasure.study.runner import RUNS_DIRNAME, study_directory

    directory = study_directory(study)
    executor = study.executor
    plan = SubmissionPlan(executor.kind, settings=executor.model_dump(exclude={"kind"}))
    records = {}
    if (directory / MANIFEST_FILENAME).exists():
        manifest = load_manifest(directory)
        if manifest.study_hash == study.study_hash():
            records = {r.run_id: r for r in manifest.runs}
    for run in expand(study):
        record = records.get(run.run_id)
        if check_result(run, directory / RUNS_DIRNAME / run.run_id, record):  # not saved
            plan.done.append(run.run_id)
        elif (
            record is not None
            and record.status in ("submitted", "running")
            and record.job_id
            and record.executor == executor.kind != "local"
        ):
            plan.reattach[run.run_id] = record.job_id
        else:
            plan.submit.append(run)
    if executor.kind == "slurm":
        from llenergymeasure.study.executors.submitit_backend import (
            JOBS_DIRNAME,
            render_sbatch,
            sbatch_parameters,
        )

        name = f"llem-{study.name}"
        plan.settings["sbatch_parameters"] = sbatch_parameters(executor, name)
        array = min(executor.max_in_flight, len(plan.submit)) if executor.array else None
        try:
            plan.sbatch = render_sbatch(
                executor, name, directory / JOBS_DIRNAME / "%j", array_size=array or None
            )
        except ImportError:
            plan.sbatch = []
    return plan


def describe_plan(plan: SubmissionPlan, study: StudyConfig) -> list[str]:
    """Lines for the terminal: the executor, the counts, and the exact submission settings."""
    s = plan.settings
    total = len(plan.done) + len(plan.reattach) + len(plan.submit)
    head = f"executor {plan.executor}: "
    if plan.executor == "local":
        lines = [head + "one run at a time on this machine, each in a fresh subprocess"]
    elif plan.executor == "slurm":
        shape = "one job array per wave" if s["array"] else "one job per run"
        where = "" if s["cluster"] == "slurm" else f" (submitit's {s['cluster']} stand-in)"
        lines = [
            head + f"Slurm through submitit{where}: {shape}, at most {s['max_in_flight']} "
            f"in flight, {s['gpus_per_run']} GPU(s) per run"
        ]
    else:
        where = f"cluster at {s['address']}" if s["address"] else "a local cluster on 127.0.0.1"
        lines = [
            head + f"{where}; one actor per run with num_gpus={s['gpus_per_run']:g}, "
            f"num_cpus={s['cpus_per_run']:g}, at most {s['max_in_flight']} in flight"
        ]
    if plan.executor != "local" and study.order == "interleaved" and s.get("cycle_barrier"):
        lines.append("cycle barrier: cycle k+1 starts after every run of cycle k has ended")
    lines.append(
        f"{total} runs: {len(plan.submit)} to submit, {len(plan.reattach)} to reattach "
        f"(jobs still queued or running), {len(plan.done)} already completed"
    )
    if plan.sbatch:
        lines.append("sbatch parameters of each job:")
        lines.extend(f"  {line}" for line in plan.sbatch)
    elif "sbatch_parameters" in s:
        lines.append(f"sbatch parameters (submitit names): {s['sbatch_parameters']}")
    return lines
