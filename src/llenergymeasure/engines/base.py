"""The engine interface the harness drives, and what one generated batch reports."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.domain.metrics import PrecisionMetadata
from llenergymeasure.domain.requests import OfflineArrivalModel, RequestTrace


@dataclass(frozen=True)
class PreparedBatch:
    """A batch ready for the device (padded, on it), built before the measurement window."""

    input_tokens: list[int]
    inputs: Any


@dataclass
class BatchOutput:
    """What one engine call returned: a trace per request, and the call's own start and end.

    Times are seconds on the engine's clock (``Engine.now``). ``step_times_sec`` is for static
    batches only: when decode step k's tokens reached the host (every sequence of the batch
    shares them, which is what happened); ``padded`` says the device computed every sequence
    over the padded prompt and all the steps (what FLOPs are counted over).
    """

    requests: list[RequestTrace]
    start_sec: float
    end_sec: float
    step_times_sec: list[float] = field(default_factory=list)
    padded: bool = False

    @property
    def wall_sec(self) -> float:
        return self.end_sec - self.start_sec

    @property
    def input_tokens(self) -> list[int]:
        return [r.input_tokens for r in self.requests]

    @property
    def output_tokens(self) -> list[int]:
        return [r.output_tokens for r in self.requests]


def static_batch_traces(
    input_tokens: Sequence[int],
    output_tokens: Sequence[int],
    stopped_at_eos: Sequence[bool],
    *,
    start_sec: float,
    step_times_sec: Sequence[float],
) -> list[RequestTrace]:
    """Traces of a static batch: every request arrived at the batch start and shares its steps.

    A request that generated n tokens has the first n step times as its token times and
    finished at step n - 1 (its EOS, when it stopped early).
    """
    traces = []
    for n_in, n_out, eos in zip(input_tokens, output_tokens, stopped_at_eos, strict=True):
        times = list(step_times_sec[:n_out])
        if len(times) < n_out:
            raise ValueError(f"{n_out} tokens but only {len(step_times_sec)} step times")
        traces.append(
            RequestTrace(
                arrival_sec=start_sec,
                scheduled_sec=start_sec,
                first_token_sec=times[0] if times else None,
                finish_sec=times[-1] if times else start_sec,
                token_times_sec=times,
                input_tokens=n_in,
                output_tokens=n_out,
                stopped_at_eos=eos,
            )
        )
    return traces


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


def stopped_at_eos(
    generated: Sequence[Sequence[int]], counts: Sequence[int], eos_ids: set[int]
) -> list[bool]:
    """Whether each sequence's last counted token is an EOS."""
    return [n > 0 and row[n - 1] in eos_ids for row, n in zip(generated, counts, strict=True)]


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
    """An inference engine: loads a model, tokenizes prompts, generates requests with traces."""

    name: str = "engine"
    #: True when the engine schedules requests itself (continuous batching): with the
    #: ``all_at_once`` arrival model every prompt of the window goes in one call.
    continuous_batching: bool = False
    #: The arrival model used when the config leaves it to the engine.
    default_arrival: OfflineArrivalModel = "closed"
    #: Where the request times come from (``InferenceMetrics.latency_method``).
    latency_method: str = "engine_timestamps"

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config

    def now(self) -> float:
        """The engine's clock, the one its traces' times are on (seconds)."""
        return time.perf_counter()

    def version(self) -> str | None:
        """Version of the library behind the engine (for the environment snapshot)."""
        return None

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
        """Generate for one group of requests (prepared, or token-id prompts), with traces."""

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
