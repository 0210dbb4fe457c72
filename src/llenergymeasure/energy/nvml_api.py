"""The one place that talks to pynvml: a session object, and NVML errors mapped to typed errors.

Every NVML call in the package goes through :meth:`Nvml.call`, so an ``NVMLError`` becomes one
of the :class:`NvmlError` subclasses below with a reason a user can act on ("no driver",
"no permission", "not supported", "GPU lost"). pynvml is imported lazily, here only.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

from llenergymeasure.errors import InstrumentError

# NVML return codes (nvml.h; stable ABI values, checked against pynvml by a test).
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18


class NvmlError(InstrumentError):
    """An NVML call failed; ``status`` is the short reason shown by `llem doctor`."""

    status = "error"

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason or message


class NvmlNoDriver(NvmlError):
    """The NVML library or the NVIDIA kernel driver is missing (or they disagree)."""

    status = "no driver"


class NvmlNotInstalled(NvmlNoDriver):
    """The nvidia-ml-py binding itself is missing."""

    status = "not installed"


class NvmlNoPermission(NvmlError):
    """The process may not query this (containers without the device, restricted counters)."""

    status = "no permission"


class NvmlNotSupported(NvmlError):
    """This GPU or driver does not provide the queried value."""

    status = "not supported"


class NvmlGpuLost(NvmlError):
    """The GPU fell off the bus or needs a reset."""

    status = "GPU lost"


_REASONS: dict[int, tuple[type[NvmlError], str]] = {
    NVML_ERROR_LIBRARY_NOT_FOUND: (
        NvmlNoDriver,
        "no driver: the NVML library (libnvidia-ml.so) was not found",
    ),
    NVML_ERROR_DRIVER_NOT_LOADED: (
        NvmlNoDriver,
        "no driver: the NVIDIA kernel driver is not loaded",
    ),
    NVML_ERROR_LIB_RM_VERSION_MISMATCH: (
        NvmlNoDriver,
        "no driver: the NVML library and the kernel driver versions differ "
        "(reload the driver or reboot)",
    ),
    NVML_ERROR_NO_PERMISSION: (NvmlNoPermission, "no permission"),
    NVML_ERROR_NOT_SUPPORTED: (NvmlNotSupported, "not supported by this GPU or driver"),
    NVML_ERROR_FUNCTION_NOT_FOUND: (
        NvmlNotSupported,
        "not supported: the installed driver lacks this function",
    ),
    NVML_ERROR_GPU_IS_LOST: (NvmlGpuLost, "the GPU is lost (fell off the bus or needs a reset)"),
}


def translate_nvml_error(exc: BaseException, what: str) -> NvmlError:
    """Map an ``NVMLError`` (real or fake) to a typed error whose message names the call."""
    code = getattr(exc, "value", None)
    kind, reason = _REASONS.get(code, (NvmlError, str(exc) or type(exc).__name__))  # type: ignore[arg-type]
    return kind(f"NVML {what}: {reason}", code=code, reason=reason)


def load_pynvml() -> Any:
    """Import pynvml (nvidia-ml-py); tests put a fake module in ``sys.modules`` first."""
    return importlib.import_module("pynvml")


def as_text(value: object) -> str:
    """NVML strings arrive as ``bytes`` from older bindings and ``str`` from newer ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


class Nvml:
    """An initialised NVML session; every call is error-mapped. Close it to shut NVML down."""

    def __init__(self, module: Any | None = None) -> None:
        try:
            self.lib = module if module is not None else load_pynvml()
        except ImportError as exc:
            reason = "not installed: the nvidia-ml-py package is missing (pip install nvidia-ml-py)"
            raise NvmlNotInstalled(f"NVML: {reason}", reason=reason) from exc
        self.error_type: type[BaseException] = getattr(self.lib, "NVMLError", Exception)
        self.call("nvmlInit", what="initialise")
        self._open = True

    def call(self, name: str, *args: Any, what: str | None = None) -> Any:
        """``pynvml.<name>(*args)``, NVML errors mapped; a missing binding is 'not supported'."""
        fn = getattr(self.lib, name, None)
        if fn is None:
            reason = f"not supported: this nvidia-ml-py has no {name}"
            raise NvmlNotSupported(
                f"NVML {what or name}: {reason}", code=NVML_ERROR_FUNCTION_NOT_FOUND, reason=reason
            )
        try:
            return fn(*args)
        except self.error_type as exc:
            raise translate_nvml_error(exc, what or name) from exc

    def const(self, name: str, default: int) -> int:
        """A pynvml constant, or its nvml.h value when this binding lacks it."""
        return int(getattr(self.lib, name, default))

    def driver_version(self) -> str | None:
        """The driver version string, or None when NVML cannot say."""
        try:
            return as_text(self.call("nvmlSystemGetDriverVersion"))
        except NvmlError:
            return None

    def cuda_driver_version(self) -> str | None:
        """The CUDA version the driver supports, e.g. '12.4', or None."""
        try:
            value = int(self.call("nvmlSystemGetCudaDriverVersion"))
        except (NvmlError, TypeError, ValueError):
            return None
        return f"{value // 1000}.{(value % 1000) // 10}"

    def close(self) -> None:
        """Shut NVML down once (NVML reference-counts init/shutdown)."""
        if self._open:
            self._open = False
            with contextlib.suppress(NvmlError):
                self.call("nvmlShutdown")
