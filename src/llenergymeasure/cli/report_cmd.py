"""`llem report DIR -o report.html`: one self-contained HTML page with tables and plots."""

from __future__ import annotations

from pathlib import Path

import typer

from llenergymeasure.cli import footprint_opts as fo
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
        region: str | None = fo.REGION,
        intensity: float | None = fo.INTENSITY,
        pue: float | None = fo.PUE,
        energy_basis: fo.EnergyBasisChoice | None = fo.ENERGY_BASIS,
        usd_per_gpu_hour: float | None = fo.USD_PER_GPU_HOUR,
        usd_per_node_hour: float | None = fo.USD_PER_NODE_HOUR,
        gpus: int | None = fo.GPUS,
    ) -> None:
        """Write an HTML report: tables and plots (matplotlib) embedded in one file."""
        from llenergymeasure.files import check_output_file
        from llenergymeasure.results.collection import load_results
        from llenergymeasure.results.footprint import recompute_set
        from llenergymeasure.results.report import write_report

        check_output_file(output)
        found = recompute_set(
            load_results(directory),
            fo.overrides(
                region, intensity, pue, energy_basis, usd_per_gpu_hour, usd_per_node_hour, gpus
            ),
        )
        warn(found.warnings())
        page = write_report(found, output, max_telemetry=max_telemetry, title=title)
        typer.echo(
            f"wrote {output}: {page.results} result(s), {page.configurations} configuration(s), "
            f"{len(page.warnings)} warning(s)"
        )
