"""Telemetry time series: traces per device, throttled intervals from NVML reason bits, gaps."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.domain import timeseries as col
from llenergymeasure.domain.metrics import (
    REASON_APPLICATIONS_CLOCKS_SETTING,
    REASON_GPU_IDLE,
    REASON_SW_POWER_CAP,
    REASON_SW_THERMAL_SLOWDOWN,
)
from llenergymeasure.results.collection import LoadedResult
from llenergymeasure.results.io import save_result
from llenergymeasure.results.telemetry import (
    load_telemetry,
    merge_intervals,
    sample_period,
    throttled_intervals,
)
from tests import factories as f


def _experiment(tmp_path: Path, table: pa.Table | None, **kw) -> LoadedResult:  # type: ignore[no-untyped-def]
    result = f.sweep_result(4, timeseries_file="ts.parquet", **kw)
    path = save_result(result, tmp_path / "result.json")
    if table is not None:
        pq.write_table(table, tmp_path / "ts.parquet")
    return LoadedResult(path, result)


def test_throttled_intervals_use_only_throttling_bits() -> None:
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    reasons = [
        REASON_GPU_IDLE,  # not throttling
        REASON_SW_THERMAL_SLOWDOWN,
        REASON_SW_THERMAL_SLOWDOWN | REASON_GPU_IDLE,
        REASON_APPLICATIONS_CLOCKS_SETTING,  # not throttling
        None,  # unknown: not counted
        REASON_SW_POWER_CAP,
        REASON_SW_POWER_CAP,
    ]
    assert throttled_intervals(times, reasons, 0.5) == [(0.5, 1.5), (2.5, 3.5)]
    # Order of samples does not matter.
    assert throttled_intervals(times[::-1], reasons[::-1], 0.5) == [(0.5, 1.5), (2.5, 3.5)]


def test_sample_period_is_the_median_gap() -> None:
    assert sample_period([0.0, 0.1, 0.2, 0.3, 1.0]) == 0.1
    assert sample_period([5.0]) == 0.0


@given(
    st.lists(st.tuples(st.floats(0, 100), st.floats(0, 10)), max_size=20),
    st.lists(st.floats(-1, 111), max_size=20),
)
def test_merged_intervals_cover_the_same_points(
    raw: list[tuple[float, float]], points: list[float]
) -> None:
    intervals = [(a, a + w) for a, w in raw]
    merged = merge_intervals(intervals)
    for (_, end), (start, _) in itertools.pairwise(merged):
        assert end < start  # disjoint, sorted
    for point in points + [a for a, _ in intervals] + [b for _, b in intervals]:
        in_original = any(a <= point <= b for a, b in intervals)
        in_merged = any(a <= point <= b for a, b in merged)
        near_original = any(a - 1e-6 <= point <= b + 1e-6 for a, b in intervals)
        assert in_merged == in_original or (in_merged and near_original)


def test_load_two_devices_and_the_throttled_window(tmp_path: Path) -> None:
    table = f.telemetry_table(devices=("gpu:1", "gpu:0"), throttle_windows=((4.0, 6.0),))
    telemetry = load_telemetry(_experiment(tmp_path, table))
    assert telemetry is not None and telemetry.notes == []
    assert [t.device for t in telemetry.traces] == ["gpu:0", "gpu:1"]
    gpu0, gpu1 = telemetry.traces
    assert len(gpu0.time_sec) == 101 and gpu0.time_sec == sorted(gpu0.time_sec)
    assert (gpu1.power_w[0], gpu0.power_w[0], gpu0.temperature_c[0]) == (150.0, 155.0, 55.0)
    ((start, end),) = telemetry.throttled
    assert math.isclose(start, 4.0) and math.isclose(end, 6.0)
    assert math.isclose(telemetry.throttled_sec, 2.0)
    assert telemetry.has("power_w") and telemetry.has("temperature_c")


def test_missing_and_null_columns_are_tolerated(tmp_path: Path) -> None:
    table = f.telemetry_table(drop=(col.TEMPERATURE_C, col.DEVICE, col.CLOCK_EVENT_REASONS))
    power = table.column("power_w").to_pylist()
    power[3] = None
    table = table.set_column(table.column_names.index("power_w"), "power_w", pa.array(power))
    telemetry = load_telemetry(_experiment(tmp_path, table))
    assert telemetry is not None
    (trace,) = telemetry.traces
    assert trace.device == "device"
    assert math.isnan(trace.power_w[3]) and not math.isnan(trace.power_w[4])
    assert not telemetry.has("temperature_c")
    assert telemetry.throttled == []  # no reasons and no throttle timestamps in the result


def test_without_reason_column_the_result_timestamps_are_shaded(tmp_path: Path) -> None:
    table = f.telemetry_table(drop=(col.CLOCK_EVENT_REASONS,))
    item = _experiment(tmp_path, table, thermal=f.throttled(timestamps=[4.0, 4.1, 4.2]))
    telemetry = load_telemetry(item)
    assert telemetry is not None
    ((start, end),) = telemetry.throttled
    assert math.isclose(start, 4.0) and math.isclose(end, 4.3)
    assert any("throttle timestamps" in n for n in telemetry.notes)


def test_missing_unreadable_and_absent_files(tmp_path: Path) -> None:
    missing = load_telemetry(_experiment(tmp_path / "a", None))
    assert missing is not None and missing.traces == []
    assert "ts.parquet is named in the result but missing" in missing.notes[0]
    corrupt = _experiment(tmp_path / "b", None)
    (corrupt.directory / "ts.parquet").write_bytes(b"PAR1 not really")
    notes = load_telemetry(corrupt).notes  # type: ignore[union-attr]
    assert "cannot be read" in notes[0] and "ts.parquet" in notes[0]
    no_time = _experiment(tmp_path / "c", f.telemetry_table(drop=(col.TIME_SEC,)))
    assert "no time_sec column" in load_telemetry(no_time).notes[0]  # type: ignore[union-attr]
    plain = f.experiment_result()
    assert load_telemetry(LoadedResult(tmp_path / "result.json", plain)) is None


def test_files_of_older_writers_are_read(tmp_path: Path) -> None:
    """Issue 11 item 2: files written before the columns were shared (``t_sec``) still draw."""
    table = f.telemetry_table()
    table = table.rename_columns(["t_sec" if n == col.TIME_SEC else n for n in table.column_names])
    telemetry = load_telemetry(_experiment(tmp_path, table))
    assert telemetry is not None and telemetry.notes == []
    assert telemetry.has(col.POWER_W) and len(telemetry.traces[0].time_sec) == 101


def test_processes_are_drawn_on_the_first_window_start(tmp_path: Path) -> None:
    """Issue 11 item 8: process 1's window began 3 s after process 0's; its samples (seconds
    from its own window start) are drawn 3 s later, and so is its throttling."""
    from datetime import timedelta

    p0 = f.process_result(0, 2, timeseries_file="ts0.parquet")
    p1 = f.process_result(
        1,
        2,
        start_time=p0.start_time + timedelta(seconds=3),
        timeseries_file="ts1.parquet",
    )
    result = f.experiment_result(process=p0).model_copy(update={"process_results": [p0, p1]})
    path = save_result(result, tmp_path / "result.json")
    pq.write_table(
        f.telemetry_table(duration_sec=2.0, devices=("gpu:0",), throttle_windows=()),
        tmp_path / "ts0.parquet",
    )
    pq.write_table(
        f.telemetry_table(duration_sec=2.0, devices=("gpu:1",), throttle_windows=((0.0, 1.0),)),
        tmp_path / "ts1.parquet",
    )
    telemetry = load_telemetry(LoadedResult(path, result))
    assert telemetry is not None
    gpu0, gpu1 = telemetry.traces
    assert gpu0.time_sec[0] == 0.0 and gpu1.time_sec[0] == pytest.approx(3.0)
    ((start, end),) = telemetry.throttled
    assert (start, end) == (pytest.approx(3.0), pytest.approx(4.0))
