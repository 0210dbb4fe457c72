"""`llem report DIR -o report.html`: one self-contained HTML page with tables and plots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from llenergymeasure.cli import footprint_opts as fo
from llenergymeasure.cli.results_cmd import warn

if TYPE_CHECKING:
    from llenergymeasure.results.footprint import FootprintOverrides


def register(app: typer.Typer) -> None:
    @app.command("report")
    @fo.with_footprint_options
    def report(
        directory: Path = typer.Argument(..., help="An experiment or study directory."),
        output: Path = typer.Option(Path("report.html"), "-o", "--output", help="HTML to write."),
        max_telemetry: int = typer.Option(
            6, "--max-telemetry", min=0, help="Draw power/temperature for at most N results."
        ),
        title: str | None = typer.Option(None, "--title", help="Page title."),
        *,
        footprint: FootprintOverrides,
    ) -> None:
        """Write an HTML report: tables and plots (matplotlib) embedded in one file."""
        from llenergymeasure.files import check_output_file
        from llenergymeasure.results.collection import load_results
        from llenergymeasure.results.footprint import recompute_set
        from llenergymeasure.results.report import write_report

        check_output_file(output)
        found = recompute_set(
            load_results(directory),
            footprint,
        )
        warn(found.warnings())
        page = write_report(found, output, max_telemetry=max_telemetry, title=title)
        typer.echo(
            f"wrote {output}: {page.results} result(s), {page.configurations} configuration(s), "
            f"{len(page.warnings)} warning(s)"
        )
