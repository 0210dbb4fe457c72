"""The telemetry thread: scripted reason traces -> throttle flags, duration, timestamps; Parquet."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from llenergymeasure.domain import timeseries as columns
from llenergymeasure.domain.metrics import (
    REASON_GPU_IDLE,
    REASON_HW_SLOWDOWN,
    REASON_SW_POWER_CAP,
    REASON_SW_THERMAL_SLOWDOWN,
)
from llenergymeasure.energy import TelemetrySampler
from llenergymeasure.energy.timeseries import read_parquet_metadata
from tests.fakes.fake_pynvml import FakeGpu, FakePynvml, gpu_uuid, install
from tests.fakes.rig import Rig, make_rig
from tests.fakes.traces import constant, steps


def _throttle_rig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Rig:
    gpus = [
        FakeGpu(
            gpu_uuid(0),
            power=constant(300.0),
            reasons=steps((0.0, REASON_GPU_IDLE), (2.03, REASON_SW_THERMAL_SLOWDOWN), (5.01, 0)),
            temperature_c=lambda t: 40.0 + 5.0 * t,
        ),
        FakeGpu(
            gpu_uuid(1),
            power=constant(250.0),
            reasons=steps((7.0, REASON_HW_SLOWDOWN), (7.46, 0), (20.0, REASON_SW_POWER_CAP)),
            temperature_c=lambda t: 60.0,
        ),
    ]
    return make_rig(monkeypatch, tmp_path, gpus)


def test_reasons_trace_gives_flags_duration_and_timestamps(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = _throttle_rig(monkeypatch, tmp_path)
    meter = rig.meter("nvml")
    sampler = rig.sampler(meter, 0.1)
    sampler.sample_once()
    rig.run(sampler, 1.0)  # before the window: ignored by the window's thermal figures
    meter.begin_window()
    t0 = rig.clock()
    rig.run(sampler, 10.0)
    meter.end_window()
    rig.run(sampler, 15.0)  # after the window (GPU 1 hits the power cap at 20 s)
    telemetry = sampler.stop()

    info = telemetry.thermal
    assert info.detected and info.thermal and info.sw_thermal and info.power
    assert not info.hw_thermal and not info.hw_power  # HwSlowdown alone is power, not brake
    true_duration = (5.01 - 2.03) + (7.46 - 7.0)
    assert abs(info.throttle_duration_sec - true_duration) <= 0.1
    # trace time = window time + 1 s; throttled ticks from 2.1 s to 5.0 s and 7.0 to 7.4 s,
    # stored as intervals (start, end, cause) to the next tick; timestamps are their starts
    spans = [(round(i.start_sec, 6), round(i.end_sec, 6), i.cause) for i in info.throttle_intervals]
    assert spans == [(1.1, 4.1, "sw_thermal"), (6.0, 6.5, "hw_slowdown")]
    assert info.throttle_duration_sec == pytest.approx(3.0 + 0.5)
    assert [round(s, 6) for s in info.throttle_timestamps] == [1.1, 6.0]
    assert info.max_temperature_c == pytest.approx(40.0 + 5.0 * 11.0)  # at the window's end
    assert telemetry.measurement_window == (t0, t0 + 10.0)

    # the whole run, power cap included
    whole = telemetry.thermal_between(telemetry.start_monotonic_sec, telemetry.stop_monotonic_sec)
    assert whole.power and whole.throttle_duration_sec > info.throttle_duration_sec + 5.0


@pytest.mark.parametrize("interval", [0.05, 0.1, 0.25, 1.0])
def test_duration_within_one_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, interval: float
) -> None:
    rig = _throttle_rig(monkeypatch, tmp_path)
    meter = rig.meter("nvml")
    sampler = rig.sampler(meter, interval)
    meter.begin_window()
    sampler.sample_once()
    rig.run(sampler, 10.0, interval)
    meter.end_window()
    info = sampler.stop().thermal
    true_duration = (5.01 - 2.03) + (7.46 - 7.0)
    assert abs(info.throttle_duration_sec - true_duration) <= 2 * interval  # two throttle spells
    assert all(0 <= s <= 10.0 for s in info.throttle_timestamps)


def test_old_binding_name_for_reasons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(
        monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0), reasons=lambda t: REASON_HW_SLOWDOWN)]
    )
    old = FakePynvml(rig.nvml.gpus, rig.clock, clocks_event_reasons_api=False)
    install(monkeypatch, old)
    assert not hasattr(old, "nvmlDeviceGetCurrentClocksEventReasons")
    meter = rig.meter("nvml")
    sampler = rig.sampler(meter)
    rig.run(sampler, 1.0)
    info = sampler.stop().thermal
    assert info.power and info.throttle_duration_sec == pytest.approx(1.0 - 0.0, abs=0.1 + 1e-9)


def test_parquet_one_row_per_sample_and_device(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = _throttle_rig(monkeypatch, tmp_path)
    meter = rig.meter("nvml")
    sampler = rig.sampler(meter)
    meter.begin_window()
    rig.run(sampler, 3.0)
    meter.end_window()
    telemetry = sampler.stop()
    path = telemetry.write_parquet(tmp_path / "out" / "timeseries.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 30 * 2 == telemetry.rows
    assert tuple(table.column_names) == columns.COLUMNS  # the one definition (issue 11 item 2)
    assert table.column_names[:3] == ["tick", "time_sec", "monotonic_sec"]
    rows = table.to_pylist()
    gpu0 = [r for r in rows if r["device"] == "gpu:0"]
    times = [r["monotonic_sec"] for r in gpu0]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert gpu0[0]["uid"] == gpu_uuid(0) and gpu0[0]["kind"] == "gpu"
    assert gpu0[0]["power_w"] == 300.0 and gpu0[0]["memory_used_mb"] == 12_000_000_000 / 2**20
    assert gpu0[0]["sm_clock_mhz"] == 1980.0 and gpu0[0]["utilization_pct"] == 90.0
    assert [r["throttled"] for r in gpu0][19:22] == [False, True, True]  # 2.0 s, 2.1 s, 2.2 s
    # the counter column is the raw cumulative counter, rising 30 J per 0.1 s at 300 W
    counter = [r["energy_counter_j"] for r in gpu0]
    assert counter[1] - counter[0] == pytest.approx(30.0, abs=0.002)
    meta = read_parquet_metadata(path)
    assert meta["interval_sec"] == 0.1
    assert [w["label"] for w in meta["windows"]] == ["measurement"]
    assert [d["label"] for d in meta["devices"]] == ["gpu:0", "gpu:1"]
    assert not list((tmp_path / "out").glob("*.tmp"))
    # time runs from the measurement window's start
    window_start = meta["windows"][0]["start_monotonic_sec"]
    assert meta["time_origin_monotonic_sec"] == window_start
    assert [r["time_sec"] for r in gpu0] == pytest.approx([t - window_start for t in times])


def test_attached_running_sampler_is_the_only_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(
        monkeypatch,
        tmp_path,
        [FakeGpu(gpu_uuid(0), power=constant(200.0), has_energy_counter=False)],
    )
    meter = rig.meter("nvml")
    sampler = TelemetrySampler(meter, interval_sec=0.01)
    sampler.start()
    try:
        meter.begin_window()
        threads = [t for t in threading.enumerate() if t.name == "llem-telemetry"]
        assert len(threads) == 1
        time.sleep(0.1)
        rig.clock.advance(1.0)
        time.sleep(0.05)
        window = meter.end_window()
    finally:
        telemetry = sampler.stop()
    assert window.devices[0].energy_j == pytest.approx(200.0)
    assert telemetry.rows >= 5
    assert telemetry.thread_wall_sec > 0.1 and telemetry.thread_cpu_sec >= 0
    assert not [t for t in threading.enumerate() if t.name == "llem-telemetry"]


def test_sampler_stopping_mid_window_hands_polling_back_to_the_meter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(
        monkeypatch,
        tmp_path,
        [FakeGpu(gpu_uuid(0), power=constant(200.0), has_energy_counter=False)],
    )
    meter = rig.meter("nvml", poll_interval_sec=0.1)
    sampler = rig.sampler(meter)  # every 0.1 s: often enough, so the meter runs no thread
    meter.begin_window()
    assert not [t for t in threading.enumerate() if t.name == "llem-telemetry"]
    sampler.stop()
    assert [t for t in threading.enumerate() if t.name == "llem-telemetry"]
    rig.clock.advance(1.0)
    assert meter.end_window().devices[0].energy_j == pytest.approx(200.0)
    assert not [t for t in threading.enumerate() if t.name == "llem-telemetry"]


def test_sampler_over_channels_without_a_meter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(
        monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0), reasons=lambda t: REASON_SW_POWER_CAP)]
    )
    meter = rig.meter("nvml")
    sampler = TelemetrySampler(meter.telemetry_channels(), interval_sec=0.5, clock=rig.clock)
    sampler.start(background=False)
    rig.run(sampler, 2.0, 0.5)
    telemetry = sampler.stop()
    assert telemetry.measurement_window is None
    assert telemetry.thermal.power and telemetry.thermal.throttle_duration_sec == pytest.approx(1.5)


def test_invalid_interval() -> None:
    with pytest.raises(ValueError, match="interval_sec must be > 0"):
        TelemetrySampler([], interval_sec=0)


def test_missing_values_are_nulls_and_empty_runs_write(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path)  # no GPU: the CPU estimate is sampled
    meter = rig.meter("auto")
    sampler = rig.sampler(meter)
    rig.cpu.set_busy(0.5)
    rig.run(sampler, 0.3)
    path = sampler.stop().write_parquet(tmp_path / "cpu.parquet")
    rows = pq.read_table(path).to_pylist()
    assert [r["device"] for r in rows] == ["cpu"] * 3  # RAM (constant) has no samples
    assert rows[0]["power_w"] is None  # the first sample has no previous one to diff
    assert rows[1]["power_w"] == pytest.approx(0.5 * 280.0)
    assert rows[1]["utilization_pct"] == pytest.approx(50.0)
    assert rows[1]["temperature_c"] is None and rows[1]["clock_event_reasons"] is None
    assert rows[1]["throttled"] is None

    empty = TelemetrySampler([], 0.1).start(background=False).stop()
    assert pq.read_table(empty.write_parquet(tmp_path / "empty.parquet")).num_rows == 0
    assert not empty.thermal.detected and empty.thermal.max_temperature_c is None


def test_long_throttling_is_one_interval_not_a_timestamp_per_sample(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11 item 8: ten minutes throttled at 10 Hz is one (start, end, cause) interval and
    one timestamp (6000 timestamps before)."""
    gpus = [FakeGpu(gpu_uuid(0), reasons=lambda t: REASON_SW_POWER_CAP)]
    rig = make_rig(monkeypatch, tmp_path, gpus)
    meter = rig.meter("nvml")
    sampler = rig.sampler(meter, 0.1)
    meter.begin_window()
    sampler.sample_once()
    rig.run(sampler, 600.0)
    meter.end_window()
    info = sampler.stop().thermal
    ((start, end, cause),) = [(i.start_sec, i.end_sec, i.cause) for i in info.throttle_intervals]
    assert (start, cause) == (0.0, "sw_power_cap") and end == pytest.approx(600.0)
    assert info.throttle_timestamps == [0.0]
    assert info.throttle_duration_sec == pytest.approx(600.0) and info.power
