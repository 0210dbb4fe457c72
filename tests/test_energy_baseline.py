"""Idle baseline: measured through the meter, cached per device with a TTL, raw beside adjusted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llenergymeasure.energy import Baseline, BaselineCache, measure_baseline
from llenergymeasure.energy.baseline import default_cache_path
from tests.fakes.fake_pynvml import FakeGpu, gpu_uuid
from tests.fakes.rig import Rig, make_rig
from tests.fakes.traces import PowerTrace


def _step_trace(idle_w: float, load_w: float, load_from: float) -> PowerTrace:
    return PowerTrace(
        lambda t: idle_w if t < load_from else load_w,
        lambda t: idle_w * min(t, load_from) + load_w * max(0.0, t - load_from),
    )


def _rig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, idle_w: float = 60.0) -> Rig:
    gpus = [FakeGpu(gpu_uuid(0), power=_step_trace(idle_w, 300.0, load_from=10.0))]
    return make_rig(monkeypatch, tmp_path, gpus)


class WallClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_measured_then_cached_then_expired(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = _rig(monkeypatch, tmp_path)
    meter = rig.meter("auto")
    cache = tmp_path / "cache" / "idle.json"
    wall = WallClock()
    kw = {"cache_path": cache, "sleep": rig.clock.advance, "now_unix": wall, "ttl_sec": 600}

    first = measure_baseline(meter, seconds=10.0, **kw)
    assert first.method == "measured" and first.duration_sec == pytest.approx(10.0)
    assert first.power_w[gpu_uuid(0)] == pytest.approx(60.0, abs=1e-3)
    assert set(first.power_w) == {gpu_uuid(0), "node1:cpu-estimate", "node1:ram-estimate"}
    stored = json.loads(cache.read_text())["entries"]
    assert f"{gpu_uuid(0)}|nvml_energy_counter" in stored

    wall.now += 300
    second = measure_baseline(meter, seconds=10.0, **kw)
    assert second.method == "cached" and second.power_w == pytest.approx(first.power_w)
    assert "reused" in second.warnings[0] and "300 s ago" in second.warnings[0]
    assert rig.clock() == pytest.approx(1010.0)  # the cached call did not wait

    wall.now += 301
    third = measure_baseline(meter, seconds=10.0, **kw)
    assert third.method == "measured"


def test_zero_seconds_disables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = _rig(monkeypatch, tmp_path)
    baseline = measure_baseline(rig.meter("auto"), seconds=0)
    assert baseline.method == "none" and not baseline.power_w


def test_no_cache_always_measures(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = _rig(monkeypatch, tmp_path)
    monkeypatch.setenv("LLEM_CACHE_DIR", str(tmp_path / "c"))
    meter = rig.meter("nvml")
    measure_baseline(meter, 5.0, cache=False, sleep=rig.clock.advance)
    assert not (tmp_path / "c").exists()


def test_adjusted_energy_beside_raw(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = _rig(monkeypatch, tmp_path)
    meter = rig.meter("nvml")
    baseline = measure_baseline(
        meter, seconds=10.0, cache_path=tmp_path / "b.json", sleep=rig.clock.advance
    )
    meter.begin_window()
    rig.clock.advance(20.0)  # 300 W under load
    window = meter.end_window()
    metrics = window.to_energy_metrics(baseline)
    (gpu,) = metrics.devices
    assert gpu.energy_j == pytest.approx(6000.0, abs=0.002)
    assert gpu.baseline_power_w == pytest.approx(60.0, abs=1e-3)
    assert gpu.adjusted_energy_j == pytest.approx(6000.0 - 60.0 * 20.0, abs=0.05)
    assert metrics.total_energy_j == pytest.approx(6000.0, abs=0.002)
    assert metrics.adjusted_energy_j == pytest.approx(4800.0, abs=0.05)
    assert metrics.baseline_method == "measured"
    assert window.to_energy_metrics(baseline) == metrics  # idempotent


def test_floor_at_zero_is_warned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = _rig(monkeypatch, tmp_path)
    meter = rig.meter("nvml")
    meter.begin_window()
    rig.clock.advance(5.0)  # 60 W idle, but the baseline claims 100 W
    window = meter.end_window(baseline=Baseline({gpu_uuid(0): 100.0}, "cached"))
    (gpu,) = window.devices
    assert gpu.adjusted_energy_j == 0.0 and gpu.energy_j == pytest.approx(300.0, abs=0.002)
    assert any("floored at 0 J" in w and "gpu:0" in w for w in window.warnings)
    assert window.to_energy_metrics().baseline_method == "cached"


def test_baseline_missing_a_device_is_said(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = _rig(monkeypatch, tmp_path)
    meter = rig.meter("auto")
    meter.begin_window()
    rig.clock.advance(1.0)
    window = meter.end_window()
    metrics = window.to_energy_metrics(Baseline({gpu_uuid(0): 10.0}, "measured"))
    assert metrics.adjusted_energy_j is None and metrics.baseline_method == "none"
    assert any("no idle baseline for cpu, ram" in w for w in window.warnings)


def test_cache_is_per_instrument_and_survives_corruption(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = _rig(monkeypatch, tmp_path)
    path = tmp_path / "b.json"
    path.write_text("{not json")
    cache = BaselineCache(path)
    assert cache.load() == {}
    cache.store(
        {
            BaselineCache.key(gpu_uuid(0), "nvml_power_polling"): {
                "power_w": 1.0,
                "measured_at_unix": 0.0,
                "duration_sec": 1.0,
            }
        }
    )
    meter = rig.meter("nvml")  # counter, not polling: the entry does not apply
    wall = WallClock()
    wall.now = 10.0
    baseline = measure_baseline(
        meter, 10.0, cache_path=path, sleep=rig.clock.advance, now_unix=wall
    )
    assert baseline.method == "measured"
    assert len(cache.load()) == 2


def test_baseline_through_a_sampler_is_kept_out_of_thermal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = _rig(monkeypatch, tmp_path)
    meter = rig.meter("nvml")
    sampler = rig.sampler(meter)

    def sleep(seconds: float) -> None:
        rig.run(sampler, seconds)

    baseline = measure_baseline(sampler, 10.0, cache=False, sleep=sleep)
    assert baseline.power_w[gpu_uuid(0)] == pytest.approx(60.0, abs=1e-3)
    meter.begin_window()
    rig.run(sampler, 2.0)
    meter.end_window()
    telemetry = sampler.stop()
    assert [w[0] for w in telemetry.windows] == ["baseline", "measurement"]
    assert telemetry.measurement_window == pytest.approx((1010.0, 1012.0))


def test_default_cache_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLEM_CACHE_DIR", str(tmp_path))
    assert default_cache_path() == tmp_path / "idle_baseline.json"
    monkeypatch.delenv("LLEM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_path() == tmp_path / "x" / "llenergymeasure" / "idle_baseline.json"


def test_measure_baseline_rejects_other_sources() -> None:
    with pytest.raises(TypeError, match="EnergyMeter"):
        measure_baseline(object())


def test_no_floor_warning_from_float_rounding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11 item 13: a constant estimate equal to its baseline is not 'floored at 0 J'."""
    from llenergymeasure.domain.energy import DeviceEnergy
    from llenergymeasure.energy.base import EnergyWindow

    idle_w, duration = 0.1, 3.0
    assert idle_w * duration > 0.3  # 0.30000000000000004: the rounding that used to warn
    window = EnergyWindow(
        devices=[
            DeviceEnergy(
                uid="h:ram",
                label="ram",
                kind="ram",
                energy_j=0.3,
                method="estimate",
                confidence="low",
            ),
            DeviceEnergy(
                uid="h:cpu",
                label="cpu",
                kind="cpu",
                energy_j=0.2,
                method="estimate",
                confidence="low",
            ),
        ],
        duration_sec=duration,
        warnings=[],
        start_monotonic_sec=0.0,
        end_monotonic_sec=duration,
    )
    window.apply_baseline(Baseline({"h:ram": idle_w, "h:cpu": idle_w}, "measured"))
    floored = [w for w in window.warnings if "floored at 0 J" in w]
    assert len(floored) == 1 and floored[0].startswith("cpu:")  # 0.2 J < 0.3 J is real
    assert [d.adjusted_energy_j for d in window.devices] == [0.0, 0.0]


def _hot_then_idle_rig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Rig:
    """A GPU still at 300 W for 3 s after warmup, then at rest at 60 W."""
    trace = PowerTrace(
        lambda t: 300.0 if t < 3.0 else 60.0,
        lambda t: 300.0 * min(t, 3.0) + 60.0 * max(0.0, t - 3.0),
    )
    return make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0), power=trace)])


def test_baseline_is_measured_after_a_recorded_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11 item 5: right after warmup the device is still hot; after the settle time the
    baseline is the idle power, and the result says how long it rested and sampled."""
    rig = _hot_then_idle_rig(monkeypatch, tmp_path)
    meter = rig.meter("nvml")
    hot = measure_baseline(meter, 10.0, cache=False, sleep=rig.clock.advance)
    assert hot.power_w[gpu_uuid(0)] == pytest.approx((3 * 300 + 7 * 60) / 10, abs=1e-3)

    rig = _hot_then_idle_rig(monkeypatch, tmp_path / "b")
    meter = rig.meter("nvml")
    wall = WallClock()
    rested = measure_baseline(
        meter, 10.0, cache=False, settle_sec=3.0, sleep=rig.clock.advance, now_unix=wall
    )
    assert rested.power_w[gpu_uuid(0)] == pytest.approx(60.0, abs=1e-3)
    assert (rested.settle_sec, rested.samples) == (3.0, 100)  # every 100 ms for 10 s
    assert rested.duration_sec == pytest.approx(10.0)
    meter.begin_window()
    rig.clock.advance(4.0)
    window = meter.end_window()
    window.start_unix_sec = wall.now + 42.0  # the window began 42 s after the baseline ended
    info = window.to_energy_metrics(rested).baseline
    assert info is not None
    assert (info.method, info.settle_sec, info.samples) == ("measured", 3.0, 100)
    assert info.duration_sec == pytest.approx(10.0) and info.age_sec == pytest.approx(42.0)
    assert info.measured_at is not None and info.measured_at.timestamp() == wall.now


def test_cache_reused_only_for_as_long_and_as_rested_a_measurement(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11 item 5: a cached baseline of 5 s does not stand in for a 10 s one, nor one
    taken without rest for one asked after 5 s of rest; 'refresh' re-measures; False neither
    reads nor writes."""
    rig = _rig(monkeypatch, tmp_path)
    meter = rig.meter("nvml")
    cache = tmp_path / "idle.json"
    wall = WallClock()
    kw = {"cache_path": cache, "sleep": rig.clock.advance, "now_unix": wall}

    short = measure_baseline(meter, 5.0, **kw)
    assert short.method == "measured"
    assert measure_baseline(meter, 5.0, **kw).method == "cached"
    longer = measure_baseline(meter, 10.0, **kw)
    assert longer.method == "measured"
    assert any("measured for 5.0 s, less than the 10 s asked" in w for w in longer.warnings)
    cached = measure_baseline(meter, 10.0, **kw)  # the 10 s one replaced the 5 s one
    assert (cached.method, cached.duration_sec, cached.samples) == ("cached", 10.0, 100)
    assert measure_baseline(meter, 5.0, **kw).method == "cached"  # longer serves shorter

    rested = measure_baseline(meter, 10.0, settle_sec=5.0, **kw)
    assert rested.method == "measured"
    assert any("after 0 s at rest, less than the 5 s asked" in w for w in rested.warnings)
    assert measure_baseline(meter, 10.0, settle_sec=5.0, **kw).method == "cached"

    before = cache.read_text()
    wall.now += 1.0
    refreshed = measure_baseline(meter, 10.0, cache="refresh", **kw)
    assert refreshed.method == "measured" and cache.read_text() != before
    after_refresh = cache.read_text()
    off = measure_baseline(meter, 10.0, cache=False, **kw)
    assert off.method == "measured" and cache.read_text() == after_refresh


def test_baseline_cache_config_and_flags(tmp_path: Path) -> None:
    """Issue 11 item 5: `baseline_cache: false` in YAML and the CLI flags reach the config;
    the cache choice is not part of the config hash (it does not change what is measured)."""
    from llenergymeasure.config.loading import load_experiment_config

    path = tmp_path / "exp.yaml"
    path.write_text("baseline_cache: false\nbaseline_settle_sec: 2\n")
    config = load_experiment_config(path)
    assert config.baseline_cache is False and config.baseline_settle_sec == 2.0
    refresh = load_experiment_config(path, {"baseline_cache": "refresh"})
    assert refresh.baseline_cache == "refresh"
    assert refresh.config_hash() == config.config_hash()
    from llenergymeasure.errors import ConfigError

    path.write_text("baseline_cache: sometimes\n")
    with pytest.raises(ConfigError, match="baseline_cache"):
        load_experiment_config(path)
