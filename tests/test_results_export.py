"""Export: one row per result, stable column names with units, numbers equal to the JSON."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given

from llenergymeasure.domain import ExperimentResult
from llenergymeasure.results.collection import load_results
from llenergymeasure.results.export import records_to_csv, write_export
from llenergymeasure.results.records import (
    COLUMN_NAMES,
    COLUMNS,
    columns_markdown,
    result_record,
)
from tests import factories as f

ROOT = Path(__file__).resolve().parents[1]

#: Column -> where the same number sits in result.json (a JSON path).
JSON_PATHS = {
    "experiment_id": "experiment_id",
    "config_hash": "config_hash",
    "model": "config.model",
    "dtype": "config.dtype",
    "batch_size": "config.batch_size",
    "output_tokens": "inference.output_tokens",
    "tokens_per_second": "inference.tokens_per_second",
    "energy_per_output_token_j": "energy_per_output_token_j",
    "total_energy_j": "energy.total_energy_j",
    "gpu_energy_j": "energy.gpu_energy_j",
    "adjusted_energy_j": "energy.adjusted_energy_j",
    "energy_method": "energy.method",
    "ttft_p50_ms": "inference.ttft.p50_ms",
    "ttft_p99_ms": "inference.ttft.p99_ms",
    "itl_mean_ms": "inference.itl.mean_ms",
    "total_flops": "compute.flops.value",
    "flops_method": "compute.flops.method",
    "flops_confidence": "compute.flops.confidence",
    "tokens_per_joule": "normalised.tokens_per_joule",
    "throttled": "thermal.detected",
    "max_temperature_c": "thermal.max_temperature_c",
    "warmup_converged": "warmup_converged",
}


def _json_value(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


def _raw_json(root: Path) -> dict[str, dict[str, Any]]:
    raw = {}
    for path in root.rglob("result.json"):
        if path.parent.name != "broken":
            data = json.loads(path.read_text())
            raw[data["experiment_id"]] = data
    return raw


def _csv_value(cell: str, type_: str) -> Any:
    if cell == "":
        return None
    return {"int": int, "float": float, "bool": lambda c: c == "true", "str": str}[type_](cell)


@pytest.fixture
def study(tmp_path: Path) -> Path:
    f.write_study(tmp_path, batch_sizes=(1, 4, 16), cycles=2, telemetry=False)
    broken = tmp_path / "broken" / "result.json"
    broken.parent.mkdir()
    broken.write_text("{not json")
    return tmp_path


def test_csv_and_parquet_read_back_with_the_json_numbers(study: Path, tmp_path: Path) -> None:
    found = load_results(study)
    raw = _raw_json(study)
    assert len(found) == len(raw) == 6
    csv_path = write_export(found.results, tmp_path / "out" / "r.csv", "csv")
    parquet_path = write_export(found.results, tmp_path / "out" / "r.parquet", "parquet")

    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMN_NAMES
        csv_rows = list(reader)
    table = pq.read_table(parquet_path)
    assert tuple(table.column_names) == COLUMN_NAMES
    parquet_rows = table.to_pylist()
    assert len(csv_rows) == len(parquet_rows) == 6

    types = {c.name: c.type for c in COLUMNS}
    for csv_row, pq_row in zip(csv_rows, parquet_rows, strict=True):
        source = raw[pq_row["experiment_id"]]
        assert csv_row["experiment_id"] == pq_row["experiment_id"]
        for column, path in JSON_PATHS.items():
            expected = _json_value(source, path)
            assert _csv_value(csv_row[column], types[column]) == expected, column
            assert pq_row[column] == expected, column
        # Every column agrees between the two formats, exactly.
        for column in COLUMN_NAMES:
            assert _csv_value(csv_row[column], types[column]) == pq_row[column], column


def test_parquet_schema_is_typed_and_documented(tmp_path: Path) -> None:
    path = write_export([f.sweep_result(2)], tmp_path / "x.parquet", "parquet")
    schema = pq.read_schema(path)
    assert str(schema.field("batch_size").type) == "int64"
    assert str(schema.field("tokens_per_second").type) == "double"
    assert str(schema.field("throttled").type) == "bool"
    assert (
        schema.field("ttft_p50_ms").metadata[b"description"]
        == b"p50 of time to first token (per request); empty when not reported"
    )
    empty = write_export([], tmp_path / "empty.parquet", "parquet")
    assert pq.read_table(empty).num_rows == 0
    assert pq.read_schema(empty).types == schema.types


def test_column_names_are_snake_case_with_units_and_unique() -> None:
    assert len(set(COLUMN_NAMES)) == len(COLUMN_NAMES)
    for name in COLUMN_NAMES:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name), name
    units = ("_j", "_w", "_sec", "_ms", "_c", "_mb", "_flops", "_flop", "_per_sec", "_second")
    units += ("_g", "_usd")  # gCO2e, US dollars (carbon and cost)
    unitless = {"precision_factor", "mfu", "warmup_final_cv", "warmup_target_cv", "pue"}
    for column in COLUMNS:
        if column.type == "float" and column.name not in unitless:
            assert column.name.endswith(units) or "_per_" in column.name, column.name
    for required in ("energy_per_output_token_j", "tokens_per_second", "ttft_p50_ms",
                     "flops_method", "energy_method", "batch_size", "dtype", "model"):  # fmt: skip
        assert required in COLUMN_NAMES


def test_docs_list_every_export_column() -> None:
    docs = (ROOT / "docs" / "results.md").read_text()
    assert columns_markdown() in docs, (
        "docs/results.md is out of date: paste "
        "llenergymeasure.results.records.columns_markdown() into it"
    )


def test_foreign_config_gives_empty_cells_not_errors() -> None:
    base = f.experiment_result()
    odd = base.model_copy(update={"config": {"batch_size": "auto", "model": {"name": "m"}}})
    record = result_record(odd)
    assert record["batch_size"] is None
    assert record["engine"] is None and record["dtype"] is None
    assert record["model"] == '{"name":"m"}'
    assert result_record(base.model_copy(update={"config": {"batch_size": 8.0}}))["batch_size"] == 8
    line = records_to_csv([record]).splitlines()[1]
    assert ",," in line  # missing values are empty cells


@given(f.experiment_results())
def test_csv_round_trips_every_number_exactly(result: ExperimentResult) -> None:
    record = result_record(result)
    text = records_to_csv([record])
    (row,) = list(csv.DictReader(text.splitlines()))
    for column in COLUMNS:
        assert _csv_value(row[column.name], column.type) == record[column.name], column.name
    assert record["energy_per_output_token_j"] == result.energy_per_output_token_j
