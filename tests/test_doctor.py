"""`llem doctor`: every instrument with its status and reason, the devices, what auto uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llenergymeasure.cli.main import app
from llenergymeasure.energy.probe import diagnose
from tests.cli_helpers import run_llem
from tests.fakes.fake_powercap import standard_tree
from tests.fakes.fake_pynvml import FakeGpu, gpu_uuid
from tests.fakes.rig import make_rig


def _this_machine_has_no_instruments() -> bool:
    from llenergymeasure.energy.nvml_api import Nvml, NvmlError
    from llenergymeasure.energy.rapl import discover_rapl

    try:
        Nvml().close()
    except NvmlError:
        return not discover_rapl().zones
    return False


@pytest.mark.skipif(not _this_machine_has_no_instruments(), reason="machine has NVML or RAPL")
def test_doctor_on_this_machine_says_no_driver_absent_estimate() -> None:
    done = run_llem("doctor", COLUMNS="200")
    assert done.returncode == 0, done.stderr
    rows = {}
    for line in done.stdout.splitlines():
        words = line.replace("│", " ").replace("|", " ").split()
        if words and words[0] in {"NVML", "RAPL", "estimate"}:
            rows[words[0]] = " ".join(words[1:])
    assert rows["NVML"].startswith("no driver")
    assert rows["RAPL"].startswith("absent")
    assert rows["estimate"].startswith("in use")
    assert "auto uses: estimate (cpu, ram)" in done.stdout
    assert "NVIDIA driver: none" in done.stdout

    as_json = run_llem("doctor", "--json")
    report = json.loads(as_json.stdout)
    statuses = {i["name"]: i["status"] for i in report["instruments"]}
    assert statuses["NVML"] == "no driver" and statuses["RAPL"] == "absent"
    assert statuses["estimate"] == "in use"
    assert statuses["Zeus"] in {"installed", "not installed"}


def test_doctor_with_gpus_and_rapl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(
        monkeypatch,
        tmp_path,
        [
            FakeGpu(gpu_uuid(0)),
            FakeGpu(gpu_uuid(1), has_energy_counter=False, mig_instances=["MIG-1"]),
        ],
    )
    standard_tree(rig.powercap_root)
    report = diagnose(env={}, powercap_root=rig.powercap_root, host=rig.host)
    assert report.status_of("NVML") == "in use"
    assert report.status_of("RAPL") == "in use"
    assert report.status_of("estimate") == "available"
    assert report.driver_version == "550.54.15" and report.cuda_driver_version == "12.4"
    assert report.auto == (
        "nvml_energy_counter (gpu:0) + nvml_power_polling (gpu:1) + "
        "rapl (cpu:package-0, ram:package-0)"
    )
    assert report.devices[0] == f"gpu:0 NVIDIA H100 80GB HBM3 {gpu_uuid(0)}: energy counter"
    assert report.devices[1].endswith("power polling (no energy counter), MIG on")
    assert any("MIG" in w for w in report.auto_warnings)
    assert rig.nvml.initialised == 0


def test_doctor_rapl_without_permission(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.test_energy_rapl import _deny

    rig = make_rig(monkeypatch, tmp_path)
    standard_tree(rig.powercap_root, dram=False)
    _deny(monkeypatch, rig.powercap_root / "intel-rapl:0" / "energy_uj")
    report = diagnose(env={}, powercap_root=rig.powercap_root, host=rig.host)
    rapl = next(i for i in report.instruments if i.name == "RAPL")
    assert rapl.status == "no permission" and "chmod" in rapl.detail
    assert report.status_of("NVML") == "no driver"
    assert report.status_of("estimate") == "in use"


def test_doctor_command_renders_the_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig = make_rig(monkeypatch, tmp_path, [FakeGpu(gpu_uuid(0))])
    standard_tree(rig.powercap_root)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["doctor", "--powercap-root", str(rig.powercap_root)])
    assert result.exit_code == 0, result.output
    assert "auto uses: nvml_energy_counter (gpu:0) + rapl (cpu:package-0, ram:package-0)" in (
        result.output
    )
    assert "NVIDIA driver: 550.54.15 (CUDA 12.4)" in result.output
