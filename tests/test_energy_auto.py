"""Every branch of `auto`, and the CUDA_VISIBLE_DEVICES -> NVML mapping it relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.energy import create_meter
from llenergymeasure.errors import InstrumentError
from tests.fakes.fake_powercap import standard_tree
from tests.fakes.fake_pynvml import NVML_ERROR_GPU_IS_LOST, FakeGpu, NVMLError, gpu_uuid
from tests.fakes.rig import Rig, make_rig
from tests.fakes.traces import constant


def _gpus(n: int = 2, **kw: object) -> list[FakeGpu]:
    return [FakeGpu(gpu_uuid(i), power=constant(100.0 * (i + 1)), **kw) for i in range(n)]  # type: ignore[arg-type]


def _rapl(rig: Rig, *, dram: bool = True) -> None:
    standard_tree(rig.powercap_root, dram=dram)


def _measure(rig: Rig, seconds: float = 2.0) -> tuple[list[str], dict[str, float], str]:
    meter = rig.meter("auto")
    meter.begin_window()
    rig.clock.advance(seconds)
    window = meter.end_window()
    metrics = window.to_energy_metrics()
    meter.close()
    return window.warnings, metrics.per_device_energy_j, metrics.method


def test_nvml_and_rapl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path, _gpus())
    _rapl(rig)
    meter = rig.meter("auto")
    assert meter.describe() == (
        "nvml_energy_counter (gpu:0, gpu:1) + rapl (cpu:package-0, ram:package-0)"
    )
    assert meter.warnings == [f"energy instruments chosen by auto: {meter.describe()}"]
    meter.close()
    _, energy, method = _measure(rig)
    assert energy == pytest.approx(
        {"gpu:0": 200.0, "gpu:1": 400.0, "cpu:package-0": 0.0, "ram:package-0": 0.0}, abs=0.002
    )
    assert method == "nvml_energy_counter+rapl"


def test_nvml_without_rapl_estimates_cpu_and_ram(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, _gpus(1))
    meter = rig.meter("auto")
    assert meter.describe() == "nvml_energy_counter (gpu:0) + estimate (cpu, ram)"
    assert meter.warnings[0].startswith("RAPL skipped: absent: ")
    warnings, _, method = _measure(rig)
    assert method == "nvml_energy_counter+estimate"
    assert any("cpu energy is an estimate" in w for w in warnings)


def test_rapl_unreadable_falls_back_to_estimate_and_says_how_to_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.test_energy_rapl import _deny

    rig = make_rig(monkeypatch, tmp_path, _gpus(1))
    _rapl(rig)
    _deny(
        monkeypatch,
        rig.powercap_root / "intel-rapl:0" / "energy_uj",
        rig.powercap_root / "intel-rapl:0:1" / "energy_uj",
    )
    meter = rig.meter("auto")
    assert meter.describe() == "nvml_energy_counter (gpu:0) + estimate (cpu, ram)"
    text = "\n".join(meter.warnings)
    assert "RAPL skipped: no permission: cannot read" in text
    assert "intel-rapl:0/energy_uj (permission denied)" in text
    assert "sudo chmod a+r" in text


def test_no_driver_with_rapl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path)
    _rapl(rig)
    meter = rig.meter("auto")
    assert meter.describe() == "rapl (cpu:package-0, ram:package-0)"
    assert meter.warnings[0] == (
        "NVML skipped: no driver: the NVML library (libnvidia-ml.so) was not found"
    )


def test_nothing_measures_so_estimate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path)
    meter = rig.meter("auto")
    assert meter.describe() == "estimate (cpu, ram)"
    assert meter.warnings == [
        "NVML skipped: no driver: the NVML library (libnvidia-ml.so) was not found",
        f"RAPL skipped: absent: {rig.powercap_root} does not exist (no powercap driver)",
        "energy instruments chosen by auto: estimate (cpu, ram)",
    ]


def test_rapl_without_dram_estimates_ram(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path)
    _rapl(rig, dram=False)
    meter = rig.meter("auto")
    assert meter.describe() == "rapl (cpu:package-0) + estimate (ram)"
    assert "RAPL has no DRAM zone here; RAM energy is estimated" in meter.warnings


def test_no_visible_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path, _gpus())
    rig.env["CUDA_VISIBLE_DEVICES"] = ""
    meter = rig.meter("auto")
    assert meter.describe() == "estimate (cpu, ram)"
    assert meter.warnings[0] == (
        "NVML skipped: no GPU visible to this process (NVML sees 2; CUDA_VISIBLE_DEVICES='')"
    )
    assert rig.nvml.initialised == 0


def test_auto_drops_an_invisible_index_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, _gpus())
    meter = rig.meter("auto", gpu_indices=[1, 5])
    assert [d.label for d in meter.devices if d.kind == "gpu"] == ["gpu:1"]
    assert any("GPU index 5 is not visible" in w for w in meter.warnings)


def test_nvml_failure_while_listing_gpus_degrades(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, _gpus())

    def lost(handle: object) -> str:
        raise NVMLError(NVML_ERROR_GPU_IS_LOST)

    monkeypatch.setattr(rig.nvml, "nvmlDeviceGetUUID", lost)
    meter = rig.meter("auto")
    assert meter.describe() == "estimate (cpu, ram)"
    assert "the GPU is lost" in meter.warnings[0]
    assert rig.nvml.initialised == 0


def test_unknown_instrument() -> None:
    with pytest.raises(
        InstrumentError, match="unknown energy instrument 'nvm'; allowed: auto, nvml"
    ):
        create_meter("nvm")


# ---- CUDA_VISIBLE_DEVICES ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("visible", "indices", "expected"),
    [
        ("1,0", None, ["gpu:1", "gpu:0"]),
        ("1,0", [1], ["gpu:0"]),
        (f"{gpu_uuid(2)[:12]},0", None, ["gpu:2", "gpu:0"]),  # unique UUID prefix
        ("2,7,0", None, ["gpu:2"]),  # CUDA stops at the first bad entry
        ("2,abc,0", None, ["gpu:2"]),
    ],
)
def test_cuda_visible_devices_mapping(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    visible: str,
    indices: list[int] | None,
    expected: list[str],
) -> None:
    rig = make_rig(monkeypatch, tmp_path, _gpus(3))
    rig.env["CUDA_VISIBLE_DEVICES"] = visible
    meter = rig.meter("nvml", gpu_indices=indices)
    assert [d.label for d in meter.devices] == expected
    bad = [e for e in visible.split(",") if e in {"7", "abc"}]
    assert any("CUDA ignores it and every entry after it" in w for w in meter.warnings) == bool(bad)


def test_mig_instance_measures_the_whole_gpu_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gpus = _gpus(2)
    gpus[1].mig_instances = ["MIG-aaaa1111-2222", "MIG-bbbb1111-2222"]
    rig = make_rig(monkeypatch, tmp_path, gpus)
    rig.env["CUDA_VISIBLE_DEVICES"] = "MIG-aaaa1111,MIG-bbbb"
    meter = rig.meter("nvml")
    assert [d.uid for d in meter.devices] == [gpu_uuid(1)]
    text = "\n".join(meter.warnings)
    assert "runs in MIG mode instance MIG-aaaa1111-2222" in text
    assert "whole GPU, shared by every MIG instance" in text
    assert "measured once" in text
    meter.begin_window()
    rig.clock.advance(1.0)
    assert meter.end_window().devices[0].energy_j == pytest.approx(200.0, abs=0.002)


def test_legacy_mig_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gpus = _gpus(2)
    gpus[0].mig_instances = ["MIG-cccc"]
    rig = make_rig(monkeypatch, tmp_path, gpus)
    rig.env["CUDA_VISIBLE_DEVICES"] = f"MIG-{gpu_uuid(0)}/1/0"
    meter = rig.meter("nvml")
    assert [d.label for d in meter.devices] == ["gpu:0"]


def test_mixed_models_warn_about_cuda_ordering(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gpus = _gpus(2)
    gpus[1].name = "NVIDIA A100-SXM4-40GB"
    rig = make_rig(monkeypatch, tmp_path, gpus)
    meter = rig.meter("nvml")
    assert any("CUDA_DEVICE_ORDER=PCI_BUS_ID" in w for w in meter.warnings)
    rig.env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    assert not any("CUDA_DEVICE_ORDER" in w for w in rig.meter("nvml").warnings)


# ---- this machine --------------------------------------------------------------------------


def test_auto_on_this_machine_uses_the_estimate() -> None:
    from llenergymeasure.energy.nvml_api import Nvml, NvmlError
    from llenergymeasure.energy.rapl import discover_rapl

    try:
        Nvml().close()
        pytest.skip("NVML works on this machine")
    except NvmlError:
        pass
    if discover_rapl().zones:
        pytest.skip("RAPL is readable on this machine")
    meter = create_meter("auto")
    try:
        assert meter.describe() == "estimate (cpu, ram)"
        assert meter.warnings[0].startswith("NVML skipped: no driver")
        assert meter.warnings[1].startswith("RAPL skipped: absent")
        meter.begin_window()
        window = meter.end_window()
        assert {d.method for d in window.devices} == {"estimate"}
        assert window.to_energy_metrics().confidence == "low"
    finally:
        meter.close()


def test_without_host_only_the_gpus_are_metered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, _gpus(1))
    _rapl(rig)
    meter = rig.meter("auto", include_host=False)
    assert meter.describe() == "nvml_energy_counter (gpu:0)"
    assert any("does not meter the host" in w for w in meter.warnings)
    meter.close()


def test_without_host_on_a_cpu_only_machine_meters_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, [])
    for instrument in ("auto", "estimate", "rapl"):
        meter = rig.meter(instrument, include_host=False)
        meter.begin_window()
        rig.clock.advance(1.0)
        energy = meter.end_window().to_energy_metrics()
        meter.close()
        assert energy.devices == [] and energy.total_energy_j == 0.0
        assert energy.method == "none"


def test_an_engine_on_no_gpu_gets_no_gpu_meter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11 item 1: gpu_indices=[] (device_map cpu) meters none of the host's GPUs, and
    naming NVML for such a run is an error, not a meter of every GPU."""
    rig = make_rig(monkeypatch, tmp_path, _gpus(2))
    meter = rig.meter("auto", gpu_indices=[])
    assert meter.describe() == "estimate (cpu, ram)"
    assert "NVML not used: the engine runs on no GPU" in meter.warnings[0]
    assert rig.nvml.calls["nvmlDeviceGetTotalEnergyConsumption"] == 0
    meter.close()
    with pytest.raises(InstrumentError, match="'nvml' has nothing to measure: the engine runs"):
        rig.meter("nvml", gpu_indices=[])
    assert rig.nvml.initialised == 0  # NVML shut down again
