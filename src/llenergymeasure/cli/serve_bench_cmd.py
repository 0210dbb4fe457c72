"""`llem serve-bench`: energy and latency of an OpenAI-compatible server under a controlled load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from llenergymeasure.cli.console import console

if TYPE_CHECKING:
    from rich.table import Table

    from llenergymeasure.domain.results import ExperimentResult


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def rates_table(results: list[ExperimentResult]) -> Table:
    """One column per request rate, one row per figure: the energy-latency trade-off."""
    from rich.table import Table

    def rate(r: ExperimentResult) -> str:
        value = r.serving.load.request_rate_per_sec  # type: ignore[union-attr]
        return "all at once" if value is None else f"{value:g} req/s"

    table = Table(title="Serving: one column per request rate", show_header=True)
    table.add_column("figure")
    for r in results:
        table.add_column(rate(r), justify="right")
    rows: list[tuple[str, Callable[[ExperimentResult], str]]] = [
        ("achieved request rate /s", lambda r: f"{r.serving.achieved_request_rate_per_sec:.2f}"),
        ("output tokens /s (window)", lambda r: f"{r.serving.output_tokens_per_sec:.1f}"),
        ("J per output token", lambda r: f"{r.serving.energy_per_output_token_j:.4g}"),
        ("J per request", lambda r: f"{r.serving.energy_per_request_j:.4g}"),
        ("J per good request", lambda r: _j(r.serving.energy_per_good_request_j)),
        (
            "goodput /s (good requests)",
            lambda r: f"{r.serving.goodput_per_sec:.2f} ({r.serving.good_requests})",
        ),
        (
            "TTFT p50 / p99 ms",
            lambda r: f"{_ms(r.inference.ttft.p50_ms)} / {_ms(r.inference.ttft.p99_ms)}",
        ),
        (
            "TPOT p50 / p99 ms",
            lambda r: f"{_ms(r.inference.tpot.p50_ms)} / {_ms(r.inference.tpot.p99_ms)}",
        ),
        (
            "E2E p50 / p99 ms",
            lambda r: (
                f"{_ms(r.inference.request_latency.p50_ms)} / "
                f"{_ms(r.inference.request_latency.p99_ms)}"
            ),
        ),
        ("client lag p99 ms", lambda r: _ms(r.serving.client_lag.p99_ms)),
        (
            "requests ok / failed",
            lambda r: f"{r.serving.requests_ok} / {r.serving.requests_failed}",
        ),
        (
            "window",
            lambda r: (
                f"{r.serving.window_sec:.1f} s "
                f"({'steady' if r.serving.steady_state else 'whole run'})"
            ),
        ),
    ]
    for name, cell in rows:
        table.add_row(name, *(cell(r) for r in results))
    return table


def _j(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def register(app: typer.Typer) -> None:
    @app.command("serve-bench")
    def serve_bench(
        config: Path = typer.Argument(
            ..., help="Serving YAML (scenario: serving).", metavar="config"
        ),
        url: str | None = typer.Option(None, "--url", help="Base URL of a running server."),
        launch: str | None = typer.Option(None, "--launch", help="Command that starts it."),
        rate: list[float] | None = typer.Option(
            None, "--rate", help="Requests per second (repeat to sweep; inf: all at once)."
        ),
        n_requests: int | None = typer.Option(None, "-n", "--n-requests", min=1),
        output: Path | None = typer.Option(None, "-o", "--output", help="Output directory."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ) -> None:
        """Measure a server under load: per-request latency by streaming, energy of the GPUs
        (and host) in the steady-state window, J per output token, per request and per good
        request, goodput against SLOs. Writes OUTPUT/<run>/rate-<r>/result.json per rate."""
        from llenergymeasure.config.loading import read_yaml, validate
        from llenergymeasure.config.serving import ServingConfig
        from llenergymeasure.serving.experiment import run_serving

        data = read_yaml(config)
        if url is not None:
            data.setdefault("server", {})["url"] = url
        if launch is not None:
            data.setdefault("server", {})["launch"] = launch
        if rate:
            data.setdefault("load", {})["request_rate"] = rate if len(rate) > 1 else rate[0]
        if n_requests is not None:
            data.setdefault("load", {})["n_requests"] = n_requests
        if output is not None:
            data["output_dir"] = str(output)
        serving = validate(ServingConfig, data, source=str(config))
        if quiet:
            results = run_serving(serving)
        else:
            from llenergymeasure.cli.run_cmd import RichReporter

            with RichReporter() as reporter:
                results = run_serving(serving, reporter=reporter)
        console.print(rates_table(results))
        for warning in dict.fromkeys(w for r in results for w in r.warnings):
            typer.echo(f"warning: {warning}", err=True)
        typer.echo(f"wrote {len(results)} result(s) under {serving.output_dir}", err=True)
