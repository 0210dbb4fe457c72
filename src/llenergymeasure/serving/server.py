"""A small OpenAI-compatible streaming server over a transformers model, for reference only.

It exists so the serving mode works offline and in tests (``llem serve``): ``/health``,
``/v1/models``, ``/v1/completions`` and ``/v1/chat/completions``, streamed as server-sent events
or answered whole. Requests are generated one at a time (a lock around ``generate``), so a load
above its capacity queues, and the queueing shows in time to first token. Binds to 127.0.0.1
unless told otherwise.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

DONE = object()


class _QueueStreamer:
    """A transformers streamer that hands each new token id to an asyncio queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
        self._loop, self._queue = loop, queue
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first passes the prompt ids
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self._loop.call_soon_threadsafe(self._queue.put_nowait, int(token))

    def end(self) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, DONE)


class ModelRunner:
    """The loaded model and tokenizer; generates one request at a time."""

    def __init__(self, model: str, *, dtype: str = "float32") -> None:
        import torch
        import transformers

        from llenergymeasure.engines.builtin import builtin_path, is_builtin

        source = str(builtin_path(model)) if is_builtin(model) else model
        self.name = model
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(source)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            source, dtype=getattr(torch, dtype)
        )
        self.model.eval()
        self._torch = torch
        self.lock = asyncio.Lock()

    def encode(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt)["input_ids"]) or [self.tokenizer.bos_token_id or 0]

    def generate(
        self, ids: list[int], max_tokens: int, ignore_eos: bool, streamer: _QueueStreamer
    ) -> None:
        torch = self._torch
        with torch.inference_mode():
            self.model.generate(
                input_ids=torch.tensor([ids]),
                attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens if ignore_eos else 0,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                streamer=streamer,
            )

    async def stream_tokens(
        self, ids: list[int], max_tokens: int, ignore_eos: bool
    ) -> AsyncIterator[int]:
        """Token ids as they are generated (after waiting for the model to be free)."""
        async with self.lock:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Any] = asyncio.Queue()
            streamer = _QueueStreamer(loop, queue)
            worker = threading.Thread(
                target=self._generate_safely,
                args=(ids, max_tokens, ignore_eos, streamer),
                daemon=True,
            )
            worker.start()
            while True:
                item = await queue.get()
                if item is DONE:
                    break
                yield item
            worker.join()

    def _generate_safely(
        self, ids: list[int], max_tokens: int, ignore_eos: bool, streamer: _QueueStreamer
    ) -> None:
        try:
            self.generate(ids, max_tokens, ignore_eos, streamer)
        finally:
            streamer.end()


class BadRequest(ValueError):
    """A request body the server cannot serve (answered with HTTP 400)."""


def _parse(body: Any, chat: bool) -> tuple[str, int, bool, bool, bool]:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty list")
        prompt = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise BadRequest("'prompt' must be a string")
    max_tokens = body.get("max_tokens", 16)
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest("'max_tokens' must be a positive integer")
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return prompt, max_tokens, bool(body.get("stream")), bool(body.get("ignore_eos")), include_usage


def create_app(runner: ModelRunner) -> Any:
    """The aiohttp application serving ``runner``."""
    from aiohttp import web

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def models(_: web.Request) -> web.Response:
        data = [{"id": runner.name, "object": "model", "owned_by": "llenergymeasure"}]
        return web.json_response({"object": "list", "data": data})

    async def complete(request: web.Request, chat: bool) -> web.StreamResponse:
        try:
            prompt, max_tokens, stream, ignore_eos, include_usage = _parse(
                await request.json(), chat
            )
        except (BadRequest, json.JSONDecodeError) as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        ids = runner.encode(prompt)
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:16]}"
        created = int(time.time())
        kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text: str | None, finish: str | None = None) -> dict[str, Any]:
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
            if chat:
                choice["delta"] = {"content": text} if text is not None else {}
            else:
                choice["text"] = text or ""
            return {
                "id": rid,
                "object": kind,
                "created": created,
                "model": runner.name,
                "choices": [choice],
            }

        def usage(n: int) -> dict[str, int]:
            return {"prompt_tokens": len(ids), "completion_tokens": n, "total_tokens": len(ids) + n}

        tokens: list[int] = []
        if not stream:
            async for token in runner.stream_tokens(ids, max_tokens, ignore_eos):
                tokens.append(token)
            text = runner.tokenizer.decode(tokens)
            body = chunk(text, "length")
            if chat:
                body["choices"][0] = {
                    "index": 0,
                    "finish_reason": "length",
                    "message": {"role": "assistant", "content": text},
                }
            body["object"] = "chat.completion" if chat else "text_completion"
            body["usage"] = usage(len(tokens))
            return web.json_response(body)

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(payload: Any) -> None:
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())

        async for token in runner.stream_tokens(ids, max_tokens, ignore_eos):
            tokens.append(token)
            # One chunk per token; its text may be empty (a token that completes no character).
            await send(chunk(runner.tokenizer.decode([token])))
        await send(chunk(None, "length"))  # the finish reason, no text
        if include_usage:
            await send(chunk(None) | {"choices": [], "usage": usage(len(tokens))})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)

    async def completions(request: web.Request) -> web.StreamResponse:
        return await complete(request, chat=False)

    async def chat_completions(request: web.Request) -> web.StreamResponse:
        return await complete(request, chat=True)

    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", chat_completions)
    return app


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000, dtype: str = "float32") -> None:
    """Load ``model`` and serve it until interrupted; user mistakes raise ConfigError."""
    from aiohttp import web

    from llenergymeasure.errors import ConfigError

    try:
        runner = ModelRunner(model, dtype=dtype)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"model {model!r}: cannot load it ({first})") from None
    try:
        web.run_app(create_app(runner), host=host, port=port, print=None)
    except OSError as exc:
        raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
