"""The estimate: utilisation x TDP per core x cores for the CPU, W/GB for RAM; labelled low."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.energy.estimate import (
    DEFAULT_W_PER_CORE,
    RAM_W_PER_GB,
    CpuTimes,
    Host,
    cpu_watts_per_core,
    read_cpu_model,
    system_cpu_times,
)
from tests.fakes.rig import make_rig


@pytest.mark.parametrize(
    ("model", "w_per_core"),
    [
        ("AMD EPYC 7763 64-Core Processor", 280 / 64),
        ("Intel(R) Xeon(R) Platinum 8480+", 350 / 56),
        ("Intel(R) Xeon(R) Platinum 8480C", 350 / 56),
        ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", 205 / 24),
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 150 / 20),
        ("13th Gen Intel(R) Core(TM) i9-13900K", 125 / 24),
        ("AMD EPYC", DEFAULT_W_PER_CORE),
        ("AMD EPYC 77630", DEFAULT_W_PER_CORE),  # no partial-number matches
        (None, DEFAULT_W_PER_CORE),
    ],
)
def test_tdp_table_lookup(model: str | None, w_per_core: float) -> None:
    watts, source = cpu_watts_per_core(model)
    assert watts == pytest.approx(w_per_core)
    assert ("default" in source) == (w_per_core == DEFAULT_W_PER_CORE)


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9654 96-Core\n"
    )
    assert read_cpu_model(info) == "AMD EPYC 9654 96-Core"
    assert read_cpu_model(tmp_path / "missing") is None


def test_estimate_energy_follows_utilisation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, cores=64, ram_gb=512.0)
    meter = rig.meter("estimate")
    assert meter.describe() == "estimate (cpu, ram)"
    rig.cpu.set_busy(0.25)
    meter.begin_window()
    rig.clock.advance(4.0)
    rig.cpu.set_busy(0.75)
    rig.clock.advance(4.0)
    window = meter.end_window()
    cpu, ram = window.devices
    # mean busy share 0.5 over 8 s x (280 W / 64 cores) x 64 cores
    assert cpu.energy_j == pytest.approx(0.5 * 280.0 * 8.0)
    assert ram.energy_j == pytest.approx(RAM_W_PER_GB * 512.0 * 8.0)
    assert (cpu.method, cpu.confidence, ram.method, ram.confidence) == ("estimate", "low") * 2
    assert (cpu.uid, cpu.label, ram.uid, ram.label) == (
        "node1:cpu-estimate",
        "cpu",
        "node1:ram-estimate",
        "ram",
    )
    text = " | ".join(window.warnings)
    assert "cpu energy is an estimate (confidence low)" in text
    assert "4.38 W/core x 64 cores (EPYC 7763: TDP 280 W / 64 cores)" in text
    assert "utilisation over the window 50.0%" in text
    assert "ram energy is an estimate (confidence low): 0.375 W/GB x 512.0 GB" in text


def test_unknown_cpu_uses_documented_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rig = make_rig(monkeypatch, tmp_path, cpu_model="AMD EPYC", cores=2, ram_gb=0.0)
    meter = rig.meter("estimate")
    rig.cpu.set_busy(1.0)
    meter.begin_window()
    rig.clock.advance(10.0)
    window = meter.end_window()
    assert window.energy_j("cpu") == pytest.approx(DEFAULT_W_PER_CORE * 2 * 10.0)
    assert any("'AMD EPYC' not in the table: default" in w for w in window.warnings)


def test_system_cpu_times_and_local_host_are_sane() -> None:
    a = system_cpu_times()
    b = system_cpu_times()
    assert isinstance(a, CpuTimes) and 0 <= a.busy_sec <= a.total_sec <= b.total_sec
    host = Host.local()
    assert host.physical_cores >= 1 and host.ram_bytes > 0 and host.hostname
