"""`llem aggregate`: rebuild an experiment's result.json from its raw per-process files."""

from __future__ import annotations

from pathlib import Path

import typer

from llenergymeasure.cli.console import console, warn


def register(app: typer.Typer) -> None:
    @app.command("aggregate")
    def aggregate(
        experiment_dir: Path = typer.Argument(..., help="An experiment directory."),
        allow_partial: bool = typer.Option(
            False, "--allow-partial", help="Aggregate what is there; problems become warnings."
        ),
    ) -> None:
        """Re-aggregate EXPERIMENT_DIR from its process_<i>.json files into result.json."""
        from llenergymeasure.cli.run_cmd import summary_table
        from llenergymeasure.results.aggregation import aggregate_directory
        from llenergymeasure.results.layout import RESULT_FILENAME

        if experiment_dir.is_dir():  # the experiment's own run may still be writing there
            from llenergymeasure.locking import DirectoryLock

            with DirectoryLock(experiment_dir, "experiment"):
                result = aggregate_directory(experiment_dir, allow_partial=allow_partial)
        else:
            result = aggregate_directory(experiment_dir, allow_partial=allow_partial)
        console.print(summary_table(result, experiment_dir / RESULT_FILENAME))
        for warning in result.warnings:
            warn(warning)
