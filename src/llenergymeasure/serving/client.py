"""An open-loop client: requests go out on schedule whatever the responses, each one streamed.

Every request is a task created at its scheduled time (``arrivals``), so a slow server never
delays the next send; the client's own lateness (actual minus scheduled send time) is recorded
per request. Responses are read as server-sent events (``data: {...}`` lines ending with
``data: [DONE]``), and every chunk that carries text is timestamped on arrival. Failures
(refused connection, HTTP errors, malformed or truncated streams) are recorded on the request,
never raised: a run always ends with one record per scheduled request.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamedRequest:
    """One request as the client saw it; times are ``time.perf_counter()`` seconds."""

    index: int
    scheduled_sec: float
    dispatch_sec: float = 0.0  # when the client's task woke up to send it
    sent_sec: float = 0.0  # when it was handed to the server (after any concurrency wait)
    first_token_sec: float | None = None
    token_times_sec: list[float] = field(default_factory=list)
    finish_sec: float | None = None
    input_tokens: int | None = None
    output_tokens: int = 0
    output_tokens_source: str = "counted"  # "usage" when the server reported it
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.finish_sec is not None

    @property
    def lag_sec(self) -> float:
        """How late the client dispatched this request against its schedule."""
        return self.dispatch_sec - self.scheduled_sec


@dataclass(frozen=True)
class RequestSpec:
    """What to send: a prompt and how many tokens to ask for."""

    prompt: str
    max_tokens: int


@dataclass(frozen=True)
class Target:
    """The server: base URL (``http://host:port``), model name, endpoint and options."""

    base_url: str
    model: str
    endpoint: str = "completions"  # or "chat"
    ignore_eos: bool = True
    timeout_sec: float = 600.0

    def url(self) -> str:
        path = "/v1/chat/completions" if self.endpoint == "chat" else "/v1/completions"
        return self.base_url.rstrip("/") + path

    def body(self, spec: RequestSpec) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": spec.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.0,
        }
        if self.ignore_eos:
            body["ignore_eos"] = True
        if self.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": spec.prompt}]
        else:
            body["prompt"] = spec.prompt
        return body


_JSON = {"Content-Type": "application/json"}


def _is_token(chunk: dict[str, Any]) -> bool:
    """A chunk that carries a generated token.

    Servers send one chunk per token; its text may be empty (a token that completes no
    character yet), so a chunk counts when it has text or is not a bare finish marker.
    """
    choices = chunk.get("choices") or []
    if not choices:
        return False  # e.g. the usage chunk
    choice = choices[0]
    if "text" in choice:
        text = choice["text"]
    else:
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if not text and "role" in delta:
            return False  # a chat stream's opening chunk names the role, no token yet
    return bool(text) or choice.get("finish_reason") is None


async def _stream_one(session: Any, target: Target, body: bytes, record: StreamedRequest) -> None:
    import aiohttp

    try:
        record.sent_sec = time.perf_counter()
        async with session.post(target.url(), data=body, headers=_JSON) as response:
            if response.status != 200:
                text = (await response.text())[:200].replace("\n", " ")
                record.error = f"HTTP {response.status}: {text}"
                return
            done = False
            async for raw in response.content:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    done = True
                    break
                now = time.perf_counter()
                try:
                    chunk = json.loads(payload)
                except json.JSONDecodeError:
                    record.error = f"malformed stream: {payload[:80]!r}"
                    return
                if _is_token(chunk):
                    if record.first_token_sec is None:
                        record.first_token_sec = now
                    record.token_times_sec.append(now)
                usage = chunk.get("usage")
                if usage:
                    record.input_tokens = usage.get("prompt_tokens", record.input_tokens)
                    if usage.get("completion_tokens") is not None:
                        record.output_tokens = int(usage["completion_tokens"])
                        record.output_tokens_source = "usage"
            if not done:
                record.error = "stream ended before [DONE]"
                return
            if record.output_tokens_source == "counted":
                record.output_tokens = len(record.token_times_sec)
            if record.output_tokens and record.first_token_sec is None:
                record.error = "the stream reported tokens but carried none"
                return
            record.finish_sec = time.perf_counter()
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"[:200]


async def run_load(
    target: Target,
    specs: Sequence[RequestSpec],
    offsets_sec: Sequence[float],
    *,
    max_concurrency: int | None = None,
    on_finished: Callable[[StreamedRequest], object] | None = None,
) -> tuple[float, list[StreamedRequest]]:
    """Send ``specs[i]`` at ``offsets_sec[i]`` after the start; returns (start, records).

    Every send is a timer set in advance on the event loop (``loop.call_at``), so a request
    starts in the loop iteration its time falls in, not behind a scheduler coroutine's own
    wake-up; bodies are encoded before the first send. The loop's timers have the resolution
    of its selector (1 ms with epoll), so a send is up to ~1 ms late on an idle machine; the
    lag recorded is from the schedule to the request's own start. Objects alive before the
    load are frozen out of the garbage collector for its duration (``gc.freeze``): a full
    collection over them (torch and transformers make ~200k) stalled the loop for 20-140 ms.
    ``on_finished`` is called with each request once it has finished or failed.
    """
    import aiohttp

    if len(specs) != len(offsets_sec):
        raise ValueError("one offset per request")
    limit = asyncio.Semaphore(max_concurrency) if max_concurrency else None
    connector = aiohttp.TCPConnector(limit=max_concurrency or 0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=target.timeout_sec)
    records = [StreamedRequest(index=i, scheduled_sec=0.0) for i in range(len(specs))]
    bodies = [json.dumps(target.body(spec)).encode() for spec in specs]
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    all_sent = loop.create_future()

    async def send(i: int) -> None:
        record = records[i]
        record.dispatch_sec = time.perf_counter()
        if limit is None:
            await _stream_one(session, target, bodies[i], record)
        else:
            async with limit:
                await _stream_one(session, target, bodies[i], record)
        if on_finished is not None:
            on_finished(record)

    def start(i: int) -> None:
        tasks.append(loop.create_task(send(i)))
        if len(tasks) == len(specs) and not all_sent.done():
            all_sent.set_result(None)

    gc.collect()  # before the clock starts, then collections only look at the load's objects
    gc.freeze()
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            loop_start = time.perf_counter()
            # perf_counter and the loop's monotonic clock tick together; map one onto the other
            to_loop = loop.time() - loop_start
            timers = []
            for i, offset in enumerate(offsets_sec):
                records[i].scheduled_sec = loop_start + offset
                timers.append(loop.call_at(records[i].scheduled_sec + to_loop, start, i))
            try:
                if specs:
                    await all_sent
                await asyncio.gather(*tasks)
            finally:
                for timer in timers:  # nothing more goes out once the run is cancelled
                    timer.cancel()
    finally:
        gc.unfreeze()
    return loop_start, records
