"""A test double: the transformers engine computing on the CPU while claiming CUDA device 0.

With the fake NVML installed, a real run (real model, real generation, real files) then meters
that fake GPU through the package's NVML code, as it would a real one.
"""

from __future__ import annotations

from llenergymeasure.engines.transformers_engine import TransformersEngine


class FakeGpuEngine(TransformersEngine):
    """Generates on the CPU; says it occupies CUDA device 0 (memory figures: the weights)."""

    def gpu_indices(self) -> list[int]:
        return [0]

    def memory_mb(self) -> tuple[float | None, float | None]:
        weights = self.model.get_memory_footprint() / 2**20
        return weights, weights

    def reset_peak_memory(self) -> None:
        pass
