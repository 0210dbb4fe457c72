"""Result files: atomic writes, schema-version checks, one clear error naming a bad file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llenergymeasure import files
from llenergymeasure.domain import ExperimentResult
from llenergymeasure.domain.results import SCHEMA_VERSION
from llenergymeasure.errors import ResultFileError
from llenergymeasure.files import UMASK
from llenergymeasure.results import io
from tests import factories as f


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    result = f.experiment_result()
    path = io.save_result(result, tmp_path / "exp" / "result.json")
    assert io.load_result(path) == result
    assert io.load_result(path.parent) == result  # a directory means its result.json
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_process_result_round_trip(tmp_path: Path) -> None:
    proc = f.process_result(index=1, world=2)
    path = io.save_model(proc, tmp_path / "process_1.json")
    assert io.load_process_result(path) == proc


def test_atomic_write_keeps_old_file_when_serialisation_fails(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    io.atomic_write_json(path, {"a": 1})
    with pytest.raises(ValueError):
        io.atomic_write_json(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["data.json"]


def test_atomic_write_interrupted_mid_write_leaves_old_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "result.json"
    io.atomic_write_text(path, "old")

    def boom(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        io.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema_version": "1.0", "experiment', "not valid JSON"),
        ("", "not valid JSON"),
        ('["a list"]', "(not a JSON object)"),
        ('{"name": "some other tool"}', "no schema_version"),
        (
            '{"schema_version": "9.0"}',
            r"schema_version 9\.0, this llenergymeasure reads 2\.3 \(and migrates 1\.x\)",
        ),
        ('{"schema_version": "1.0", "experiment_id": "x"}', "is not a valid ExperimentResult"),
    ],
)
def test_bad_files_get_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(ResultFileError, match=message) as info:
        io.load_result(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(ResultFileError, match="no such file"):
        io.load_result(tmp_path / "nope.json")
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ResultFileError, match=r"cannot be read|not valid JSON"):
        io.load_result(binary)


def test_minor_version_difference_is_accepted(tmp_path: Path) -> None:
    data = json.loads(f.experiment_result().model_dump_json())
    data["schema_version"] = "2.7"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    assert isinstance(io.load_result(path), ExperimentResult)


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    path = io.atomic_write_text(tmp_path / "r.json", "{}")
    assert path.stat().st_mode & 0o777 == 0o666 & ~UMASK


def _as_v1(data: dict) -> dict:
    """What a schema 1.0 file looked like: no arrival model, no TPOT, no method per figure."""
    for inference in [data["inference"], *(p["inference"] for p in data["process_results"])]:
        del inference["arrival_model"], inference["tpot"]
        for key in ("ttft", "itl", "request_latency"):
            del inference[key]["method"]
    for process in data["process_results"]:
        process["schema_version"] = "1.0"
    data["schema_version"] = "1.0"
    return data


def test_schema_1_files_are_migrated_with_a_note(tmp_path: Path) -> None:
    original = f.experiment_result()
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_as_v1(json.loads(original.model_dump_json()))))
    loaded = io.load_result(path)
    assert loaded.schema_version == "2.0"  # the layout it was migrated to
    assert loaded.inference.arrival_model == "closed"
    assert loaded.inference.ttft == original.inference.ttft  # samples and method unchanged
    assert loaded.inference.tpot.method == "not_reported" and loaded.inference.tpot.n == 0
    assert any("read from schema_version 1.0: TPOT not reported" in w for w in loaded.warnings)
    assert all(p.inference.arrival_model == "closed" for p in loaded.process_results)


def test_schema_1_0_files_still_load(tmp_path: Path) -> None:
    """Issue 11: schema 1.2 added throttle intervals and baseline provenance; a 1.0 file (no
    such keys) loads with them empty, and its per-sample throttle timestamps are kept."""
    result = f.experiment_result()
    data = json.loads(result.model_dump_json())
    assert data["schema_version"] == SCHEMA_VERSION
    data = _as_v1(data)
    for holder in [data, *data["process_results"]]:
        holder["thermal"].pop("throttle_intervals")
        holder["thermal"]["throttle_timestamps"] = [4.0, 4.1, 4.2]
        holder["energy"].pop("baseline")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    loaded = io.load_result(path)
    assert loaded.schema_version == "2.0"  # migrated (requests as the unit, issue 13)
    assert loaded.thermal.throttle_intervals == [] and loaded.energy.baseline is None
    assert loaded.thermal.throttle_timestamps == [4.0, 4.1, 4.2]
