"""Storage layer: atomic result files, loading with schema checks, aggregation, export, report."""

from llenergymeasure.results.io import (
    RESULT_FILENAME,
    atomic_write_json,
    atomic_write_text,
    load_model,
    load_process_result,
    load_result,
    save_model,
    save_result,
)

__all__ = [
    "RESULT_FILENAME",
    "atomic_write_json",
    "atomic_write_text",
    "load_model",
    "load_process_result",
    "load_result",
    "save_model",
    "save_result",
]
