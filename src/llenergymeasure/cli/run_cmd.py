"""`llem run`: one experiment end to end, with progress bars and a summary table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from llenergymeasure.cli.console import (
    console,
    directory_contents,
    error_console,
    exit_interrupted,
    warn,
)
from llenergymeasure.signals import INTERRUPTS

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
            TextColumn("{task.description:<14}", style="bold", markup=False),
            BarColumn(),
            TextColumn("{task.completed:>4.0f}/{task.fields[total_text]}", markup=False),
            TextColumn("{task.fields[info]}", markup=False),
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
        self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def summary_table(result: ExperimentResult, path: Path | None = None) -> Table:
    """The figures a user looks at first, each with where it came from (cells never markup)."""
    from llenergymeasure.results.views import energy_by_kind_text, useful_share_text

    energy, inference, compute = result.energy, result.inference, result.compute
    normalised = result.normalised
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Experiment {result.experiment_id}", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("provenance")
    adjusted = ""
    if result.adjusted_energy_per_output_token_j is not None:
        adjusted = f" (idle-adjusted {result.adjusted_energy_per_output_token_j:.4g})"
    per_joule = f"{normalised.tokens_per_joule:.4g}"
    if normalised.adjusted_tokens_per_joule is not None:
        per_joule += f" (idle-adjusted {normalised.adjusted_tokens_per_joule:.4g})"
    warmup_not_converged = any(w.mode == "cv" and not w.converged for w in result.warmup)
    statuses = ", ".join(dict.fromkeys(w.status for w in result.warmup)) or "none"
    rows: list[tuple[str | Text, ...]] = [
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
            f"{energy_by_kind_text(energy)}; mean power {energy.mean_power_w:.1f} W",
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
            f"executed, {compute.flops.method} ({compute.flops.confidence}), "
            f"{compute.flops.precision}; useful share {useful_share_text(compute)}",
        ),
        ("tokens per joule", per_joule, "raw energy (idle-adjusted in brackets)"),
        (
            "throttling",
            Text("detected", style="red") if result.thermal.detected else "none",
            _throttle_causes(result) or "NVML clock-event reasons",
        ),
        (
            "warmup",
            Text(statuses, style="yellow") if warmup_not_converged else statuses,
            "; ".join(w.describe() for w in result.warmup),
        ),
    ]
    if compute.mfu is not None:
        basis = "useful" if compute.useful_flops is not None else "executed"
        rows.append(
            (
                "MFU",
                f"{compute.mfu:.2%}",
                f"{basis} FLOPs/s / peak ({compute.peak_flops_source or '-'})",
            )
        )
    if (carbon := result.carbon) is not None:
        i = carbon.intensity
        rows.append(
            (
                "carbon per output token",
                f"{carbon.co2e_per_output_token_g:.4g} gCO2e",
                f"{i.region or 'world average'}: {i.value_g_per_kwh:.4g} {i.unit} x PUE "
                f"{carbon.pue:g} ({carbon.confidence} confidence)",
            )
        )
    if (cost := result.cost) is not None:
        rows.append(
            (
                "cost per 1M output tokens",
                f"{cost.cost_per_million_output_tokens_usd:.4g} USD",
                f"{cost.gpu_count} GPU, {cost.node_count} node, window {cost.duration_sec:.4g} s",
            )
        )
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
        baseline_settle_sec: float | None = typer.Option(
            None, "--baseline-settle-sec", help="Rest after warmup before the idle baseline."
        ),
        no_baseline_cache: bool = typer.Option(
            False, "--no-baseline-cache", help="Measure the idle baseline now; no cache."
        ),
        refresh_baseline: bool = typer.Option(
            False, "--refresh-baseline", help="Measure the idle baseline now and re-cache it."
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
        from llenergymeasure.files import check_output_dir
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
            "baseline_settle_sec": baseline_settle_sec,
            "baseline_cache": False
            if no_baseline_cache
            else "refresh"
            if refresh_baseline
            else None,
            "output_dir": str(output) if output is not None else None,
            "processes": processes,
        }
        cfg = load_experiment_config(config, overrides)
        check_output_dir(cfg.output_dir, "-o" if output is not None else "output_dir")
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
        except INTERRUPTS as exc:
            exit_interrupted(
                f"no result written for {experiment_id}; "
                f"{directory_contents(path.parent)}; "
                f"earlier results in {cfg.output_dir} are untouched.",
                exc,
            )
        console.print(summary_table(result, path))
        for warning in result.warnings:
            warn(warning)
