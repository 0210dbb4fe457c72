"""NVML meter against scripted traces: counter exact to the mJ, polling within 0.5%, caveats."""

from __future__ import annotations

from pathlib import Path

import pynvml
import pytest

from llenergymeasure.energy import nvml_api
from llenergymeasure.energy.nvml_api import (
    NvmlGpuLost,
    NvmlNoDriver,
    NvmlNoPermission,
    NvmlNotSupported,
    translate_nvml_error,
)
from llenergymeasure.errors import InstrumentError
from tests.fakes.fake_pynvml import (
    NVML_ERROR_DRIVER_NOT_LOADED,
    NVML_ERROR_NO_PERMISSION,
    FakeGpu,
    NVMLError,
    gpu_uuid,
)
from tests.fakes.rig import make_rig
from tests.fakes.traces import constant, ramp_plus_square

#: The acceptance trace: 100 -> 300 W over 10 s plus a +-50 W, 1 Hz square wave (load bursts).
TRACE = ramp_plus_square(100.0, 300.0, 10.0, amplitude_w=50.0, period_sec=1.0)


def test_trace_analytic_integral_is_what_we_think() -> None:
    # ramp alone: 100 W..300 W over 10 s = 2000 J; the square wave adds its partial period
    assert ramp_plus_square(amplitude_w=0.0).between(0, 10) == pytest.approx(2000.0)
    assert TRACE.between(0, 1.0) == pytest.approx(ramp_plus_square(amplitude_w=0).between(0, 1.0))
    assert TRACE.between(0, 0.5) == pytest.approx(
        ramp_plus_square(amplitude_w=0).between(0, 0.5) + 25
    )


def test_counter_energy_is_exact_to_the_millijoule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0), power=TRACE)])
    meter = rig.meter("nvml")
    assert meter.describe() == "nvml_energy_counter (gpu:0)"
    rig.clock.advance(0.0)
    meter.begin_window()
    rig.run(None, 10.0)
    window = meter.end_window()
    (gpu,) = window.devices
    assert gpu.method == "nvml_energy_counter" and gpu.confidence == "high"
    assert gpu.uid == gpu_uuid(0) and gpu.label == "gpu:0" and gpu.kind == "gpu"
    assert abs(gpu.energy_j - TRACE.between(0, 10)) <= 0.001
    assert window.duration_sec == pytest.approx(10.0)
    assert not [w for w in window.warnings if "shorter" in w]
    meter.close()
    assert rig.nvml.initialised == 0  # NVML shut down again


def test_counter_window_at_odd_edges_still_exact(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0), power=TRACE)])
    meter = rig.meter("nvml")
    rig.clock.advance(0.37)
    meter.begin_window()
    rig.clock.advance(7.777)
    window = meter.end_window()
    assert abs(window.devices[0].energy_j - TRACE.between(0.37, 0.37 + 7.777)) <= 0.001


def test_power_polling_within_half_a_percent_at_100ms(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(
        monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0), power=TRACE, has_energy_counter=False)]
    )
    meter = rig.meter("nvml")
    assert meter.describe() == "nvml_power_polling (gpu:0)"
    sampler = rig.sampler(meter, 0.1)
    meter.begin_window()
    rig.run(sampler, 10.0, 0.1)
    window = meter.end_window()
    (gpu,) = window.devices
    exact = TRACE.between(0, 10)
    assert gpu.method == "nvml_power_polling" and gpu.confidence == "medium"
    assert abs(gpu.energy_j - exact) / exact < 0.005
    assert any("~1 s average" in w and "trapezoid" in w for w in window.warnings)
    assert not any("power samples" in w for w in window.warnings)


@pytest.mark.parametrize("phase", [0.0, 0.013, 0.05, 0.077])
def test_power_polling_accuracy_does_not_depend_on_phase(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, phase: float
) -> None:
    rig = make_rig(
        monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0), power=TRACE, has_energy_counter=False)]
    )
    meter = rig.meter("nvml")
    sampler = rig.sampler(meter)
    rig.clock.advance(phase)
    meter.begin_window()
    rig.run(sampler, 10.0)
    window = meter.end_window()
    exact = TRACE.between(phase, phase + 10.0)
    assert abs(window.devices[0].energy_j - exact) / exact < 0.005


def test_polling_without_a_sampler_starts_its_own_thread_and_stops_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import threading

    rig = make_rig(
        monkeypatch,
        tmp_path,
        [FakeGpu(gpu_uuid(0), power=constant(150.0), has_energy_counter=False)],
    )
    meter = rig.meter("nvml", poll_interval_sec=0.01)
    meter.begin_window()
    assert [t for t in threading.enumerate() if t.name == "llem-telemetry"]
    rig.clock.advance(2.0)
    window = meter.end_window()
    assert not [t for t in threading.enumerate() if t.name == "llem-telemetry"]
    # constant power: any set of samples integrates exactly
    assert window.devices[0].energy_j == pytest.approx(300.0)


def test_short_window_warns_never_silent_zero(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gpu = FakeGpu(gpu_uuid(0), power=constant(200.0), counter_update_sec=0.1)
    rig = make_rig(monkeypatch, tmp_path, [gpu])
    meter = rig.meter("nvml")
    rig.clock.advance(0.01)
    meter.begin_window()
    rig.clock.advance(0.05)  # inside one counter update
    window = meter.end_window()
    assert window.devices[0].energy_j == 0.0
    assert any("shorter than ~10 updates" in w for w in window.warnings)
    assert any("did not advance" in w and "not a measurement" in w for w in window.warnings)
    assert window.devices[0].confidence == "low"  # like RAPL's stuck counter (issue 11 item 9)


def test_polling_short_window_warns_about_few_samples(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(
        monkeypatch,
        tmp_path,
        [FakeGpu(gpu_uuid(0), power=constant(200.0), has_energy_counter=False)],
    )
    meter = rig.meter("nvml")
    sampler = rig.sampler(meter)
    meter.begin_window()
    rig.run(sampler, 0.3)
    window = meter.end_window()
    assert window.devices[0].energy_j == pytest.approx(60.0)
    assert any("only 4 power samples" in w for w in window.warnings)


def test_counter_going_backwards_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gpu = FakeGpu(gpu_uuid(0))
    rig = make_rig(monkeypatch, tmp_path, [gpu])
    meter = rig.meter("nvml")
    meter.begin_window()
    rig.clock.advance(5)
    gpu.counter_offset_mj = 0  # driver reloaded
    with pytest.raises(InstrumentError, match="went backwards"):
        meter.end_window()


def test_mixed_gpus_each_reported_and_summed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gpus = [
        FakeGpu(gpu_uuid(0), power=constant(300.0)),
        FakeGpu(gpu_uuid(1), power=constant(120.0), has_energy_counter=False, name="Tesla P100"),
        FakeGpu(gpu_uuid(2), power=constant(50.0)),
    ]
    rig = make_rig(monkeypatch, tmp_path, gpus)
    rig.env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    meter = rig.meter("nvml")
    assert meter.describe() == ("nvml_energy_counter (gpu:0, gpu:2) + nvml_power_polling (gpu:1)")
    assert any("gpu:1: no energy counter" in w for w in meter.warnings)
    sampler = rig.sampler(meter)
    meter.begin_window()
    rig.run(sampler, 4.0)
    metrics = meter.end_window().to_energy_metrics()
    assert metrics.per_device_energy_j == pytest.approx(
        {"gpu:0": 1200.0, "gpu:1": 480.0, "gpu:2": 200.0}, abs=0.002
    )
    assert metrics.gpu_energy_j == pytest.approx(1880.0, abs=0.005)
    assert metrics.method == "nvml_energy_counter+nvml_power_polling"
    assert metrics.confidence == "medium"


def test_only_the_gpus_the_experiment_uses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gpus = [FakeGpu(gpu_uuid(i), power=constant(100.0 + i)) for i in range(4)]
    rig = make_rig(monkeypatch, tmp_path, gpus)
    rig.env["CUDA_VISIBLE_DEVICES"] = "2,3"
    meter = rig.meter("nvml", gpu_indices=[1])  # CUDA device 1 = NVML GPU 3
    assert [d.uid for d in meter.devices] == [gpu_uuid(3)]
    meter.begin_window()
    rig.clock.advance(1.0)
    assert meter.end_window().devices[0].energy_j == pytest.approx(103.0, abs=0.001)


def test_nvml_requested_but_no_driver_raises_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, nvml_error=NVML_ERROR_DRIVER_NOT_LOADED)
    with pytest.raises(
        InstrumentError, match="'nvml' is unavailable: no driver: the NVIDIA kernel"
    ):
        rig.meter("nvml")


def test_nvml_requested_with_no_visible_gpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0))])
    rig.env["CUDA_VISIBLE_DEVICES"] = ""
    with pytest.raises(InstrumentError, match="nothing to measure: no GPU visible"):
        rig.meter("nvml")
    assert rig.nvml.initialised == 0


def test_nvml_requested_index_out_of_range(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0))])
    with pytest.raises(InstrumentError, match="GPU index 3 is not visible"):
        rig.meter("nvml", gpu_indices=[3])
    assert rig.nvml.initialised == 0


def test_error_codes_match_real_pynvml() -> None:
    real = {
        "NVML_ERROR_UNINITIALIZED": nvml_api.NVML_ERROR_UNINITIALIZED,
        "NVML_ERROR_INVALID_ARGUMENT": nvml_api.NVML_ERROR_INVALID_ARGUMENT,
        "NVML_ERROR_NOT_SUPPORTED": nvml_api.NVML_ERROR_NOT_SUPPORTED,
        "NVML_ERROR_NO_PERMISSION": nvml_api.NVML_ERROR_NO_PERMISSION,
        "NVML_ERROR_NOT_FOUND": nvml_api.NVML_ERROR_NOT_FOUND,
        "NVML_ERROR_DRIVER_NOT_LOADED": nvml_api.NVML_ERROR_DRIVER_NOT_LOADED,
        "NVML_ERROR_LIBRARY_NOT_FOUND": nvml_api.NVML_ERROR_LIBRARY_NOT_FOUND,
        "NVML_ERROR_FUNCTION_NOT_FOUND": nvml_api.NVML_ERROR_FUNCTION_NOT_FOUND,
        "NVML_ERROR_GPU_IS_LOST": nvml_api.NVML_ERROR_GPU_IS_LOST,
        "NVML_ERROR_LIB_RM_VERSION_MISMATCH": nvml_api.NVML_ERROR_LIB_RM_VERSION_MISMATCH,
    }
    assert {name: getattr(pynvml, name) for name in real} == real


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (pynvml.NVMLError_LibraryNotFound, NvmlNoDriver, "no driver"),
        (pynvml.NVMLError_DriverNotLoaded, NvmlNoDriver, "no driver"),
        (pynvml.NVMLError_NoPermission, NvmlNoPermission, "no permission"),
        (pynvml.NVMLError_NotSupported, NvmlNotSupported, "not supported"),
        (pynvml.NVMLError_GpuIsLost, NvmlGpuLost, "GPU lost"),
    ],
)
def test_real_pynvml_errors_map_to_typed_errors(error: type, kind: type, status: str) -> None:
    mapped = translate_nvml_error(error(), "GPU 0 power")
    assert isinstance(mapped, kind) and isinstance(mapped, InstrumentError)
    assert mapped.status == status
    assert str(mapped).startswith("NVML GPU 0 power: ")


def test_real_pynvml_on_this_machine_says_no_driver() -> None:
    from llenergymeasure.energy.nvml_api import Nvml, NvmlError

    try:
        Nvml().close()
    except NvmlError as exc:
        assert exc.status in {"no driver", "not installed"}
    else:  # pragma: no cover - only on a GPU machine
        pytest.skip("NVML works here")


def test_telemetry_reads_survive_unsupported_fields(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gpu = FakeGpu(gpu_uuid(0), utilization_supported=False)
    rig = make_rig(monkeypatch, tmp_path, [gpu])
    meter = rig.meter("nvml")
    sampler = rig.sampler(meter)
    rig.run(sampler, 0.5)
    telemetry = sampler.stop()
    _, util = telemetry.series("gpu:0", "utilization_pct")
    _, power = telemetry.series("gpu:0", "power_w")
    assert util == [None] * 5 and power == [100.0] * 5
    # NotSupported is remembered: utilisation was asked once, not every tick
    assert rig.nvml.calls["nvmlDeviceGetUtilizationRates"] == 1
    assert not telemetry.warnings


def test_permission_error_on_counter_falls_back_to_polling(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0))])

    def denied(handle: object) -> int:
        raise NVMLError(NVML_ERROR_NO_PERMISSION)

    monkeypatch.setattr(rig.nvml, "nvmlDeviceGetTotalEnergyConsumption", denied)
    meter = rig.meter("nvml")
    assert meter.describe() == "nvml_power_polling (gpu:0)"
    assert any("no permission" in w for w in meter.warnings)


def test_power_polling_keeps_100ms_whatever_the_telemetry_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11 item 7: with telemetry every 5 s, a GPU without an energy counter is still
    polled every 100 ms (by the meter's own poller), not integrated from 5 s steps."""
    import re
    import threading
    import time

    rig = make_rig(
        monkeypatch,
        tmp_path,
        [FakeGpu(gpu_uuid(0), power=constant(150.0), has_energy_counter=False)],
    )
    meter = rig.meter("nvml")  # poll_interval_sec: 0.1 by default
    sampler = rig.sampler(meter, interval_sec=5.0)  # running, but far too slow for polling
    meter.begin_window()
    assert [t for t in threading.enumerate() if t.name == "llem-telemetry"]
    for _ in range(10):  # 1 s of trace time, with real time for the poller to run in
        rig.clock.advance(0.1)
        time.sleep(0.15)
    window = meter.end_window()
    sampler.stop()
    assert not [t for t in threading.enumerate() if t.name == "llem-telemetry"]
    (note,) = [w for w in window.warnings if "its energy integrates" in w]
    samples = int(re.search(r"integrates (\d+) nvmlDeviceGetPowerUsage", note).group(1))  # type: ignore[union-attr]
    assert samples >= 6  # ~11 at 100 ms; the 5 s telemetry alone would give the 2 edges
    assert not any("power samples in the" in w for w in window.warnings)
    assert window.devices[0].energy_j == pytest.approx(150.0)
