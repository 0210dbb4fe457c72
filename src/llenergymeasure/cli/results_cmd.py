"""`llem results list / show / compare / export`: look at results without writing pandas."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from llenergymeasure.cli import footprint_opts as fo
from llenergymeasure.cli.console import console, error_console
from llenergymeasure.cli.console import warn as warn_line
from llenergymeasure.cli.lazy import HelpFlagGroup
from llenergymeasure.errors import LlemError, ResultFileError

if TYPE_CHECKING:
    from llenergymeasure.results.collection import LoadedResult
    from llenergymeasure.results.footprint import FootprintOverrides
    from llenergymeasure.results.views import Table

DEFAULT_DIR = Path("results")


class ExportFormat(str, Enum):
    csv = "csv"
    parquet = "parquet"


def warn(lines: Iterable[object]) -> None:
    """Print each line as a warning on stderr."""
    for line in lines:
        warn_line(line)


def print_table(table: Table, numeric_from: int | None = None) -> None:
    """Render a views.Table with rich; columns from ``numeric_from`` on are right-aligned."""
    from rich.table import Table as RichTable

    rich_table = RichTable(title=table.title, title_justify="left", show_lines=False)
    for i, header in enumerate(table.headers):
        numeric = numeric_from is not None and i >= numeric_from
        rich_table.add_column(header, justify="right" if numeric else "left", no_wrap=i == 0)
    for row in table.rows:
        rich_table.add_row(*row)
    console.print(rich_table)


def list_records(items: Sequence[LoadedResult]) -> list[dict[str, Any]]:
    """What `llem results list --json` prints: per result its file and its export record."""
    from llenergymeasure.results.records import result_record

    return [{"path": str(item.path), **result_record(item.result)} for item in items]


def register(app: typer.Typer) -> None:
    results_app = typer.Typer(
        name="results",
        cls=HelpFlagGroup,
        help="List, show, compare and export experiment results.",
        no_args_is_help=True,
    )

    @results_app.command("list")
    def list_results(
        directory: Path = typer.Argument(DEFAULT_DIR, help="Directory searched for result.json."),
        as_json: bool = typer.Option(
            False,
            "--json",
            help="Print a JSON array instead: per result its path and the export columns.",
        ),
    ) -> None:
        """One line per result below DIRECTORY: configuration and headline figures."""
        from llenergymeasure.results.collection import load_results
        from llenergymeasure.results.views import list_table

        found = load_results(directory)
        warn(found.warnings())
        if as_json:
            typer.echo(json.dumps(list_records(found.loaded), indent=2))
            return
        if not found.loaded:
            error_console.print(f"no readable result.json under {directory}", soft_wrap=True)
            return
        print_table(list_table(found.loaded, title=f"{len(found)} result(s) in {directory}"))

    @results_app.command("show")
    @fo.with_footprint_options
    def show(
        ref: str = typer.Argument(
            ..., help="Experiment id (or unique prefix), result file or dir."
        ),
        directory: Path = typer.Option(DEFAULT_DIR, "--dir", help="Where to look for an id."),
        as_json: bool = typer.Option(
            False, "--json", help="Print the result as JSON (the result.json document)."
        ),
        *,
        footprint: FootprintOverrides,
    ) -> None:
        """Every figure of one result, grouped, with how each was obtained."""
        from llenergymeasure.results.collection import resolve_results
        from llenergymeasure.results.footprint import recompute_item
        from llenergymeasure.results.views import show_tables

        (item,), problems = resolve_results([ref], directory)
        item = recompute_item(
            item,
            footprint,
        )
        warn(f"skipped {p}" for p in problems)
        if as_json:
            typer.echo(item.result.model_dump_json(indent=2))
            return
        for table in show_tables(item):
            if table.rows:
                print_table(table)

    @results_app.command("compare")
    @fo.with_footprint_options
    def compare(
        refs: list[str] = typer.Argument(..., help="Two or more ids, result files or dirs."),
        directory: Path = typer.Option(DEFAULT_DIR, "--dir", help="Where to look for ids."),
        *,
        footprint: FootprintOverrides,
    ) -> None:
        """Results side by side, each figure with its ratio to the first result."""
        from llenergymeasure.results.collection import resolve_results
        from llenergymeasure.results.footprint import recompute_item
        from llenergymeasure.results.views import compare_table

        if len(refs) < 2:
            raise LlemError("compare needs at least two results (ids, result files or dirs)")
        items, problems = resolve_results(refs, directory)
        items = [recompute_item(item, footprint) for item in items]
        warn(f"skipped {p}" for p in problems)
        print_table(compare_table(items), numeric_from=1)

    @results_app.command("export")
    @fo.with_footprint_options
    def export(
        directory: Path = typer.Argument(..., help="Directory searched for result.json."),
        fmt: ExportFormat | None = typer.Option(
            None, "--format", help="csv or parquet (default: from -o's suffix, else csv)."
        ),
        output: Path | None = typer.Option(
            None, "-o", "--output", help="File to write (default: ./results.csv or .parquet)."
        ),
        *,
        footprint: FootprintOverrides,
    ) -> None:
        """One row per result, stable column names with units (CSV or Parquet)."""
        from llenergymeasure.files import check_output_file
        from llenergymeasure.results.collection import load_results
        from llenergymeasure.results.export import write_export
        from llenergymeasure.results.footprint import recompute_set

        if fmt is None:
            suffix = output.suffix.lower().lstrip(".") if output else ""
            fmt = ExportFormat(suffix) if suffix in ExportFormat.__members__ else ExportFormat.csv
        output = check_output_file(output or Path(f"results.{fmt.value}"))
        found = recompute_set(
            load_results(directory),
            footprint,
        )
        warn(found.warnings())
        if not found.loaded:
            raise ResultFileError(directory, "holds no readable result.json: nothing to export")
        write_export(found.results, output, fmt.value)
        typer.echo(f"wrote {output} ({len(found)} row(s), {fmt.value})")

    app.add_typer(results_app, name="results")
