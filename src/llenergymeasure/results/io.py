"""Result files: written atomically, loaded with a schema-version check and one clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from llenergymeasure.domain.results import ExperimentResult, RawProcessResult
from llenergymeasure.errors import ResultFileError
from llenergymeasure.files import atomic_write_text
from llenergymeasure.results.layout import RESULT_FILENAME
from llenergymeasure.results.migrate import MIGRATIONS, upgrade

ModelT = TypeVar("ModelT", bound=BaseModel)


def atomic_write_json(path: str | Path, data: object) -> Path:
    """Write a JSON-serialisable object atomically (pretty-printed, keys in order)."""
    return atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def save_model(model: BaseModel, path: str | Path) -> Path:
    """Write a pydantic model as JSON, atomically."""
    return atomic_write_text(path, model.model_dump_json(indent=2) + "\n")


def save_result(result: ExperimentResult, path: str | Path) -> Path:
    """Write an ExperimentResult; ``path`` may be a directory (then ``result.json`` inside)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILENAME
    return save_model(result, path)


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def load_model(path: str | Path, model_type: type[ModelT]) -> ModelT:
    """Load and validate a JSON result file; any problem is a ResultFileError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(path, "no such file") from None
    except IsADirectoryError:
        raise ResultFileError(path, "is a directory, expected a JSON result file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(path, f"cannot be read ({exc})") from None
    return model_from_text(path, text, model_type)


def model_from_text(path: str | Path, text: str, model_type: type[ModelT]) -> ModelT:
    """Validate the text of a JSON file read from ``path`` (named in errors) as load_model does."""
    path = Path(path)
    kind = model_type.__name__
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(
            path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}): corrupt or truncated"
        ) from None
    if not isinstance(data, dict):
        raise ResultFileError(path, f"is not an llenergymeasure {kind} (not a JSON object)")
    versioned = "schema_version" in model_type.model_fields
    if versioned and "schema_version" not in data:
        raise ResultFileError(path, f"is not an llenergymeasure {kind} (no schema_version)")
    # Each file kind has its own version (results, study manifests and summaries differ);
    # only result files have migrations from older major versions.
    current = str(model_type.model_fields["schema_version"].default) if versioned else ""
    version = str(data.get("schema_version", current))
    if versioned and _major(version) != _major(current):
        migrates = model_type in (ExperimentResult, RawProcessResult)
        upgraded = upgrade(data, version, current) if migrates else None
        if upgraded is None:
            also = f" (and migrates {', '.join(f'{m}.x' for m in MIGRATIONS)})" if migrates else ""
            raise ResultFileError(
                path, f"has schema_version {version}, this llenergymeasure reads {current}{also}"
            )
        data = upgraded
    try:
        return model_type.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ResultFileError(
            path, f"is not a valid {kind}: {where}: {first['msg']}{more}"
        ) from None


def load_result(path: str | Path) -> ExperimentResult:
    """Load an ExperimentResult from a file, or from ``result.json`` in a directory."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILENAME
    return load_model(path, ExperimentResult)


def load_process_result(path: str | Path) -> RawProcessResult:
    """Load one process's raw result."""
    return load_model(path, RawProcessResult)
