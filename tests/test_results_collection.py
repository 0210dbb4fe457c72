"""Finding and loading many results: recursion, order, damaged files, lookup by id or path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llenergymeasure.errors import ResultFileError
from llenergymeasure.results.collection import (
    ResultLookupError,
    find_result_files,
    load_results,
    resolve_results,
)
from llenergymeasure.results.io import save_result
from tests import factories as f

DAMAGED = {
    "truncated": '{"schema_version": "1.0", "experi',
    "foreign": '{"name": "another tool", "energy": 3}',
    "future": '{"schema_version": "9.0", "experiment_id": "x"}',
    "invalid": '{"schema_version": "1.0", "experiment_id": "x"}',
}


def _damage(root: Path) -> dict[str, Path]:
    paths = {}
    for name, text in DAMAGED.items():
        path = root / "damaged" / name / "result.json"
        path.parent.mkdir(parents=True)
        path.write_text(text)
        paths[name] = path
    return paths


def test_finds_results_at_any_depth_and_orders_by_start_time(tmp_path: Path) -> None:
    written = f.write_study(tmp_path, batch_sizes=(8, 2), cycles=2, telemetry=False)
    (tmp_path / "notes.json").write_text("{}")  # not named result.json: ignored
    found = load_results(tmp_path)
    assert len(found) == 4 and not found.problems
    starts = [item.result.start_time for item in found]
    assert starts == sorted(starts)
    assert {r.experiment_id for r in found.results} == {r.experiment_id for r in written}
    for item in found:
        assert item.path.name == "result.json"
        assert item.directory == item.path.parent


def test_damaged_files_are_reported_by_name_and_the_rest_still_load(tmp_path: Path) -> None:
    f.write_study(tmp_path, batch_sizes=(1, 4), cycles=2, telemetry=False)
    damaged = _damage(tmp_path)
    found = load_results(tmp_path)
    assert len(found) == 4
    assert {p.path for p in found.problems} == set(damaged.values())
    warnings = found.warnings()
    for name, path in damaged.items():
        line = next(w for w in warnings if str(path) in w)
        assert line.startswith("skipped ")
        expected = {
            "truncated": "not valid JSON",
            "foreign": "no schema_version",
            "future": "schema_version 9.0",
            "invalid": "not a valid ExperimentResult",
        }[name]
        assert expected in line


def test_a_duplicated_experiment_id_is_a_warning(tmp_path: Path) -> None:
    result = f.sweep_result(4)
    save_result(result, _mkdir(tmp_path / "a"))
    save_result(result, _mkdir(tmp_path / "copy"))
    (line,) = load_results(tmp_path).warnings()
    assert result.experiment_id in line and "2 files" in line


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_missing_root_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResultFileError, match="no such file or directory"):
        find_result_files(tmp_path / "nope")
    assert load_results(tmp_path).loaded == []


def test_resolve_by_id_prefix_path_and_directory(tmp_path: Path) -> None:
    written = f.write_study(tmp_path, batch_sizes=(1, 4), cycles=2, telemetry=False)
    _damage(tmp_path)
    target = written[2]
    (item,), problems = resolve_results([target.experiment_id], tmp_path)
    assert item.result == target
    assert len(problems) == len(DAMAGED)
    prefix = target.experiment_id[:8]  # shared by both cycles: ambiguous
    with pytest.raises(ResultLookupError, match="matches 2 results"):
        resolve_results([prefix], tmp_path)
    other = f.sweep_result(64)
    save_result(other, _mkdir(tmp_path / "other"))
    (by_unique_prefix,), _ = resolve_results([other.experiment_id[:6]], tmp_path)
    assert by_unique_prefix.result == other
    (by_dir, by_file), problems = resolve_results(
        [str(item.directory), str(item.path)], tmp_path / "unused"
    )
    assert by_dir.result == by_file.result == target
    assert problems == []  # a path never searches the directory


def test_resolve_errors_name_what_was_wrong(tmp_path: Path) -> None:
    f.write_study(tmp_path, batch_sizes=(1,), cycles=1, telemetry=False)
    with pytest.raises(ResultLookupError, match=r"no result with experiment id 'zzz'.*1 results"):
        resolve_results(["zzz"], tmp_path)
    with pytest.raises(ResultLookupError, match="does not exist"):
        resolve_results(["zzz"], tmp_path / "missing")
    with pytest.raises(ResultLookupError, match=r"holds no result\.json"):
        resolve_results([str(tmp_path)], tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": "1.0"}))
    with pytest.raises(ResultFileError, match=r"bad\.json"):
        resolve_results([str(bad)], tmp_path)
