"""Export results as one row per result: CSV (csv module) or Parquet (pyarrow), same columns.

CSV cells: floats in Python's shortest round-trip form (``float(cell)`` gives the number back
exactly), booleans as ``true``/``false``, a missing value as an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from llenergymeasure.domain.results import ExperimentResult
from llenergymeasure.files import atomic_write, atomic_write_text
from llenergymeasure.results.records import COLUMN_NAMES, COLUMNS, result_record

ExportFormat = Literal["csv", "parquet"]


def export_records(results: Iterable[ExperimentResult]) -> list[dict[str, Any]]:
    """One record per result, every column present (None where a value is missing)."""
    return [result_record(result) for result in results]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def records_to_csv(records: Sequence[dict[str, Any]]) -> str:
    """The records as CSV text with a header row of the column names."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMN_NAMES)
    for record in records:
        writer.writerow([_cell(record[name]) for name in COLUMN_NAMES])
    return buffer.getvalue()


def _arrow_schema() -> Any:
    import pyarrow as pa

    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    return pa.schema(
        [
            pa.field(c.name, types[c.type], nullable=True, metadata={"description": c.description})
            for c in COLUMNS
        ]
    )


def records_to_table(records: Sequence[dict[str, Any]]) -> Any:
    """The records as a ``pyarrow.Table`` with a fixed, typed schema (also when empty)."""
    import pyarrow as pa

    columns = {name: [record[name] for record in records] for name in COLUMN_NAMES}
    return pa.Table.from_pydict(columns, schema=_arrow_schema())


def write_export(
    results: Iterable[ExperimentResult], path: str | Path, fmt: ExportFormat = "csv"
) -> Path:
    """Write the results to ``path`` as CSV or Parquet (atomically); returns the path."""
    path = Path(path)
    records = export_records(results)
    if fmt == "csv":
        return atomic_write_text(path, records_to_csv(records))
    if fmt != "parquet":
        raise ValueError(f"unknown export format {fmt!r}; allowed: csv, parquet")
    import pyarrow.parquet as pq

    return atomic_write(path, lambda tmp: pq.write_table(records_to_table(records), tmp))
