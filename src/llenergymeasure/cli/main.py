"""The `llem` command: a typer app whose commands live in small modules beside this one.

A command's module is imported, and the command built, only when that command is used
(``COMMANDS`` below, cli/lazy.py); every command module imports heavy libraries (torch,
transformers, matplotlib) inside the command's body, so `llem --help` stays light. User
mistakes (`LlemError`) print one line and exit 2; Ctrl-C prints one line and exits 130,
SIGTERM 143.
"""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.25 vendors click as typer._click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on top of click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from llenergymeasure import __version__
from llenergymeasure.cli.lazy import LazyCommand, LazyGroup
from llenergymeasure.errors import LlemError
from llenergymeasure.signals import INTERRUPTS, install_sigterm_handler

_CLI = "llenergymeasure.cli."

COMMANDS = {
    "run": LazyCommand(
        _CLI + "run_cmd", "Run one experiment and write OUTPUT/<experiment_id>/result.json."
    ),
    "aggregate": LazyCommand(
        _CLI + "aggregate_cmd",
        "Re-aggregate EXPERIMENT_DIR from its process_<i>.json files into result.json.",
    ),
    "study": LazyCommand(
        _CLI + "study_cmd",
        "Run a study: a sweep or list of experiments, repeated in cycles, resumable.",
    ),
    "schema": LazyCommand(
        _CLI + "schema_cmd",
        "Print the JSON Schema of result files (ExperimentResult by default).",
    ),
    "report": LazyCommand(
        _CLI + "report_cmd",
        "Write an HTML report: tables and plots (matplotlib) embedded in one file.",
    ),
    "doctor": LazyCommand(
        _CLI + "doctor_cmd",
        "Check the energy instruments (NVML, RAPL, Zeus, CodeCarbon, estimate) and devices.",
    ),
    "serve": LazyCommand(
        _CLI + "serve_cmd",
        "Serve MODEL over an OpenAI-compatible API (/v1/completions, /v1/chat/completions,\n"
        "/v1/models, /health), streaming tokens as server-sent events.",
    ),
    "serve-bench": LazyCommand(
        _CLI + "serve_bench_cmd",
        "Measure a server under load: per-request latency by streaming, energy of the GPUs\n"
        "(and host) in the steady-state window, J per output token, per request and per good\n"
        "request, goodput against SLOs. Writes OUTPUT/<run>/rate-<r>/result.json per rate.",
    ),
    "results": LazyCommand(
        _CLI + "results_cmd", "List, show, compare and export experiment results."
    ),
}
"""The subcommands in `llem --help`'s order: module with ``register(app)``, first paragraph
of the help (tests/test_cli_startup.py checks it against the built command)."""

_APP_OPTIONS: dict[str, object] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
}


class _LlemGroup(LazyGroup):
    lazy_commands = COMMANDS
    app_options = _APP_OPTIONS


app = typer.Typer(
    name="llem",
    help="Measure what LLM inference costs: energy per token, throughput, latency and FLOPs.",
    no_args_is_help=True,
    cls=_LlemGroup,
    **_APP_OPTIONS,  # type: ignore[arg-type]
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: run the command, turn every ending into an exit status.

    Click's own error boxes are replaced by the project's one line (exit 2) naming the value
    and what is allowed; SIGTERM ends a command like Ctrl-C (exit 143 instead of 130).
    """
    install_sigterm_handler()
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else list(argv)
    from llenergymeasure.threads import prefer_passive_omp_wait

    prefer_passive_omp_wait()
    try:
        with command.make_context("llem", args) as ctx:
            command.invoke(ctx)
    except click_exceptions.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(2)
    except click_exceptions.UsageError as exc:
        from llenergymeasure.cli.console import error_console

        error_console.print(
            f"[bold red]error:[/] {usage_line(exc)}", highlight=False, soft_wrap=True, markup=True
        )
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        from llenergymeasure.cli.console import error_console

        error_console.print("aborted", highlight=False)
        sys.exit(1)
    except LlemError as exc:
        from llenergymeasure.cli.console import error

        error(exc)
        sys.exit(exc.exit_code)
    except INTERRUPTS as exc:
        from llenergymeasure.cli.console import exit_interrupted

        exit_interrupted("nothing more was written.", exc)
    except BrokenPipeError:
        sys.exit(1)  # output piped into a command that stopped reading (e.g. head)
    except OSError as exc:  # the file system refused (full disk, odd mount): still one line
        from llenergymeasure.cli.console import error

        where = f"{exc.filename}: " if exc.filename else ""
        error(f"{where}{exc.strerror or exc}")
        sys.exit(2)
    sys.exit(0)


def usage_line(exc: click_exceptions.UsageError) -> str:
    """Click's message on one line, with the value given and the command's --help to look at."""
    from pydantic import ValidationError
    from rich.markup import escape

    message = " ".join(exc.format_message().split()).rstrip(".").replace("Value error, ", "")
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        got = repr(cause.errors()[0].get("input"))
        if got not in message:
            message += f" (got {got})"
    where = f"; see `{exc.ctx.command_path} --help`" if exc.ctx is not None else ""
    return escape(message) + where


if __name__ == "__main__":  # pragma: no cover
    main()
