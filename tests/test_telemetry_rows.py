"""The telemetry thread's per-tick path: ready rows from each channel, the same values recorded.

The thread asks each channel for a ``TelemetryRow`` (NVML bindings resolved once, no reading
object per tick) and extends the columns once per tick; these tests pin that the values, the
order of columns, error handling and the CPU-times figures are what the reading-by-reading path
recorded before.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure.energy import TelemetrySampler, estimate
from llenergymeasure.energy.base import EMPTY_ROW, NO_REASONS, TelemetryReading
from llenergymeasure.energy.estimate import proc_stat_cpu_times, psutil_cpu_times
from llenergymeasure.energy.nvml import NvmlChannel, NvmlPowerChannel
from llenergymeasure.energy.timeseries import COLUMNS, READING_COLUMNS
from tests.fakes.fake_pynvml import NVML_ERROR_GPU_IS_LOST, FakeGpu, NVMLError, gpu_uuid
from tests.fakes.rig import Rig, make_rig
from tests.fakes.traces import constant


def test_row_order_is_the_tables_and_round_trips() -> None:
    fields = tuple(f.name for f in dataclasses.fields(TelemetryReading))
    assert fields == READING_COLUMNS == COLUMNS[3:]
    for row in (TelemetryReading().row(), EMPTY_ROW):
        assert all(math.isnan(v) for v in row[:6]) and row[6] == NO_REASONS
    full = TelemetryReading(300.5, 1234.567, 61.0, 1980.0, 11444.09, 87.0, 0x20)
    assert full.row() == (300.5, 1234.567, 61.0, 1980.0, 11444.09, 87.0, 0x20)
    assert TelemetryReading.from_row(full.row()) == full
    assert TelemetryReading.from_row(TelemetryReading(power_w=5.0).row()) == TelemetryReading(
        power_w=5.0
    )


def test_recorded_values_are_the_devices_readings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gpus = [
        FakeGpu(gpu_uuid(0), power=constant(250.0), reasons=lambda t: 4),
        FakeGpu(gpu_uuid(1), power=constant(100.0), temperature_c=lambda t: 70.0 + t),
    ]
    rig = make_rig(monkeypatch, tmp_path, gpus)
    rig.cpu.set_busy(0.25)
    meter = rig.meter("auto")
    sampler = rig.sampler(meter)
    t0 = rig.clock()
    rig.run(sampler, 0.3)
    telemetry = sampler.stop()
    c = telemetry.columns
    # 3 ticks; each: gpu:0, gpu:1, cpu (the RAM estimate has no samples)
    assert list(c["tick"]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert list(c["device_index"]) == [0, 1, 2] * 3
    times = [t - t0 for t in c["monotonic_sec"]]
    assert times == pytest.approx([0.1] * 3 + [0.2] * 3 + [0.3] * 3)
    assert list(c["power_w"][:2]) == [250.0, 100.0]
    assert list(c["temperature_c"][:2]) == [45.0, 70.0]  # rounded, as NVML gives integers
    # slow fields only every SLOW_FIELDS_EVERY_SEC; power every tick
    assert math.isnan(c["temperature_c"][3]) and c["power_w"][3] == 250.0
    assert list(c["sm_clock_mhz"][:2]) == [1980.0, 1980.0]
    assert list(c["memory_used_mb"][:2]) == [12e9 / 2**20] * 2
    assert list(c["utilization_pct"][:2]) == [90.0, 90.0]
    assert list(c["clock_event_reasons"][:2]) == [4, 0]
    # the counter: offset + integral, in joules, on the fake clock
    assert c["energy_counter_j"][3] == pytest.approx((987_654_321 + 250.0 * 200) / 1000.0)
    # the CPU estimate: nothing on its first sample, then share x W/core x cores
    assert math.isnan(c["power_w"][2]) and c["clock_event_reasons"][2] == NO_REASONS
    assert c["power_w"][5] == pytest.approx(0.25 * 280.0)
    assert c["utilization_pct"][5] == pytest.approx(25.0)
    assert math.isnan(c["temperature_c"][5])
    assert telemetry.series("gpu:1", "temperature_c")[1] == [70.0, None, None]
    assert not any(math.isnan(c["energy_counter_j"][k]) for k in (0, 1, 3, 4, 6, 7))


def test_a_failed_read_is_a_gap_and_a_warning_and_read_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0))])
    real = rig.nvml.nvmlDeviceGetTemperature
    failures = iter([True])

    def flaky(handle: object, sensor: int) -> int:
        if next(failures, False):
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return real(handle, sensor)

    monkeypatch.setattr(rig.nvml, "nvmlDeviceGetTemperature", flaky)
    meter = rig.meter("nvml")
    sampler = rig.sampler(meter)
    rig.run(sampler, 0.6)  # ticks at 0.1 ... 0.6 s: the slow fields at 0.1 and 0.6 s
    telemetry = sampler.stop()
    _, temperature = telemetry.series("gpu:0", "temperature_c")
    _, power = telemetry.series("gpu:0", "power_w")
    assert temperature == [None, None, None, None, None, 45.0]
    assert power == [100.0] * 6
    assert telemetry.warnings == [
        "telemetry: NVML gpu:0 temperature: the GPU is lost (fell off the bus or needs a reset)"
    ]
    channel = meter.telemetry_channels()[0]
    assert isinstance(channel, NvmlChannel) and channel.unavailable_fields == []


def _nvml_channel(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gpu: FakeGpu
) -> tuple[Rig, NvmlChannel]:
    """A rig with one fake GPU and the telemetry channel its `nvml` meter reads it with."""
    rig = make_rig(monkeypatch, tmp_path, [gpu])
    channel = rig.meter("nvml").telemetry_channels()[0]
    assert isinstance(channel, NvmlChannel)
    return rig, channel


@pytest.mark.parametrize("counter", [True, False])
def test_slow_fields_are_read_every_half_second_and_the_rest_every_tick(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, counter: bool
) -> None:
    from llenergymeasure.energy.nvml import SLOW_FIELDS_EVERY_SEC

    assert SLOW_FIELDS_EVERY_SEC == 0.5
    rig, channel = _nvml_channel(
        monkeypatch, tmp_path, FakeGpu(gpu_uuid(0), has_energy_counter=counter)
    )
    calls = rig.nvml.calls
    before = dict(calls)
    # 10 Hz with timer jitter: a tick a little early still reads the slow fields on time
    ticks = [0.0, 0.1, 0.2, 0.3, 0.4, 0.498, 0.6, 0.7, 0.8, 0.9, 0.997, 1.1]
    rows = [channel.sample_row(t) for t in ticks]
    slow = [i for i, row in enumerate(rows) if not math.isnan(row[2])]  # temperature
    assert slow == [0, 5, 10]
    for i, row in enumerate(rows):
        reads_slow = i in slow
        assert [not math.isnan(v) for v in row[2:6]] == [reads_slow] * 4  # temp, clock, mem, util
        assert not math.isnan(row[0])  # power, every tick
        assert (not math.isnan(row[1])) == counter  # the counter, every tick
    made = {name: calls[name] - before.get(name, 0) for name in calls}
    assert made["nvmlDeviceGetTemperature"] == made["nvmlDeviceGetClockInfo"] == 3
    assert made["nvmlDeviceGetMemoryInfo"] == made["nvmlDeviceGetUtilizationRates"] == 3
    assert made["nvmlDeviceGetPowerUsage"] == len(ticks)
    assert made.get("nvmlDeviceGetTotalEnergyConsumption", 0) == (len(ticks) if counter else 0)
    assert made["clock_event_reasons"] == len(ticks)  # the fake's name for either binding


def test_unsupported_fields_are_listed_and_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig, channel = _nvml_channel(
        monkeypatch, tmp_path, FakeGpu(gpu_uuid(0), utilization_supported=False)
    )
    reading = channel.sample(0.0)
    assert reading.utilization_pct is None and reading.power_w == 100.0
    assert reading.energy_counter_j is not None
    assert channel.unavailable_fields == ["utilization"]
    channel.sample(0.1)
    assert rig.nvml.calls["nvmlDeviceGetUtilizationRates"] == 1


def test_power_channel_integrates_only_power_it_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig, channel = _nvml_channel(
        monkeypatch, tmp_path, FakeGpu(gpu_uuid(0), has_energy_counter=False)
    )
    assert isinstance(channel, NvmlPowerChannel)
    real = rig.nvml.nvmlDeviceGetPowerUsage
    channel.start(0.0)
    channel.sample_row(0.1)
    assert channel._integrator.samples == 2
    # the telemetry read does not ask for the counter this GPU lacks
    assert math.isnan(channel.sample_row(0.2)[1])
    assert channel._integrator.samples == 3
    channel._reads[0] = lambda handle: (_ for _ in ()).throw(NVMLError(NVML_ERROR_GPU_IS_LOST))
    assert math.isnan(channel.sample_row(0.3)[0])
    assert channel._integrator.samples == 3 and len(channel.sample_errors) == 1
    channel._reads[0] = real
    assert channel.sample(0.4).power_w == 100.0 and channel._integrator.samples == 4


def test_stop_wakes_the_thread_at_once_and_twice_is_harmless() -> None:
    sampler = TelemetrySampler([], interval_sec=30.0).start()
    time.sleep(0.05)
    t0 = time.monotonic()
    first = sampler.stop()
    assert time.monotonic() - t0 < 2.0
    assert first.tick_times and sampler.stop().tick_times == first.tick_times


def test_threaded_sampler_records_whole_ticks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(i)) for i in range(3)])
    meter = rig.meter("auto")
    sampler = TelemetrySampler(meter, interval_sec=0.01, clock=time.monotonic).start()
    time.sleep(0.1)
    telemetry = sampler.stop()
    ticks = len(telemetry.tick_times)
    assert ticks >= 2
    assert all(len(column) == 4 * ticks for column in telemetry.columns.values())
    assert list(telemetry.columns["device_index"]) == [0, 1, 2, 3] * ticks


def _stat_file(directory: str, jiffies: list[int]) -> str:
    path = os.path.join(directory, "stat")
    with open(path, "w") as f:
        f.write("cpu  " + " ".join(map(str, jiffies)) + "\n")
        f.write("cpu0 " + " ".join(map(str, jiffies)) + "\n")
        f.write("intr 12345 0 0 0\nctxt 99\n")
    return path


@pytest.mark.skipif(sys.platform != "linux", reason="psutil reads /proc/stat on Linux only")
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**48), min_size=10, max_size=10))
def test_proc_stat_times_equal_psutils_exactly(jiffies: list[int]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = _stat_file(directory, jiffies)
        saved = psutil.PROCFS_PATH
        psutil.PROCFS_PATH = directory
        try:
            expected = psutil_cpu_times()
            assert proc_stat_cpu_times(path) == expected  # the same floats, not approximately
            assert estimate.system_cpu_times() == expected  # honours psutil.PROCFS_PATH
        finally:
            psutil.PROCFS_PATH = saved


def test_proc_stat_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stat"
    path.write_text("not a stat file\n")
    with pytest.raises(ValueError, match="unexpected first line"):
        proc_stat_cpu_times(str(path))
    with pytest.raises(OSError):
        proc_stat_cpu_times(str(tmp_path / "missing"))


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/stat is Linux's")
def test_live_system_cpu_times_use_proc_stat_and_agree_with_psutil() -> None:
    fast = estimate.system_cpu_times()
    slow = psutil_cpu_times()
    assert estimate._fast_times_work is True
    # the descriptor kept open reads the kernel's figures afresh each time
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        pass
    assert estimate.system_cpu_times().total_sec > slow.total_sec
    # read a moment apart: psutil's is later, by at most a few jiffies per CPU
    assert fast.total_sec <= slow.total_sec <= fast.total_sec + 0.5 * (os.cpu_count() or 1)
    assert fast.busy_sec <= slow.busy_sec


def test_kept_open_reader_sees_a_rewritten_file_and_follows_the_path(tmp_path: Path) -> None:
    reader = estimate._ProcStatReader()
    first = _stat_file(str(tmp_path), [100] * 10)
    assert reader(first) == proc_stat_cpu_times(first)
    with open(first, "r+") as f:  # rewritten in place, as the kernel does on every read
        f.write("cpu  200 100 100 100 100 100 100 100 100 100\n")
    assert reader(first) == proc_stat_cpu_times(first) == (6.0, 9.0)
    other = tmp_path / "other"
    other.mkdir()
    second = _stat_file(str(other), [300] * 10)
    assert reader(second) == proc_stat_cpu_times(second)
