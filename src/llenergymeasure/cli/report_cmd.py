"""`llem report DIR -o report.html`: one self-contained HTML page with tables and plots."""

from __future__ import annotations

from pathlib import Path

import typer

from llenergymeasure.cli.results_cmd import warn


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        directory: Path = typer.Argument(..., help="An experiment or study directory."),
        output: Path = typer.Option(Path("report.html"), "-o", "--output", help="HTML to write."),
        max_telemetry: int = typer.Option(
            6, "--max-telemetry", min=0, help="Draw power/temperature for at most N results."
        ),
        title: str | None = typer.Option(None, "--title", help="Page title."),
    ) -> None:
        """Write an HTML report: tables and plots (matplotlib) embedded in one file."""
        from llenergymeasure.results.collection import load_results
        from llenergymeasure.results.report import write_report

        found = load_results(directory)
        warn(found.warnings())
        page = write_report(found, output, max_telemetry=max_telemetry, title=title)
        typer.echo(
            f"wrote {output}: {page.results} result(s), {page.configurations} configuration(s), "
            f"{len(page.warnings)} warning(s)"
        )
