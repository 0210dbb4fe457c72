"""`llem schema`: print the JSON Schema of the result files."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import typer


class SchemaKind(str, Enum):
    experiment = "experiment"
    process = "process"


def result_json_schema(kind: SchemaKind | str = SchemaKind.experiment) -> dict[str, Any]:
    """The JSON Schema of a result file as written (computed figures included)."""
    from llenergymeasure.domain.results import ExperimentResult, RawProcessResult

    model = ExperimentResult if SchemaKind(kind) is SchemaKind.experiment else RawProcessResult
    return model.model_json_schema(mode="serialization")


def schema_text(kind: SchemaKind | str = SchemaKind.experiment) -> str:
    """The schema as the text `llem schema` prints and the checked-in copy holds."""
    return json.dumps(result_json_schema(kind), indent=2, sort_keys=True) + "\n"


def register(app: typer.Typer) -> None:
    @app.command("schema")
    def schema(
        kind: SchemaKind = typer.Option(
            SchemaKind.experiment, "--kind", help="Which result file: experiment or process."
        ),
        output: Path | None = typer.Option(
            None, "-o", "--output", help="Write to this file instead of printing."
        ),
    ) -> None:
        """Print the JSON Schema of result files (ExperimentResult by default)."""
        if output is not None:
            from llenergymeasure.files import check_output_file

            check_output_file(output)
        text = schema_text(kind)
        if output is None:
            typer.echo(text, nl=False)
        else:
            from llenergymeasure.results.io import atomic_write_text

            atomic_write_text(output, text)
            typer.echo(f"wrote {output}")
