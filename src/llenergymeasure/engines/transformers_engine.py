"""The transformers engine: batched ``model.generate`` with left padding and per-step timestamps."""

from __future__ import annotations

import gc
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.domain.metrics import PrecisionMetadata
from llenergymeasure.engines import builtin
from llenergymeasure.engines.base import (
    BatchOutput,
    Engine,
    PreparedBatch,
    count_generated_tokens,
    cuda_indices,
    static_batch_traces,
    stopped_at_eos,
)
from llenergymeasure.errors import ConfigError, LlemError

_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


class _StepClock:
    """A generate() streamer that only notes when each decode step's tokens reach the host.

    transformers hands it the prompt first, then every step's new tokens already copied to the
    CPU (which synchronises with the device), so a timestamp here marks the step's completion.
    """

    __slots__ = ("_seen_prompt", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self._seen_prompt = False

    def put(self, value: Any) -> None:
        if self._seen_prompt:
            self.times.append(time.perf_counter())
        else:
            self._seen_prompt = True

    def end(self) -> None:
        pass


class TransformersEngine(Engine):
    """Hugging Face transformers: any causal LM loadable with ``from_pretrained``."""

    name = "transformers"
    latency_method = "decode_step_timestamps"

    def __init__(self, config: ExperimentConfig, logits_processor: Any | None = None) -> None:
        super().__init__(config)
        self._model: Any = None
        self._tokenizer: Any = None
        self._torch: Any = None
        self._device: Any = None
        self._logits_processor = logits_processor  # tests use it to force EOS at known steps
        self._gen_kwargs: dict[str, Any] = {}

    # ---- loading -----------------------------------------------------------------------------

    def _resolve_source(self) -> str:
        model = self.config.model
        if builtin.is_builtin(model):
            return str(builtin.builtin_path(model))
        return model

    def load(self) -> None:
        import torch
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self._torch = torch
        cuda = torch.cuda.is_available()
        device_map = self.config.device_map or ("cuda:0" if cuda else "cpu")
        if device_map.startswith("cuda") and not cuda:
            raise ConfigError(f"device_map {device_map!r} needs a CUDA GPU; none is available")
        dtype: Any = (
            getattr(torch, _DTYPES[self.config.dtype])
            if self.config.dtype != "auto"
            else ("auto" if device_map != "cpu" else torch.float32)
        )
        kwargs: dict[str, Any] = {"dtype": dtype, "device_map": device_map}
        if self.config.transformers.attn_implementation != "auto":
            kwargs["attn_implementation"] = self.config.transformers.attn_implementation
        if self.config.quantization != "none":
            kwargs["quantization_config"] = self._bnb_config(torch, transformers, cuda)
        source = self._resolve_source()
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(source)
            self._model = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            raise LlemError(_describe_load_error(self.config.model, exc)) from None
        self._model.eval()
        tok = self._tokenizer
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self._device = next(self._model.parameters()).device
        self._gen_kwargs = self._generation_kwargs()

    def _bnb_config(self, torch: Any, transformers: Any, cuda: bool) -> Any:
        if not cuda:
            raise ConfigError(
                f"quantization {self.config.quantization!r} (bitsandbytes) needs a CUDA GPU"
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"quantization {self.config.quantization!r} needs the bitsandbytes package"
            ) from None
        compute = torch.bfloat16 if self.config.dtype in ("auto", "bfloat16") else torch.float16
        if self.config.quantization == "bnb-4bit":
            return transformers.BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_compute_dtype=compute
            )
        return transformers.BitsAndBytesConfig(load_in_8bit=True)

    def _generation_kwargs(self) -> dict[str, Any]:
        cfg = self.config
        eos = self._eos_ids()
        kwargs: dict[str, Any] = {
            "max_new_tokens": cfg.max_output_tokens,
            "pad_token_id": self._tokenizer.pad_token_id,
            "eos_token_id": sorted(eos) if eos else None,
            "use_cache": True,
        }
        if cfg.fixed_length:
            kwargs["min_new_tokens"] = cfg.max_output_tokens
        if cfg.decoding.mode == "sample":
            kwargs.update(
                do_sample=True,
                temperature=cfg.decoding.temperature,
                top_p=cfg.decoding.top_p,
                top_k=cfg.decoding.top_k or None,
            )
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if self._logits_processor is not None:
            kwargs["logits_processor"] = self._logits_processor
        return kwargs

    def _eos_ids(self) -> set[int]:
        eos = self._model.generation_config.eos_token_id
        if eos is None:
            eos = self._tokenizer.eos_token_id
        if eos is None:
            return set()
        return {int(e) for e in eos} if isinstance(eos, (list, tuple)) else {int(eos)}

    # ---- prompts -----------------------------------------------------------------------------

    def tokenize(self, prompts: Sequence[str]) -> list[list[int]]:
        encoded = self._tokenizer(
            list(prompts),
            truncation=True,
            max_length=self.config.max_input_tokens,
            add_special_tokens=True,
        )
        return [list(ids) for ids in encoded["input_ids"]]

    def vocab_ids_for_synthetic(self) -> tuple[int, int, set[int]]:
        special = set(self._tokenizer.all_special_ids)
        return 0, len(self._tokenizer), special

    # ---- generation --------------------------------------------------------------------------

    def prepare(self, batch: Sequence[Sequence[int]]) -> PreparedBatch:
        """Left-pad the prompts into input ids and an attention mask on the model's device."""
        if not batch or any(len(ids) == 0 for ids in batch):
            raise ValueError("every prompt in a batch needs at least one token")
        torch = self._torch
        width = max(len(ids) for ids in batch)
        pad = self._tokenizer.pad_token_id
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids) :] = 1
        return PreparedBatch(
            input_tokens=[len(ids) for ids in batch],
            inputs=(input_ids.to(self._device), mask.to(self._device)),
        )

    def generate(self, batch: Sequence[Sequence[int]] | PreparedBatch) -> BatchOutput:
        prepared = batch if isinstance(batch, PreparedBatch) else self.prepare(batch)
        input_ids, mask = prepared.inputs
        clock = _StepClock()
        self.synchronize()
        start = time.perf_counter()
        with self._torch.inference_mode():
            output = self._model.generate(
                input_ids=input_ids, attention_mask=mask, streamer=clock, **self._gen_kwargs
            )
        self.synchronize()
        end = time.perf_counter()
        generated = output[:, input_ids.shape[1] :].tolist()
        eos = self._eos_ids()
        counts = count_generated_tokens(generated, eos, stop_at_eos=not self.config.fixed_length)
        traces = static_batch_traces(
            prepared.input_tokens,
            counts,
            stopped_at_eos(generated, counts, eos),
            start_sec=start,
            step_times_sec=clock.times,
        )
        return BatchOutput(
            requests=traces, start_sec=start, end_sec=end, step_times_sec=clock.times, padded=True
        )

    def synchronize(self) -> None:
        torch = self._torch
        if torch is not None and torch.cuda.is_available() and self._device.type == "cuda":
            torch.cuda.synchronize(self._device)

    # ---- facts about the loaded model ----------------------------------------------------------

    def version(self) -> str | None:
        import transformers

        return str(transformers.__version__)

    def precision(self) -> PrecisionMetadata:
        from llenergymeasure.compute.precision import detect_precision

        return detect_precision(self._model)

    def gpu_indices(self) -> list[int]:
        devices = getattr(self._model, "hf_device_map", None) or {}
        current = self._current_cuda_device
        indices = cuda_indices(devices.values(), current)
        if not indices and self._device is not None and self._device.type == "cuda":
            indices = cuda_indices([self._device], current)
        return indices

    def _current_cuda_device(self) -> int:
        """The device a bare 'cuda' means in this process (set by torch.cuda.set_device)."""
        return int(self._torch.cuda.current_device())

    def memory_mb(self) -> tuple[float | None, float | None]:
        weights = self._model.get_memory_footprint() / 2**20
        torch = self._torch
        gpus = self.gpu_indices()
        if gpus:
            peak = sum(torch.cuda.max_memory_allocated(i) for i in gpus) / 2**20
        else:
            # ru_maxrss: KiB on Linux, bytes on macOS; the process's peak resident memory.
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
        return peak, weights

    def reset_peak_memory(self) -> None:
        for index in self.gpu_indices():
            self._torch.cuda.reset_peak_memory_stats(index)

    @property
    def model(self) -> Any:
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def close(self) -> None:
        self._model = None
        gc.collect()
        torch = self._torch
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


def _describe_load_error(model: str, exc: Exception) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if Path(model).exists():
        return f"model {model!r}: cannot load this local path as a causal LM ({first_line})"
    return (
        f"model {model!r} is not a local path and could not be loaded from the Hugging Face hub "
        f"(offline, no network, or no such model): {first_line}"
    )
