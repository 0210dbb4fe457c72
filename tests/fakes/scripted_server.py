"""A scripted OpenAI-compatible test server: known delays, a concurrency limit, failure modes.

Every streamed completion waits ``first_token_sec`` before its first token and
``token_sec`` between tokens; at most ``concurrency`` requests are served at once, the rest
queue (so queueing shows in time to first token). ``mode`` makes it fail on purpose:
``"http500"``, ``"malformed"`` (a chunk that is not JSON) or ``"truncated"`` (no [DONE]).
Runs on 127.0.0.1 in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class Script:
    first_token_sec: float = 0.05
    token_sec: float = 0.01
    concurrency: int = 64
    mode: str = "ok"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ScriptedServer:
    """Start with ``with ScriptedServer(Script(...)) as url:``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: Any = None

    def __enter__(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        limit = asyncio.Semaphore(self.script.concurrency)
        script = self.script

        async def completions(request: web.Request) -> web.StreamResponse:
            body = await request.json()
            n = int(body.get("max_tokens", 4))
            if script.mode == "http500":
                return web.json_response({"error": "scripted failure"}, status=500)
            async with limit:
                response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await response.prepare(request)
                await asyncio.sleep(script.first_token_sec)
                for i in range(n):
                    if i:
                        await asyncio.sleep(script.token_sec)
                    if script.mode == "malformed" and i == 1:
                        await response.write(b"data: {not json\n\n")
                        continue
                    chunk = {"choices": [{"index": 0, "text": f"t{i}"}]}
                    await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                usage = {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5}
                last = json.dumps({"choices": [], "usage": usage})
                await response.write(f"data: {last}\n\n".encode())
                if script.mode != "truncated":
                    await response.write(b"data: [DONE]\n\n")
                await response.write_eof()
                return response

        async def health(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/v1/completions", completions)
            app.router.add_get("/health", health)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()


def main() -> None:
    """``python -m tests.fakes.scripted_server PORT [FIRST_TOKEN_SEC TOKEN_SEC]``: serve forever."""
    import sys
    import time

    port = int(sys.argv[1])
    first, token = (float(x) for x in sys.argv[2:4]) if len(sys.argv) >= 4 else (0.0, 0.0)
    server = ScriptedServer(Script(first_token_sec=first, token_sec=token, concurrency=10_000))
    server.port = port
    with server:
        print("ready", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
