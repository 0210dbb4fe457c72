"""`llem serve`: the reference OpenAI-compatible server over a model, for demos and tests."""

from __future__ import annotations

import typer

from llenergymeasure.errors import ConfigError


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: str = typer.Option(
            "builtin:tiny-llama", "--model", help="builtin:NAME, a local path or a hub id."
        ),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback)."),
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
        dtype: str = typer.Option("float32", "--dtype", help="float32, float16, bfloat16."),
    ) -> None:
        """Serve MODEL over an OpenAI-compatible API (/v1/completions, /v1/chat/completions,
        /v1/models, /health), streaming tokens as server-sent events.

        A reference server for trying the serving mode offline: one request is generated at a
        time and the rest queue. It is not a production server.
        """
        from llenergymeasure.serving.server import serve as run_server

        if dtype not in ("float32", "float16", "bfloat16"):
            raise ConfigError(f"--dtype {dtype!r}: allowed: float32, float16, bfloat16")
        typer.echo(f"loading {model}; serving on http://{host}:{port} (Ctrl-C stops)", err=True)
        run_server(model, host=host, port=port, dtype=dtype)
