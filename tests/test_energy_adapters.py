"""Zeus and CodeCarbon adapters: their figures in our DeviceEnergy, with the method named."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from llenergymeasure.energy import measure_baseline
from llenergymeasure.errors import InstrumentError
from tests.fakes.fake_codecarbon import install_fake_codecarbon
from tests.fakes.fake_powercap import standard_tree
from tests.fakes.fake_pynvml import FakeGpu, gpu_uuid
from tests.fakes.fake_zeus import install_fake_zeus
from tests.fakes.rig import make_rig


def test_zeus_maps_gpus_by_uuid_and_rapl_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(i)) for i in range(3)])
    rig.env["CUDA_VISIBLE_DEVICES"] = "2,1"
    monitors = install_fake_zeus(
        monkeypatch,
        rig.clock,
        gpu_w={0: 300.0, 1: 200.0},
        cpu_w={0: 90.0},
        dram_w={0: 12.0},
        old_gpus=(1,),
    )
    meter = rig.meter("zeus")
    assert meter.describe() == "zeus (gpu:2, gpu:1, cpu:package-0, ram:package-0)"
    synced: list[int] = []
    meter.begin_window(sync=lambda: synced.append(1))
    rig.clock.advance(10.0)
    window = meter.end_window(sync=lambda: synced.append(1))
    assert synced == [1, 1] and monitors[0].synced == 0  # we sync; Zeus does not sync again
    by_label = {d.label: d for d in window.devices}
    assert by_label["gpu:2"].uid == gpu_uuid(2) and by_label["gpu:2"].energy_j == 3000.0
    assert by_label["gpu:2"].confidence == "high"
    assert by_label["gpu:1"].confidence == "medium"  # Zeus polls power for it
    assert by_label["cpu:package-0"].uid == "node1:rapl:package-0"
    assert by_label["ram:package-0"].energy_j == pytest.approx(120.0)
    assert {d.method for d in window.devices} == {"zeus"}
    assert window.duration_sec == pytest.approx(10.0)
    assert any("measured by Zeus" in w for w in window.warnings)
    metrics = window.to_energy_metrics()
    assert metrics.gpu_energy_j == 5000.0 and metrics.method == "zeus"


def test_zeus_without_nvml_still_labels_gpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path)  # NVML: no driver
    install_fake_zeus(monkeypatch, rig.clock, gpu_w={0: 100.0})
    meter = rig.meter("zeus", gpu_indices=[0])
    assert [d.uid for d in meter.devices] == ["node1:zeus:gpu0"]


def test_zeus_baseline_is_cached_under_its_own_method(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0))])
    install_fake_zeus(monkeypatch, rig.clock, gpu_w={0: 70.0})
    meter = rig.meter("zeus")
    cache = tmp_path / "b.json"
    baseline = measure_baseline(meter, 5.0, cache_path=cache, sleep=rig.clock.advance)
    assert baseline.power_w == {gpu_uuid(0): pytest.approx(70.0)}
    assert (
        measure_baseline(meter, 5.0, cache_path=cache, sleep=rig.clock.advance).method == "cached"
    )


def test_zeus_with_nothing_to_measure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path)
    install_fake_zeus(monkeypatch, rig.clock, gpu_w={})
    with pytest.raises(InstrumentError, match="zeus found no GPU and no RAPL zone"):
        rig.meter("zeus")


@pytest.mark.parametrize("name", ["zeus", "codecarbon"])
def test_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    rig = make_rig(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, name, None)  # import fails
    monkeypatch.setitem(sys.modules, f"{name}.monitor", None)
    with pytest.raises(
        InstrumentError,
        match=rf"'{name}' is not installed: pip install 'llenergymeasure\[{name}\]'",
    ):
        rig.meter(name)


def test_codecarbon_kwh_to_joules_per_kind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0))])
    trackers = install_fake_codecarbon(
        monkeypatch, rig.clock, cpu_w=45.0, ram_w=9.0, gpu_w=250.0, gpu_count=1
    )
    meter = rig.meter("codecarbon")
    assert meter.describe() == "codecarbon (gpu, cpu, ram)"
    meter.begin_window()
    rig.clock.advance(20.0)
    window = meter.end_window()
    energy = {d.label: d.energy_j for d in window.devices}
    assert energy == pytest.approx({"gpu": 5000.0, "cpu": 900.0, "ram": 180.0})
    conf = {d.label: d.confidence for d in window.devices}
    assert conf == {"gpu": "medium", "cpu": "low", "ram": "low"}  # no RAPL here
    assert {d.method for d in window.devices} == {"codecarbon"}
    assert trackers[0].kwargs["output_methods"] == []  # nothing written by CodeCarbon
    assert trackers[0].kwargs["tracking_mode"] == "machine"
    assert any("CodeCarbon estimates the CPU" in w for w in window.warnings)
    # a new tracker per window
    meter.begin_window()
    rig.clock.advance(1.0)
    meter.end_window()
    assert len(trackers) == 2


def test_codecarbon_2_gets_save_to_file_false(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path)
    trackers = install_fake_codecarbon(monkeypatch, rig.clock, cpu_w=1.0, ram_w=1.0, version3=False)
    meter = rig.meter("codecarbon")
    meter.begin_window()
    meter.end_window()
    assert trackers[-1].kwargs["save_to_file"] is False


def test_codecarbon_with_rapl_is_medium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path)
    standard_tree(rig.powercap_root)
    install_fake_codecarbon(monkeypatch, rig.clock, cpu_w=45.0, ram_w=9.0)
    meter = rig.meter("codecarbon")
    assert meter.describe() == "codecarbon (cpu, ram)"
    meter.begin_window()
    rig.clock.advance(1.0)
    window = meter.end_window()
    assert {d.confidence for d in window.devices} == {"medium"}
    assert not any(d.kind == "gpu" for d in window.devices)


@pytest.mark.skipif(importlib.util.find_spec("codecarbon") is None, reason="codecarbon extra")
def test_real_codecarbon_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real library, offline: figures land in our types (its values are its own business)."""
    monkeypatch.chdir(tmp_path)
    from llenergymeasure.energy import create_meter

    meter = create_meter("codecarbon")
    meter.begin_window()
    sum(i * i for i in range(200_000))
    window = meter.end_window()
    kinds = {d.kind for d in window.devices}
    assert {"cpu", "ram"} <= kinds
    assert all(d.method == "codecarbon" and d.energy_j >= 0 for d in window.devices)
    assert window.duration_sec > 0
    assert window.to_energy_metrics().method == "codecarbon"


def test_zeus_cached_baseline_covers_its_dram(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11 item 6: Zeus's DRAM zones are known before the first window, so a cached
    baseline has them and the idle-adjusted figure is kept."""
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0))])
    install_fake_zeus(monkeypatch, rig.clock, gpu_w={0: 70.0}, cpu_w={0: 20.0}, dram_w={0: 5.0})
    cache = tmp_path / "b.json"
    first = rig.meter("zeus")
    assert [d.label for d in first.devices] == ["gpu:0", "cpu:package-0", "ram:package-0"]
    measured = measure_baseline(first, 5.0, cache_path=cache, sleep=rig.clock.advance)
    assert measured.method == "measured" and len(measured.power_w) == 3
    fresh = rig.meter("zeus")  # a new process: the baseline comes from the cache
    cached = measure_baseline(fresh, 5.0, cache_path=cache, sleep=rig.clock.advance)
    assert cached.method == "cached"
    assert cached.power_w["node1:rapl:package-0:dram"] == pytest.approx(5.0)
    fresh.begin_window()
    rig.clock.advance(10.0)
    metrics = fresh.end_window().to_energy_metrics(cached)
    assert metrics.baseline_method == "cached"
    assert metrics.adjusted_energy_j == pytest.approx(0.0, abs=1e-6)  # all idle here
    assert metrics.total_energy_j == pytest.approx(950.0)


def test_zeus_and_codecarbon_leave_the_host_to_another_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11 item 10: include_host=False (every process but one on a host) meters no CPU
    or RAM, so `--processes 2` does not count the host twice."""
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0)), FakeGpu(gpu_uuid(1))])
    install_fake_zeus(
        monkeypatch, rig.clock, gpu_w={0: 70.0, 1: 80.0}, cpu_w={0: 20.0}, dram_w={0: 5.0}
    )
    zeus = rig.meter("zeus", gpu_indices=[1], include_host=False)
    assert [d.label for d in zeus.devices] == ["gpu:1"]
    zeus.begin_window()
    rig.clock.advance(2.0)
    window = zeus.end_window()
    assert [(d.kind, d.energy_j) for d in window.devices] == [("gpu", pytest.approx(160.0))]
    assert any("does not meter the host" in w for w in window.warnings)

    install_fake_codecarbon(monkeypatch, rig.clock, cpu_w=45.0, ram_w=9.0, gpu_w=250.0, gpu_count=1)
    codecarbon = rig.meter("codecarbon", gpu_indices=[1], include_host=False)
    assert codecarbon.describe() == "codecarbon (gpu)"
    codecarbon.begin_window()
    rig.clock.advance(2.0)
    window = codecarbon.end_window()
    assert [d.kind for d in window.devices] == ["gpu"]
    # no GPU of its own and no host: nothing to meter, and no library started
    for name in ("zeus", "codecarbon"):
        idle = rig.meter(name, gpu_indices=[], include_host=False)
        assert idle.devices == []


def test_codecarbon_meters_no_gpu_for_a_cpu_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11 item 1 for CodeCarbon: gpu_indices=[] (the engine is on the CPU) is no GPU."""
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0)), FakeGpu(gpu_uuid(1))])
    install_fake_codecarbon(monkeypatch, rig.clock, cpu_w=45.0, ram_w=9.0, gpu_w=250.0, gpu_count=2)
    meter = rig.meter("codecarbon", gpu_indices=[])
    assert meter.describe() == "codecarbon (cpu, ram)"
    meter.begin_window()
    rig.clock.advance(1.0)
    assert [d.kind for d in meter.end_window().devices] == ["cpu", "ram"]
