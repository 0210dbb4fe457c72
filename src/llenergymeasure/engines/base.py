"""The engine interface the harness drives, and what one generated batch reports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.domain.metrics import PrecisionMetadata


@dataclass(frozen=True)
class PreparedBatch:
    """A batch ready for the device (padded, on it), built before the measurement window."""

    input_tokens: list[int]
    inputs: Any


@dataclass
class BatchOutput:
    """One batch's token counts and timestamps (``time.perf_counter`` seconds).

    ``step_times_sec[k]`` is when decode step k's tokens reached the host (the device was
    synchronised by the copy), so step 0 gives the first token of every sequence.
    """

    input_tokens: list[int]
    output_tokens: list[int]
    start_sec: float
    end_sec: float
    step_times_sec: list[float]

    @property
    def wall_sec(self) -> float:
        return self.end_sec - self.start_sec

    def _step_time(self, index: int) -> float:
        # Without per-step times (an engine that cannot stream), fall back to the batch end.
        return self.step_times_sec[index] if index < len(self.step_times_sec) else self.end_sec

    def ttft_ms(self) -> list[float]:
        """Time to first token per sequence that generated at least one token."""
        return [(self._step_time(0) - self.start_sec) * 1e3 for n in self.output_tokens if n > 0]

    def itl_ms(self) -> list[float]:
        """Inter-token latency: one sample per generated token after each sequence's first."""
        gaps = [
            (b - a) * 1e3
            for a, b in zip(self.step_times_sec, self.step_times_sec[1:], strict=False)
        ]
        samples: list[float] = []
        for n in self.output_tokens:
            samples.extend(gaps[: max(0, n - 1)])
        return samples

    def request_latency_ms(self) -> list[float]:
        """Start of the batch to each sequence's last token (its EOS, when it stopped early)."""
        return [
            (self._step_time(n - 1) - self.start_sec) * 1e3 if n > 0 else 0.0
            for n in self.output_tokens
        ]


def count_generated_tokens(
    generated: Sequence[Sequence[int]], eos_ids: set[int], *, stop_at_eos: bool
) -> list[int]:
    """Tokens each sequence really generated: up to and including its first EOS.

    Whatever follows EOS in a finished row is padding or filler and is never counted. With
    ``stop_at_eos=False`` (fixed-length generation, EOS suppressed) every position counts.
    """
    counts = []
    for row in generated:
        n = len(row)
        if stop_at_eos:
            for i, token in enumerate(row):
                if token in eos_ids:
                    n = i + 1
                    break
        counts.append(n)
    return counts


def cuda_indices(devices: Iterable[object], current_device: Callable[[], int]) -> list[int]:
    """CUDA ordinals named by device-map values, sorted and each once.

    ``3``, ``"cuda:3"`` and ``torch.device("cuda", 3)`` name device 3; ``"cuda"`` (no index)
    names the current device, asked of ``current_device`` only then; ``"cpu"``, ``"disk"``,
    ``"meta"`` and the like name no GPU.
    """
    found: set[int] = set()
    for device in devices:
        if isinstance(device, bool):
            continue
        if isinstance(device, int):
            found.add(device)
            continue
        text = str(device).strip()
        if text == "cuda":
            found.add(int(current_device()))
        elif text.startswith("cuda:") and text[5:].isdigit():
            found.add(int(text[5:]))
        elif text.isdigit():
            found.add(int(text))
    return sorted(found)


class Engine(ABC):
    """An inference engine: loads a model, tokenizes prompts, generates timed batches."""

    name: str = "engine"

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config

    @abstractmethod
    def load(self) -> None:
        """Load the model and tokenizer onto the configured device(s)."""

    @abstractmethod
    def tokenize(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each prompt, truncated to ``max_input_tokens``."""

    @abstractmethod
    def vocab_ids_for_synthetic(self) -> tuple[int, int, set[int]]:
        """(low, high, special ids) to draw synthetic prompt tokens from."""

    @abstractmethod
    def prepare(self, batch: Sequence[Sequence[int]]) -> PreparedBatch:
        """Turn token-id prompts into device inputs, so the window holds only generation."""

    @abstractmethod
    def generate(self, batch: Sequence[Sequence[int]] | PreparedBatch) -> BatchOutput:
        """Generate for one batch (prepared, or token-id prompts), timing every decode step."""

    @abstractmethod
    def synchronize(self) -> None:
        """Wait until the device has finished all queued work."""

    @abstractmethod
    def precision(self) -> PrecisionMetadata:
        """Precision of weights, activations and compute of the loaded model."""

    @abstractmethod
    def gpu_indices(self) -> list[int]:
        """CUDA device indices the model occupies (empty on CPU)."""

    @abstractmethod
    def memory_mb(self) -> tuple[float | None, float | None]:
        """(peak device memory in the run so far, model weights), in MiB."""

    @abstractmethod
    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window."""

    @property
    @abstractmethod
    def model(self) -> Any:
        """The loaded model object (for FLOPs counting)."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release the model and device memory."""
