"""The `llem` command: a typer app whose commands live in small modules beside this one.

Every command module imports heavy libraries (torch, transformers, matplotlib) inside the
command's body, so `llem --help` stays light. User mistakes (`LlemError`) print one line and
exit 2; Ctrl-C prints one line and exits 130.
"""

from __future__ import annotations

import sys

import typer

from llenergymeasure import __version__
from llenergymeasure.cli import (
    aggregate_cmd,
    doctor_cmd,
    report_cmd,
    results_cmd,
    run_cmd,
    schema_cmd,
    serve_bench_cmd,
    serve_cmd,
    study_cmd,
)
from llenergymeasure.cli.console import error_console, exit_interrupted
from llenergymeasure.errors import LlemError

app = typer.Typer(
    name="llem",
    help="Measure what LLM inference costs: energy per token, throughput, latency and FLOPs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llem {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Measure what LLM inference costs, with the provenance of every figure."""


run_cmd.register(app)
aggregate_cmd.register(app)
study_cmd.register(app)
schema_cmd.register(app)
results_cmd.register(app)
report_cmd.register(app)
doctor_cmd.register(app)
serve_cmd.register(app)
serve_bench_cmd.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    try:
        app(args=argv, standalone_mode=True)
    except LlemError as exc:
        error_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        exit_interrupted("nothing more was written.")


if __name__ == "__main__":  # pragma: no cover
    main()
