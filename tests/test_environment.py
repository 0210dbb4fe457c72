"""The environment snapshot: packages, CPU, and GPUs through the (fake) NVML."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.measure.environment import capture_environment
from tests.fakes.fake_pynvml import FakeGpu, gpu_uuid
from tests.fakes.rig import make_rig
from tests.fakes.traces import constant


def test_snapshot_without_nvml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    make_rig(monkeypatch, tmp_path)  # NVML: no driver
    env = capture_environment()
    assert env.devices == [] and env.driver_version is None
    assert "torch" in env.packages and env.cpu_count and env.ram_mb


def test_snapshot_lists_every_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gpus = [FakeGpu(gpu_uuid(i), power=constant(100.0)) for i in range(2)]
    rig = make_rig(monkeypatch, tmp_path, gpus)
    env = capture_environment()
    assert [d.uuid for d in env.devices] == [gpu_uuid(0), gpu_uuid(1)]
    assert [d.index for d in env.devices] == [0, 1]
    assert env.driver_version == rig.nvml.driver_version
    assert [d.memory_mb for d in env.devices] == [80_000_000_000 / 2**20] * 2
    assert all(d.kind == "gpu" and d.memory_mb and d.memory_mb > 0 for d in env.devices)


def test_engine_and_its_version_are_recorded() -> None:
    import transformers

    env = capture_environment(engine="transformers")
    assert env.engine == "transformers" and env.engine_version == transformers.__version__
    assert capture_environment().engine is None
