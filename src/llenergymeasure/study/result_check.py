"""Whether a run's result.json is its valid result, validated in full once per file content.

A run is done when ``runs/<run_id>/result.json`` loads as an ExperimentResult (JSON, schema
version, every field and validator) and carries the run's config hash. That full check costs
0.2-0.5 ms per file, and a resumed study of thousands of runs would repeat it
for every finished run. So when the parent has validated a file in full it records the
SHA-256 of the exact bytes in the run's manifest record (``result_sha256``), and later trusts
a file whose bytes hash the same: reading and hashing a result costs tens of microseconds.
Any change to the file (one byte, truncation, another file of the same size and time)
changes the digest, and that file is validated in full again; a file that fails is not done.
So is a file validated under another result schema version (``result_schema_version``): code
that reads results differently re-checks what older code accepted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from llenergymeasure.config.study import PlannedRun
from llenergymeasure.domain.results import SCHEMA_VERSION, ExperimentResult
from llenergymeasure.domain.study import RunRecord
from llenergymeasure.errors import ResultFileError
from llenergymeasure.results.io import model_from_text
from llenergymeasure.results.layout import RESULT_FILENAME


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # absent, a directory, unreadable: not a result
        return None


def _validated(run: PlannedRun, path: Path, data: bytes) -> ExperimentResult | None:
    try:
        result = model_from_text(path, data.decode("utf-8"), ExperimentResult)
    except (ResultFileError, UnicodeDecodeError):
        return None
    return result if result.config_hash == run.config_hash else None


def valid_result(run: PlannedRun, run_dir: Path) -> ExperimentResult | None:
    """The run's result if it exists, validates in full and belongs to this run's config."""
    path = run_dir / RESULT_FILENAME
    data = _read(path)
    return None if data is None else _validated(run, path, data)


def check_result(run: PlannedRun, run_dir: Path, record: RunRecord | None) -> bool:
    """True when the run has its valid result; keeps ``record.result_sha256`` up to date.

    A file with the digest the record holds (for this run's config hash) was validated in
    full before and is trusted; any other file is validated in full, and the record then
    holds its digest if it passed, or None. The caller persists the record if it changed."""
    path = run_dir / RESULT_FILENAME
    data = _read(path)
    digest = None if data is None else hashlib.sha256(data).hexdigest()
    trusted = (
        record is not None
        and record.config_hash == run.config_hash
        and record.result_schema_version == SCHEMA_VERSION  # validated by this code's schema
    )
    if trusted and digest is not None and record.result_sha256 == digest:  # type: ignore[union-attr]
        return True
    ok = data is not None and _validated(run, path, data) is not None
    if record is not None:
        record.result_sha256 = digest if ok else None
        record.result_schema_version = SCHEMA_VERSION if ok else None
    return ok
