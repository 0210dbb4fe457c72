"""`llem study`: run, dry-run or resume a study, with a bar for the study and one for the run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from llenergymeasure.cli.console import (
    console,
    error_console,
    exit_interrupted,
    listing,
    warn,
)
from llenergymeasure.cli.run_cmd import RichReporter
from llenergymeasure.signals import INTERRUPTS

if TYPE_CHECKING:
    from rich.table import Table

    from llenergymeasure.config.study import PlannedRun, StudyConfig
    from llenergymeasure.domain.study import MetricSummary, RunRecord, StudyResult


class RichStudyReporter(RichReporter):
    """The study's bar plus the current experiment's stages, redrawn only on events."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self._study_task = self._progress.add_task(
            "study", total=total, total_text=str(total), info=""
        )

    def run_started(self, run: PlannedRun, position: int, total: int) -> None:
        from llenergymeasure.config.study import describe_overrides

        self._progress.update(
            self._study_task, info=f"{run.run_id} ({describe_overrides(run.overrides)})"
        )
        self._progress.refresh()

    def run_finished(self, record: RunRecord) -> None:
        self._progress.update(self._study_task, advance=1)
        if record.status == "failed":
            from rich.text import Text

            self._progress.console.print(
                Text.assemble(("failed", "red"), f" {record.run_id}: {record.error}"),
                soft_wrap=True,
            )
        self.clear_stages()
        self._progress.refresh()


class QuietStudyReporter:
    """No bars; only messages (warnings about other studies running) are printed."""

    def stage(self, name: str, total: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1.0, info: str | None = None) -> None:
        pass

    def message(self, text: str) -> None:
        error_console.print(text, highlight=False, soft_wrap=True)

    def run_started(self, run: PlannedRun, position: int, total: int) -> None:
        pass

    def run_finished(self, record: RunRecord) -> None:
        pass


def interrupted_study(directory: Path, total: int) -> str:
    """What an interrupted study's directory really holds: valid results out of the planned."""
    from llenergymeasure.results.layout import RESULT_FILENAME
    from llenergymeasure.study.runner import RUNS_DIRNAME

    runs = directory / RUNS_DIRNAME
    if not directory.exists():
        return f"{directory} was not created"
    done = sum(1 for p in runs.glob(f"*/{RESULT_FILENAME}") if p.is_file()) if runs.is_dir() else 0
    return f"{directory} holds {done} of {total} results ({listing(directory)})"


def plan_table(study: StudyConfig) -> Table:
    """The expanded runs: each one's difference from the base and its config hash."""
    from llenergymeasure.config.study import describe_overrides, expand

    runs = expand(study)
    from rich.table import Table

    table = Table(title=f"Study {study.name}: {len(runs)} runs ({study.order} order)")
    for column in ("#", "run", "difference from base", "cycle", "config hash"):
        table.add_column(column)
    for i, run in enumerate(runs, start=1):
        table.add_row(
            str(i),
            run.run_id,
            describe_overrides(run.overrides),
            str(run.cycle + 1),
            run.config_hash,
        )
    return table


def summary_table(result: StudyResult) -> Table:
    """Per-configuration statistics across cycles: mean ± std and the 95% interval."""
    from rich.table import Table

    from llenergymeasure.config.study import describe_overrides
    from llenergymeasure.results.views import NO_SPREAD, spread_texts

    table = Table(
        title=f"Study {result.name}: {result.completed} completed, {result.failed} failed",
        caption=f"{result.directory}",
    )
    for column in ("configuration", "n", "J / output token", "tokens/s", "TTFT p50 (ms)"):
        table.add_column(column)

    def cell(m: MetricSummary) -> str:
        mean, std, interval, _ = spread_texts(m)
        if m.n < 2:
            return mean if m.n == 0 else f"{mean} (± {NO_SPREAD})"
        return f"{mean} ± {std} {interval}"

    with_quality = any(s.quality is not None for s in result.summaries)
    if with_quality:
        for column in ("ppl degradation [95%]", "mean KL (nats) [95%]", "top-1 [95%]"):
            table.add_column(column)
    with_tasks = any(s.task_accuracy is not None for s in result.summaries)
    if with_tasks:
        table.add_column("task accuracy (lm-eval)")
    execution = result.execution
    if execution is not None:
        hosts = ", ".join(f"{h} ({n})" for h, n in execution.hosts.items()) or "-"
        caption = (
            f"{result.directory}\nexecutor {execution.executor}: at most "
            f"{execution.max_concurrent} run(s) at once; hosts: {hosts}"
        )
        if execution.shared_host_runs:
            caption += (
                f"\n{len(execution.shared_host_runs)} run(s) overlapped another on the same "
                "host: their host CPU/RAM energy includes the other's load"
            )
        table.caption = caption
    for s in result.summaries:
        table.add_row(
            describe_overrides(s.overrides),
            f"{s.completed}" + (f" ({s.failed} failed)" if s.failed else ""),
            cell(s.energy_per_output_token_j),
            cell(s.tokens_per_second),
            cell(s.ttft_p50_ms),
            *(_quality_cells(s.quality) if with_quality else ()),
            *((_task_cell(s.task_accuracy),) if with_tasks else ()),
        )
    return table


def _task_cell(t: Any) -> str:
    from llenergymeasure.results.quality_view import task_summary

    return "-" if t is None else task_summary(t)


def _quality_cells(q: Any) -> tuple[str, ...]:
    from llenergymeasure.results.quality_view import interval_text

    if q is None:
        return ("-", "-", "-")
    return (
        interval_text(q.perplexity_degradation, q.perplexity_degradation_ci, percent=True),
        interval_text(q.mean_kl_nats, q.mean_kl_ci),
        interval_text(q.top1_agreement, q.top1_agreement_ci, percent=True),
    )


def no_output_warnings(result: StudyResult) -> list[str]:
    """One line per configuration with runs that generated no tokens, and the rule applied."""
    from llenergymeasure.config.study import describe_overrides
    from llenergymeasure.domain.study import NO_OUTPUT_RULE

    return [
        f"{describe_overrides(s.overrides)}: {s.without_output_tokens} run(s) generated no "
        f"tokens; {NO_OUTPUT_RULE}"
        for s in result.summaries
        if s.without_output_tokens
    ]


def register(app: typer.Typer) -> None:
    @app.command("study")
    def study(
        study_file: Path | None = typer.Argument(None, help="Study YAML."),
        output: Path | None = typer.Option(None, "-o", "--output", help="Output directory."),
        dry_run: bool = typer.Option(False, "--dry-run", help="List the runs; run nothing."),
        resume: Path | None = typer.Option(
            None, "--resume", help="Resume the study in this directory (its manifest)."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
        executor: str | None = typer.Option(
            None,
            "--executor",
            help="Where runs execute: local, slurm or ray (overrides the study's executor:).",
        ),
    ) -> None:
        """Run a study: a sweep or list of experiments, repeated in cycles, resumable."""
        from llenergymeasure.config.executor import EXECUTOR_KINDS
        from llenergymeasure.config.loading import validate
        from llenergymeasure.config.study import StudyConfig, expand, load_study_config
        from llenergymeasure.errors import ConfigError
        from llenergymeasure.files import check_output_dir
        from llenergymeasure.study.manifest_store import MANIFEST_FILENAME, load_manifest
        from llenergymeasure.study.runner import run_study, study_directory

        if executor is not None and executor not in EXECUTOR_KINDS:
            raise ConfigError(
                f"--executor: must be one of {', '.join(EXECUTOR_KINDS)} (got {executor!r})"
            )
        if resume is not None:
            manifest = load_manifest(resume)
            data = {**manifest.study_config, "output_dir": str(resume.parent)}
            config = validate(StudyConfig, data, source=str(resume / MANIFEST_FILENAME))
        elif study_file is not None:
            config = load_study_config(study_file, output)
        else:
            raise ConfigError("give a study YAML file, or --resume DIR")
        if executor is not None and executor != config.executor.kind:
            config = validate(
                StudyConfig,
                {**config.model_dump(mode="json"), "executor": executor},
                source="--executor",
            )
        check_output_dir(config.output_dir, "-o" if output is not None else "output_dir")
        directory = check_output_dir(study_directory(config), "name")
        if dry_run:
            from llenergymeasure.study.executors.plan import describe_plan, submission_plan

            console.print(plan_table(config))
            for line in describe_plan(submission_plan(config), config):
                console.print(line, highlight=False, soft_wrap=True)
            return
        total = len(expand(config))
        try:
            if quiet:
                result = run_study(config, reporter=QuietStudyReporter())
            else:
                with RichStudyReporter(total) as reporter:
                    result = run_study(config, reporter=reporter)
        except INTERRUPTS as exc:
            exit_interrupted(
                f"{interrupted_study(directory, total)}; completed results are kept; "
                f"continue with `llem study --resume {directory}`.",
                exc,
            )
        console.print(summary_table(result))
        for line in no_output_warnings(result):
            warn(line)
        if result.failed:
            warn(f"{result.failed} run(s) failed; see the manifest.")
            raise typer.Exit(1)
