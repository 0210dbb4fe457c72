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

        from llenergymeasure.cli.console import console
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
            table.add_row(item.name, f"[{style}]{item.status}[/]", item.detail)
        console.print(table)
        console.print(f"[bold]auto uses:[/] {report.auto}", highlight=False)
        driver = report.driver_version or "none"
        cuda = f" (CUDA {report.cuda_driver_version})" if report.cuda_driver_version else ""
        console.print(f"[bold]NVIDIA driver:[/] {driver}{cuda}", highlight=False)
        console.print("[bold]devices:[/]", highlight=False)
        for device in report.devices:
            console.print(f"  {device}", highlight=False, soft_wrap=True)
        for warning in report.auto_warnings:
            console.print(f"[yellow]note:[/] {warning}", highlight=False, soft_wrap=True)
