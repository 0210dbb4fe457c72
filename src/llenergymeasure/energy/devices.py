"""Which NVML devices this process uses: CUDA_VISIBLE_DEVICES mapped to GPUs by index or UUID.

CUDA accepts integers, ``GPU-<uuid>`` (unique prefixes allowed), ``MIG-<uuid>`` and the legacy
``MIG-GPU-<uuid>/<gi>/<ci>``; it stops at the first entry it cannot use. The measured device is
always the whole GPU (NVML has no per-MIG-instance power), identified by its UUID.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llenergymeasure.energy.nvml_api import Nvml, NvmlError, as_text
from llenergymeasure.errors import InstrumentError


@dataclass(frozen=True)
class NvmlGpu:
    """One whole GPU as NVML sees it, and how this process refers to it."""

    nvml_index: int
    uuid: str
    name: str
    handle: Any
    cuda_index: int | None = None
    mig_uuid: str | None = None
    mig_enabled: bool = False

    @property
    def label(self) -> str:
        """Host-unique short label: NVML's (nvidia-smi's) index."""
        return f"gpu:{self.nvml_index}"


def parse_visible_devices(value: str | None) -> list[str] | None:
    """CUDA_VISIBLE_DEVICES as a list of entries; None when unset (every GPU is visible)."""
    if value is None:
        return None
    return [part.strip() for part in value.split(",")] if value.strip() else []


def _mig_enabled(nvml: Nvml, handle: Any) -> bool:
    try:
        current = nvml.call("nvmlDeviceGetMigMode", handle, what="MIG mode")
    except NvmlError:
        return False
    if isinstance(current, (list, tuple)):
        current = current[0]
    return bool(current)


def list_gpus(nvml: Nvml) -> list[NvmlGpu]:
    """Every GPU NVML reports, in NVML (PCI bus) order."""
    count = int(nvml.call("nvmlDeviceGetCount", what="device count"))
    gpus = []
    for index in range(count):
        handle = nvml.call("nvmlDeviceGetHandleByIndex", index, what=f"GPU {index}")
        gpus.append(
            NvmlGpu(
                nvml_index=index,
                uuid=as_text(nvml.call("nvmlDeviceGetUUID", handle, what=f"GPU {index} UUID")),
                name=as_text(nvml.call("nvmlDeviceGetName", handle, what=f"GPU {index} name")),
                handle=handle,
                mig_enabled=_mig_enabled(nvml, handle),
            )
        )
    return gpus


def _by_uuid_prefix(prefix: str, gpus: Sequence[NvmlGpu]) -> NvmlGpu:
    matches = [g for g in gpus if g.uuid.lower().startswith(prefix.lower())]
    if len(matches) != 1:
        raise LookupError("matches no GPU" if not matches else "matches several GPUs")
    return matches[0]


def _mig_instances(nvml: Nvml, gpu: NvmlGpu) -> list[str]:
    """UUIDs of the MIG instances on a GPU (empty when MIG is off)."""
    if not gpu.mig_enabled:
        return []
    try:
        slots = int(nvml.call("nvmlDeviceGetMaxMigDeviceCount", gpu.handle))
    except NvmlError:
        return []
    uuids = []
    for slot in range(slots):
        try:
            mig = nvml.call("nvmlDeviceGetMigDeviceHandleByIndex", gpu.handle, slot)
            uuids.append(as_text(nvml.call("nvmlDeviceGetUUID", mig)))
        except NvmlError:
            continue  # an empty slot
    return uuids


def _match_entry(entry: str, gpus: Sequence[NvmlGpu], nvml: Nvml) -> NvmlGpu:
    if re.fullmatch(r"\d+", entry):
        index = int(entry)
        if index >= len(gpus):
            raise LookupError(f"is past the last GPU (NVML sees {len(gpus)})")
        return gpus[index]
    if entry.startswith("GPU-"):
        return _by_uuid_prefix(entry, gpus)
    if entry.startswith("MIG-GPU-"):  # legacy form MIG-GPU-<uuid>/<gi>/<ci>
        parent = _by_uuid_prefix(entry[len("MIG-") :].split("/")[0], gpus)
        return _with(parent, mig_uuid=entry)
    if entry.startswith("MIG-"):
        found = [
            (gpu, uuid)
            for gpu in gpus
            for uuid in _mig_instances(nvml, gpu)
            if uuid.lower().startswith(entry.lower())
        ]
        if len(found) != 1:
            raise LookupError("matches no MIG instance" if not found else "matches several")
        return _with(found[0][0], mig_uuid=found[0][1])
    raise LookupError("is neither an index nor a GPU-/MIG- UUID")


def _with(gpu: NvmlGpu, **changes: Any) -> NvmlGpu:
    values = {**gpu.__dict__, **changes}
    return NvmlGpu(**values)


def resolve_gpus(
    nvml: Nvml,
    env: Mapping[str, str],
    gpu_indices: Sequence[int] | None = None,
    *,
    strict: bool = True,
) -> tuple[list[NvmlGpu], list[str]]:
    """The GPUs this process uses, each once, and warnings about the mapping.

    ``gpu_indices`` are CUDA ordinals inside this process (positions in CUDA_VISIBLE_DEVICES);
    None means every visible GPU. An index past the visible list raises InstrumentError when
    ``strict``, else it is dropped with a warning.
    """
    gpus = list_gpus(nvml)
    warnings: list[str] = []
    entries = parse_visible_devices(env.get("CUDA_VISIBLE_DEVICES"))
    if entries is None:
        visible = list(gpus)
    else:
        visible = []
        for entry in entries:
            try:
                visible.append(_match_entry(entry, gpus, nvml))
            except LookupError as why:
                warnings.append(
                    f"CUDA_VISIBLE_DEVICES entry {entry!r} {why}; CUDA ignores it and every "
                    "entry after it, and so does the energy meter"
                )
                break
    uses_integers = entries is None or any(re.fullmatch(r"\d+", e) for e in entries)
    if (
        uses_integers
        and len({g.name for g in gpus}) > 1
        and env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID"
    ):
        warnings.append(
            "GPUs of different models: CUDA numbers them fastest-first unless "
            "CUDA_DEVICE_ORDER=PCI_BUS_ID, NVML by PCI bus, so integer indices may name "
            "different GPUs; set CUDA_DEVICE_ORDER=PCI_BUS_ID or put UUIDs in CUDA_VISIBLE_DEVICES"
        )
    visible = [_with(g, cuda_index=i) for i, g in enumerate(visible)]
    if gpu_indices is None:
        chosen = visible
    else:
        chosen = []
        for index in gpu_indices:
            if 0 <= index < len(visible):
                chosen.append(visible[index])
                continue
            message = (
                f"GPU index {index} is not visible to this process "
                f"({len(visible)} visible; CUDA_VISIBLE_DEVICES="
                f"{env.get('CUDA_VISIBLE_DEVICES', '<unset>')!r})"
            )
            if strict:
                raise InstrumentError(message)
            warnings.append(message + "; it is not measured")
    unique: list[NvmlGpu] = []
    for gpu in chosen:
        if any(u.uuid == gpu.uuid for u in unique):
            first = next(u.cuda_index for u in unique if u.uuid == gpu.uuid)
            warnings.append(
                f"CUDA devices {first} and {gpu.cuda_index} are on the same GPU {gpu.uuid} "
                "(MIG instances); it is measured once"
            )
            continue
        unique.append(gpu)
    return unique, warnings
