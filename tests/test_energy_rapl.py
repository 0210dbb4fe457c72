"""RAPL through a fake powercap tree: zones chosen, wrap-around, permissions, absence."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest

from llenergymeasure.energy import rapl as rapl_module
from llenergymeasure.energy.rapl import discover_rapl
from llenergymeasure.errors import InstrumentError
from tests.fakes.fake_powercap import PACKAGE_RANGE_UJ, FakePowercap, standard_tree
from tests.fakes.rig import make_rig


def test_discovers_packages_and_dram_only(tmp_path: Path) -> None:
    standard_tree(tmp_path / "pc", sockets=2)
    found = discover_rapl(tmp_path / "pc")
    assert found.status == "available"
    assert [(z.zone_id, z.kind, z.package) for z in found.zones] == [
        ("0", "cpu", "package-0"),
        ("0:1", "ram", "package-0"),
        ("1", "cpu", "package-1"),
        ("1:1", "ram", "package-1"),
    ]  # core (inside the package), psys (overlaps all) and the mmio duplicate are left out
    assert found.detail == "cpu:package-0, ram:package-0, cpu:package-1, ram:package-1"


def test_absent_tree(tmp_path: Path) -> None:
    found = discover_rapl(tmp_path / "nothing")
    assert found.status == "absent" and "does not exist" in found.detail
    FakePowercap(tmp_path / "empty")
    found = discover_rapl(tmp_path / "empty")
    assert found.status == "absent" and "no RAPL zones" in found.detail


def _deny(monkeypatch: pytest.MonkeyPatch, *denied: Path) -> None:
    """Make some energy_uj files unreadable (tests run as root, so chmod would not do)."""
    real_open = builtins.open
    real_os_open = rapl_module.os.open

    def fake_open(path: Any, *args: Any, **kw: Any) -> Any:
        if Path(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kw)

    def fake_os_open(path: Any, *args: Any, **kw: Any) -> int:
        if Path(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_os_open(path, *args, **kw)

    monkeypatch.setattr(rapl_module, "open", fake_open, raising=False)
    monkeypatch.setattr(rapl_module.os, "open", fake_os_open)


def test_unreadable_zone_named_with_how_to_grant_access(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    standard_tree(tmp_path / "pc")
    dram = tmp_path / "pc" / "intel-rapl:0:1" / "energy_uj"
    _deny(monkeypatch, dram)
    found = discover_rapl(tmp_path / "pc")
    assert [z.kind for z in found.zones] == ["cpu"]
    (warning,) = found.warnings
    assert str(dram) in warning and "permission denied" in warning
    assert "chmod a+r /sys/class/powercap/*rapl:*/energy_uj" in warning


def test_all_unreadable_is_no_permission(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    standard_tree(tmp_path / "pc", dram=False)
    _deny(monkeypatch, tmp_path / "pc" / "intel-rapl:0" / "energy_uj")
    found = discover_rapl(tmp_path / "pc")
    assert found.status == "no permission"
    assert "intel-rapl:0/energy_uj (permission denied)" in found.detail


def test_wrap_around_gives_the_right_energy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, powercap=True)
    tree = rig.powercap
    assert tree is not None
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=PACKAGE_RANGE_UJ - 3_000_000)
    meter = rig.meter("rapl")
    assert meter.describe() == "rapl (cpu:package-0)"
    meter.begin_window()
    rig.clock.advance(10.0)
    tree.set_energy("intel-rapl:0", 5_000_000)  # wrapped: 3 J to the top, then 5 J
    window = meter.end_window()
    assert window.devices[0].energy_j == pytest.approx(8.0, abs=1e-6)
    assert window.devices[0].uid == "node1:rapl:package-0"
    assert any("no DRAM zone" in w for w in window.warnings)
    meter.close()


def test_several_wraps_are_tracked_by_the_telemetry_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, powercap=True)
    tree = rig.powercap
    assert tree is not None
    span = 1_000_000_000  # 1 kJ range: wraps every 5 s at 200 W
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=0, max_range_uj=span)
    tree.add_zone("intel-rapl:0:0", "dram", energy_uj=0, max_range_uj=span)
    meter = rig.meter("rapl")
    sampler = rig.sampler(meter, interval_sec=1.0)
    meter.begin_window()
    total = {"intel-rapl:0": 0, "intel-rapl:0:0": 0}
    for _ in range(18):  # 18 s: package 3600 J (3 wraps+), dram 360 J
        rig.clock.advance(1.0)
        for zone, watts in (("intel-rapl:0", 200), ("intel-rapl:0:0", 20)):
            total[zone] += watts * 1_000_000
            tree.set_energy(zone, total[zone] % span)
        sampler.sample_once()
    window = meter.end_window()
    assert window.energy_j("cpu:package-0") == pytest.approx(3600.0)
    assert window.energy_j("ram:package-0") == pytest.approx(360.0)
    assert not [w for w in window.warnings if "wrap" in w]
    telemetry = sampler.stop()
    _, power = telemetry.series("cpu:package-0", "power_w")
    assert power[1:] == pytest.approx([200.0] * 17)  # derived from counter deltas, wraps too


def test_long_gap_between_reads_is_flagged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path, powercap=True)
    assert rig.powercap is not None
    rig.powercap.add_zone("intel-rapl:0", "package-0", max_range_uj=1_000_000_000)
    meter = rig.meter("rapl")
    # no sampler attached: the meter polls on its own thread at real time, which a fake clock
    # never lets catch up; the edges are 10 s apart in fake time, > 1 kJ / 1000 W = 1 s
    meter.begin_window()
    rig.clock.advance(10.0)
    window = meter.end_window()
    assert any("can wrap" in w for w in window.warnings)


def test_rapl_requested_but_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path)
    with pytest.raises(InstrumentError, match=r"'rapl' is unavailable: absent: .* does not exist"):
        rig.meter("rapl")


def test_counter_that_never_advances_is_warned_and_low_confidence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 11 item 9: a stuck RAPL counter (common on VMs) is not 0 J at high confidence."""
    rig = make_rig(monkeypatch, tmp_path, powercap=True)
    tree = rig.powercap
    assert tree is not None
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=123_456)
    tree.add_zone("intel-rapl:0:0", "dram", energy_uj=70_000)
    meter = rig.meter("rapl")
    sampler = rig.sampler(meter, interval_sec=1.0)
    meter.begin_window()
    rig.run(sampler, 5.0, step=1.0)
    tree.set_energy("intel-rapl:0:0", 70_000 + 4_000_000)  # DRAM moved: 4 J; the package did not
    window = meter.end_window()
    metrics = window.to_energy_metrics()
    cpu, ram = metrics.devices
    assert (cpu.energy_j, cpu.confidence) == (0.0, "low")
    assert (ram.energy_j, ram.confidence) == (pytest.approx(4.0), "high")
    assert metrics.confidence == "low"
    stuck = [w for w in window.warnings if "did not advance" in w]
    assert len(stuck) == 1 and "cpu:package-0" in stuck[0] and "5.000 s" in stuck[0]
    # a fresh window that does advance is high again: the lowering is per window
    meter.begin_window()
    rig.clock.advance(1.0)
    tree.set_energy("intel-rapl:0", 123_456 + 50_000_000)
    tree.set_energy("intel-rapl:0:0", 70_000 + 5_000_000)
    again = meter.end_window()
    assert [d.confidence for d in again.devices] == ["high", "high"]
    sampler.stop()
    meter.close()
