"""`llem study`: run, dry-run or resume a study, with a bar for the study and one for the run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from llenergymeasure.cli.console import console, error_console
from llenergymeasure.cli.run_cmd import RichReporter

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
            self.message(f"[red]failed[/] {record.run_id}: {record.error}")
        self.clear_stages()
        self._progress.refresh()


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
            run.config.config_hash(),
        )
    return table


def summary_table(result: StudyResult) -> Table:
    """Per-configuration statistics across cycles: mean ± std and the 95% interval."""
    from rich.table import Table

    from llenergymeasure.config.study import describe_overrides

    table = Table(
        title=f"Study {result.name}: {result.completed} completed, {result.failed} failed",
        caption=f"{result.directory}",
    )
    for column in ("configuration", "n", "J / output token", "tokens/s", "TTFT p50 (ms)"):
        table.add_column(column)

    def cell(m: MetricSummary) -> str:
        if m.n == 0:
            return "-"
        return f"{m.mean:.4g} ± {m.std:.2g} [{m.ci95_low:.4g}, {m.ci95_high:.4g}]"

    for s in result.summaries:
        table.add_row(
            describe_overrides(s.overrides),
            f"{s.completed}" + (f" ({s.failed} failed)" if s.failed else ""),
            cell(s.energy_per_output_token_j),
            cell(s.tokens_per_second),
            cell(s.ttft_p50_ms),
        )
    return table


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
    ) -> None:
        """Run a study: a sweep or list of experiments, repeated in cycles, resumable."""
        from llenergymeasure.config.loading import validate
        from llenergymeasure.config.study import StudyConfig, expand, load_study_config
        from llenergymeasure.domain.study import StudyManifest
        from llenergymeasure.errors import ConfigError
        from llenergymeasure.results.io import load_model
        from llenergymeasure.study.runner import MANIFEST_FILENAME, run_study

        if resume is not None:
            manifest = load_model(resume / MANIFEST_FILENAME, StudyManifest)
            data = {**manifest.study_config, "output_dir": str(resume.parent)}
            config = validate(StudyConfig, data, source=str(resume / MANIFEST_FILENAME))
        elif study_file is not None:
            config = load_study_config(study_file, output)
        else:
            raise ConfigError("give a study YAML file, or --resume DIR")
        if dry_run:
            console.print(plan_table(config))
            return
        total = len(expand(config))
        if quiet:
            result = run_study(config)
        else:
            with RichStudyReporter(total) as reporter:
                result = run_study(config, reporter=reporter)
        console.print(summary_table(result))
        if result.failed:
            error_console.print(f"[yellow]{result.failed} run(s) failed[/]; see the manifest.")
            raise typer.Exit(1)
