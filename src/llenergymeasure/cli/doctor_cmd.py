"""`llem doctor`: which energy instruments work here, which do not and why, and what auto uses."""

from __future__ import annotations

import json
from pathlib import Path

import typer

_STYLE = {"in use": "bold green", "available": "green", "installed": "green"}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        powercap_root: Path = typer.Option(
            Path("/sys/class/powercap"), "--powercap-root", hidden=True
        ),
    ) -> None:
        """Check the energy instruments (NVML, RAPL, Zeus, CodeCarbon, estimate) and devices."""
        from rich.table import Table

        from llenergymeasure.cli.console import console, message, styled
        from llenergymeasure.energy.probe import diagnose

        report = diagnose(powercap_root=powercap_root)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2))
            return
        table = Table(title="energy instruments", title_justify="left")
        table.add_column("instrument")
        table.add_column("status")
        table.add_column("why / details", overflow="fold")
        for item in report.instruments:
            style = _STYLE.get(item.status, "yellow")
            table.add_row(item.name, styled(item.status, style), item.detail)
        console.print(table)
        message("auto uses:", "bold", report.auto, to=console)
        driver = report.driver_version or "none"
        cuda = f" (CUDA {report.cuda_driver_version})" if report.cuda_driver_version else ""
        message("NVIDIA driver:", "bold", f"{driver}{cuda}", to=console)
        console.print(styled("devices:", "bold"))
        for device in report.devices:
            console.print(f"  {device}", soft_wrap=True)
        for warning in report.auto_warnings:
            message("note:", "yellow", warning, to=console)
