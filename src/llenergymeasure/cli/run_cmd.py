"""`llem run`: one experiment end to end, with progress bars and a summary table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from llenergymeasure.cli.console import console, error_console, exit_interrupted

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID
    from rich.table import Table

    from llenergymeasure.domain.results import ExperimentResult


class RichReporter:
    """Progress bars on stderr, redrawn only when the harness reports (no refresh thread).

    A refresh thread would run during the measurement window and compete with the measured
    work for the CPU, so bars are redrawn on each report instead, at most every
    ``MIN_REFRESH_SEC``.
    """

    MIN_REFRESH_SEC = 0.25

    def __init__(self, console: Console | None = None) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description:<14}"),
            BarColumn(),
            TextColumn("{task.completed:>4.0f}/{task.fields[total_text]}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console or error_console.get(),  # type: ignore[attr-defined]
            auto_refresh=False,
            transient=False,
        )
        self._task: TaskID | None = None
        self._stage_tasks: list[TaskID] = []
        self._last_refresh = 0.0

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._finish_task()
        self._progress.stop()

    def _finish_task(self) -> None:
        """Close the current bar at what was done (a warmup may stop before its maximum)."""
        if self._task is not None:
            task = next(t for t in self._progress.tasks if t.id == self._task)
            done = task.completed if task.total is None or task.completed else task.total
            done = done or 1
            self._progress.update(self._task, total=done, completed=done, total_text=f"{done:g}")
            self._progress.refresh()

    def clear_stages(self) -> None:
        """Remove the stage bars (a study does this between its experiments)."""
        for task_id in self._stage_tasks:
            self._progress.remove_task(task_id)
        self._stage_tasks.clear()
        self._task = None

    def stage(self, name: str, total: float | None = None) -> None:
        self._finish_task()
        text = "" if total is None else f"{total:g}"
        if name == "baseline" and total:
            name, text = "baseline", f"{total:g} s idle"
        self._task = self._progress.add_task(name, total=total, total_text=text, info="")
        self._stage_tasks.append(self._task)
        self._progress.refresh()

    def advance(self, amount: float = 1.0, info: str | None = None) -> None:
        if self._task is not None:
            self._progress.update(self._task, advance=amount, info=info or "")
            now = time.monotonic()
            if now - self._last_refresh >= self.MIN_REFRESH_SEC:
                self._last_refresh = now
                self._progress.refresh()

    def message(self, text: str) -> None:
        self._progress.console.print(text, highlight=False)


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def summary_table(result: ExperimentResult, path: Path | None = None) -> Table:
    """The figures a user looks at first, each with where it came from."""
    energy, inference, compute = result.energy, result.inference, result.compute
    from rich.table import Table

    table = Table(title=f"Experiment {result.experiment_id}", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("provenance")
    adjusted = ""
    if energy.adjusted_energy_j is not None and inference.output_tokens:
        adjusted = f" (idle-adjusted {energy.adjusted_energy_j / inference.output_tokens:.4g})"
    rows: list[tuple[str, str, str]] = [
        (
            "model",
            str(result.config.get("model", "-")),
            f"{result.config.get('engine', 'transformers')}, batch "
            f"{result.config.get('batch_size')}, {inference.arrival_model} arrivals",
        ),
        (
            "energy per output token",
            f"{result.energy_per_output_token_j:.4g} J{adjusted}",
            f"{energy.method} ({energy.confidence} confidence)",
        ),
        (
            "total energy",
            f"{energy.total_energy_j:.4g} J",
            f"mean power {energy.mean_power_w:.1f} W",
        ),
        (
            "throughput",
            f"{inference.tokens_per_second:.1f} tok/s",
            f"{inference.output_tokens} tokens in {inference.inference_time_sec:.2f} s",
        ),
        *(
            (
                f"{label} p50 / p99",
                f"{_ms(stats.p50_ms)} / {_ms(stats.p99_ms)}"
                if stats.method != "not_reported"
                else "-",
                f"{inference.latency_method}, {stats.method}",
            )
            for label, stats in (
                ("TTFT", inference.ttft),
                ("TPOT", inference.tpot),
                ("ITL", inference.itl),
                ("E2E", inference.request_latency),
            )
        ),
        (
            "FLOPs per output token",
            f"{compute.flops_per_output_token:.4g}",
            f"{compute.flops.method} ({compute.flops.confidence}), {compute.flops.precision}",
        ),
        ("tokens per joule", f"{result.normalised.tokens_per_joule:.4g}", "normalised"),
        (
            "throttling",
            "[red]detected[/]" if result.thermal.detected else "none",
            _throttle_causes(result) or "NVML clock-event reasons",
        ),
        (
            "warmup",
            "converged" if result.warmup_converged else "[yellow]not converged[/]",
            ", ".join(
                f"CV {w.final_cv:.3f} / target {w.target_cv} after {w.iterations_completed}"
                for w in result.warmup
            ),
        ),
    ]
    if compute.mfu is not None:
        rows.append(("MFU", f"{compute.mfu:.2%}", compute.peak_flops_source or ""))
    for row in rows:
        table.add_row(*row)
    if path is not None:
        table.caption = f"result: {path}"
    return table


def _throttle_causes(result: ExperimentResult) -> str:
    t = result.thermal
    causes = [
        name for name in ("sw_thermal", "hw_thermal", "hw_power", "power") if getattr(t, name)
    ]
    if not causes:
        return ""
    return f"{', '.join(causes)} for {t.throttle_duration_sec:.1f} s"


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        config: Path | None = typer.Argument(
            None, help="Experiment YAML; without it, the built-in quickstart (tiny model, CPU-ok)."
        ),
        model: str | None = typer.Option(
            None, "--model", help="Hub id, local path or builtin:NAME."
        ),
        engine: str | None = typer.Option(
            None, "--engine", help="transformers or vllm (needs the vllm extra)."
        ),
        arrival: str | None = typer.Option(
            None,
            "--arrival",
            help="closed or all_at_once; default: closed for transformers, all_at_once for vllm.",
        ),
        batch_size: int | None = typer.Option(
            None, "--batch-size", "-b", help="Prompts per batch."
        ),
        dtype: str | None = typer.Option(None, "--dtype", help="auto, float32, float16, bfloat16."),
        n_prompts: int | None = typer.Option(None, "-n", "--n-prompts", help="Prompts measured."),
        max_output_tokens: int | None = typer.Option(
            None, "--max-output-tokens", help="New tokens per prompt."
        ),
        energy: str | None = typer.Option(
            None, "--energy", help="auto, nvml, rapl, zeus, codecarbon, estimate."
        ),
        baseline_sec: float | None = typer.Option(
            None, "--baseline-sec", help="Idle baseline seconds before measuring (0: none)."
        ),
        output: Path | None = typer.Option(None, "-o", "--output", help="Output directory."),
        processes: int | None = typer.Option(
            None, "--processes", "-p", help="Data-parallel worker processes, one device each."
        ),
        allow_partial: bool = typer.Option(
            False, "--allow-partial", help="Aggregate even if a worker failed (with a warning)."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ) -> None:
        """Run one experiment and write OUTPUT/<experiment_id>/result.json."""
        from llenergymeasure.config.loading import load_experiment_config
        from llenergymeasure.measure.experiment import new_experiment_id, run_experiment
        from llenergymeasure.results.io import RESULT_FILENAME

        overrides: dict[str, Any] = {
            "model": model,
            "engine": engine,
            "arrival": arrival,
            "batch_size": batch_size,
            "dtype": dtype,
            "n_prompts": n_prompts,
            "max_output_tokens": max_output_tokens,
            "energy": energy,
            "baseline_sec": baseline_sec,
            "output_dir": str(output) if output is not None else None,
            "processes": processes,
        }
        cfg = load_experiment_config(config, overrides)
        experiment_id = new_experiment_id(cfg)
        path = Path(cfg.output_dir) / experiment_id / RESULT_FILENAME
        try:
            if quiet:
                result = run_experiment(
                    cfg, experiment_id=experiment_id, allow_partial=allow_partial
                )
            else:
                with RichReporter() as reporter:
                    result = run_experiment(
                        cfg,
                        experiment_id=experiment_id,
                        reporter=reporter,
                        allow_partial=allow_partial,
                    )
        except KeyboardInterrupt:
            exit_interrupted(
                f"no result written for {experiment_id} (its directory holds only the log); "
                f"earlier results in {cfg.output_dir} are untouched."
            )
        console.print(summary_table(result, path))
        for warning in result.warnings:
            error_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
