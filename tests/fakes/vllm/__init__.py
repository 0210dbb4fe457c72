"""A fake ``vllm`` package for tests: vLLM 0.32's offline API, with a small simulated scheduler.

Named as a fake and found only when a test puts ``tests/fakes`` first on ``sys.path``. It keeps
the real names (``LLM``, ``SamplingParams``, ``RequestOutput``, ``CompletionOutput``,
``RequestStateStats`` and its fields, ``LLM.llm_engine.add_request / step /
has_unfinished_requests``) and the real clocks (arrival on the wall clock, engine stamps on the
monotonic clock). Requests really take time: every engine step sleeps a cost that grows with the
tokens it computes, so traces show queueing behind ``max_num_seqs``, and preemption (recompute)
when the running requests outgrow a KV budget of ``gpu_memory_utilization * KV_TOKENS_PER_UNIT``
tokens. Generated tokens are a deterministic function of the prompt; without ``ignore_eos`` some
requests emit EOS early.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.v1.metrics.stats import RequestStateStats

__version__ = "0.32.0"
__all__ = ["LLM", "CompletionOutput", "RequestOutput", "SamplingParams"]

#: KV cache tokens per unit of gpu_memory_utilization (so 0.05 holds 51 tokens).
KV_TOKENS_PER_UNIT = 1024
#: Simulated step cost: a fixed part plus a part per computed token (seconds).
STEP_BASE_SEC = 0.0004
STEP_PER_TOKEN_SEC = 0.00002

#: Every LLM built, with its keyword arguments (tests read what the engine passed).
CREATED: list[dict[str, Any]] = []


@dataclass
class _ModelConfig:
    dtype: Any
    hf_config: Any
    quantization: str | None
    max_model_len: int


@dataclass
class _Request:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    stats: RequestStateStats
    generated: list[int] = field(default_factory=list)
    emitted: int = 0
    needs_prefill: bool = True
    finished: bool = False
    finish_reason: str | None = None

    def kv_tokens(self) -> int:
        return len(self.prompt_ids) + len(self.generated) + 1


class _Engine:
    """The scheduler and the clock: what ``LLM.llm_engine`` is in vLLM."""

    def __init__(
        self,
        model_config: _ModelConfig,
        max_num_seqs: int,
        kv_tokens: int,
        eos_id: int,
        vocab: int,
        log_stats: bool,
    ) -> None:
        self.model_config = model_config
        self.max_num_seqs = max_num_seqs
        self.kv_tokens = kv_tokens
        self.eos_id = eos_id
        self.vocab = vocab
        self.log_stats = log_stats
        self.waiting: list[_Request] = []
        self.running: list[_Request] = []
        self.steps = 0

    def add_request(
        self,
        request_id: str,
        prompt: Any,
        params: SamplingParams,
        arrival_time: float | None = None,
    ) -> str:
        ids = list(prompt["prompt_token_ids"])
        stats = RequestStateStats(
            arrival_time=arrival_time or time.time(), queued_ts=time.monotonic()
        )
        self.waiting.append(_Request(request_id, ids, params, stats))
        return request_id

    def has_unfinished_requests(self) -> bool:
        return bool(self.waiting or self.running)

    def _token(self, request: _Request) -> int:
        position = len(request.generated)
        params = request.params
        early = 2 + sum(request.prompt_ids) % 5  # where this request would emit EOS
        if (
            not params.ignore_eos
            and position >= params.min_tokens
            and sum(request.prompt_ids) % 2 == 0
            and position == early
        ):
            return self.eos_id
        token = (sum(request.prompt_ids) * 31 + position * 7 + (params.seed or 0)) % self.vocab
        return token if token != self.eos_id else (token + 1) % self.vocab

    def _schedule(self) -> tuple[list[_Request], int]:
        # preempt (recompute) the latest admitted requests while the running ones overflow
        while len(self.running) > 1 and sum(r.kv_tokens() for r in self.running) > self.kv_tokens:
            victim = self.running.pop()
            victim.needs_prefill = True
            victim.stats.num_preemptions += 1
            self.waiting.insert(0, victim)
        while self.waiting and len(self.running) < self.max_num_seqs:
            candidate = self.waiting[0]
            used = sum(r.kv_tokens() for r in self.running)
            if self.running and used + candidate.kv_tokens() > self.kv_tokens:
                break
            self.waiting.pop(0)
            if not candidate.stats.scheduled_ts:
                candidate.stats.scheduled_ts = time.monotonic()
            self.running.append(candidate)
        computed = sum(
            len(r.prompt_ids) + len(r.generated) if r.needs_prefill else 1 for r in self.running
        )
        return list(self.running), computed

    def step(self) -> list[RequestOutput]:
        scheduled, computed = self._schedule()
        time.sleep(STEP_BASE_SEC + STEP_PER_TOKEN_SEC * computed)
        self.steps += 1
        now = time.monotonic()
        outputs = []
        for request in scheduled:
            request.needs_prefill = False
            token = self._token(request)
            request.generated.append(token)
            stats = request.stats
            stats.num_generation_tokens += 1
            if len(request.generated) == 1:
                stats.first_token_ts = now
                stats.first_token_latency = time.time() - stats.arrival_time
            stats.last_token_ts = now
            params = request.params
            if token == self.eos_id and not params.ignore_eos:
                request.finished, request.finish_reason = True, "stop"
            elif len(request.generated) >= (params.max_tokens or 16):
                request.finished, request.finish_reason = True, "length"
            if request.finished:
                self.running.remove(request)
            out = self._output(request)
            if out is not None:
                outputs.append(out)
        return outputs

    def _output(self, request: _Request) -> RequestOutput | None:
        kind = request.params.output_kind
        if kind == RequestOutputKind.FINAL_ONLY and not request.finished:
            return None
        if kind == RequestOutputKind.DELTA:
            tokens = request.generated[request.emitted :]
        else:
            tokens = list(request.generated)
        request.emitted = len(request.generated)
        completion = CompletionOutput(
            index=0,
            text="",
            token_ids=tokens,
            finish_reason=request.finish_reason if request.finished else None,
        )
        return RequestOutput(
            request_id=request.request_id,
            prompt=None,
            prompt_token_ids=request.prompt_ids,
            prompt_logprobs=None,
            outputs=[completion],
            finished=request.finished,
            metrics=request.stats if self.log_stats else None,
        )


class LLM:
    """Fake ``vllm.LLM``: loads the HF config and tokenizer of a local model folder."""

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        seed: int = 0,
        disable_log_stats: bool = True,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_num_seqs: int = 256,
        enforce_eager: bool = False,
        kv_cache_dtype: str = "auto",
        enable_prefix_caching: bool | None = None,
        quantization: str | None = None,
        max_num_batched_tokens: int | None = None,
        max_model_len: int | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise TypeError(f"LLM got unexpected keyword arguments {sorted(unknown)}")
        CREATED.append({k: v for k, v in locals().items() if k not in ("self", "unknown")})
        import torch
        from transformers import AutoConfig, AutoTokenizer

        hf_config = AutoConfig.from_pretrained(model)
        self._tokenizer = AutoTokenizer.from_pretrained(model)
        torch_dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(
            dtype, torch.float32
        )
        eos = hf_config.eos_token_id
        eos_id = int(eos[0] if isinstance(eos, list) else (eos if eos is not None else 0))
        self.llm_engine = _Engine(
            _ModelConfig(torch_dtype, hf_config, quantization, max_model_len or 2048),
            max_num_seqs=max_num_seqs,
            kv_tokens=int(gpu_memory_utilization * KV_TOKENS_PER_UNIT),
            eos_id=eos_id,
            vocab=int(hf_config.vocab_size),
            log_stats=not disable_log_stats,
        )
        self._counter = 0

    def get_tokenizer(self) -> Any:
        return self._tokenizer

    def generate(
        self, prompts: Any, sampling_params: SamplingParams | None = None, *, use_tqdm: bool = True
    ) -> list[RequestOutput]:
        params = sampling_params or SamplingParams()
        final = SamplingParams(**{**params.__dict__, "output_kind": RequestOutputKind.FINAL_ONLY})
        ids = []
        for prompt in prompts if isinstance(prompts, list) else [prompts]:
            request_id = str(self._counter)
            self._counter += 1
            ids.append(self.llm_engine.add_request(request_id, prompt, final))
        done: dict[str, RequestOutput] = {}
        while self.llm_engine.has_unfinished_requests():
            for out in self.llm_engine.step():
                done[out.request_id] = out
        return [done[i] for i in ids]
