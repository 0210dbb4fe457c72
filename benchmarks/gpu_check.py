"""GPU acceptance check: are llem's numbers right on a real GPU? One script, under 8 minutes.

1. environment: GPU, driver, torch/CUDA, `llem doctor --json`;
2. instruments on one scripted load: NVML energy counter, NVML power polling (100 ms), an
   independent `nvidia-smi -lms 100` sampler, Zeus when importable; the counter's update period
   and how late power readings follow a step (on, off); bf16 matmul TFLOP/s against the peak table;
3. `llem run` on builtin:llama-1b (~1.2B parameters) at two batch sizes x two dtypes, windows of
   at least --window-sec: J/token, tokens/s, TTFT, TPOT, MFU, throttling, telemetry; `llem report`;
4. the harness against a bare `generate` loop, alternated in one process;
5. everything under one folder (--out), the summary table printed last (summary.md/.json).

A global time budget (--budget-sec) is respected: a part that no longer fits is skipped, and
the table says so. ``--dry-run`` plays the whole script on a CPU against a fake H200 (fake NVML
and a fake nvidia-smi from tests/fakes), a tiny model and short windows; CI runs it.

    bash benchmarks/gpu_check.sh            # on the GPU machine (installs the bundle first)
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu-check
"""

from __future__ import annotations

import argparse
import json
import os
import platform as pyplatform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if (ROOT / "src" / "llenergymeasure").is_dir() and not os.environ.get("GPU_CHECK_INSTALLED_LLEM"):
    sys.path.insert(0, str(ROOT / "src"))  # this checkout's llem, also in the subprocesses
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
else:
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import _gpu_instruments as instruments  # noqa: E402
import _gpu_runs as runs  # noqa: E402
from _gpu_summary import Budget, Summary, fmt, pct  # noqa: E402


@dataclass
class Platform:
    """Everything that differs between the real check and its dry run."""

    dry_run: bool
    llem: list[str]
    smi: list[str] | None
    make_load: Callable[[], Any]
    phases: instruments.Phases
    work: runs.Workload
    dtypes: list[str]
    batch_sizes: list[int]
    window_sec: float
    calib_tokens: int
    run_overhead_sec: float
    harness_batch: int
    harness_sec: float
    harness_rounds: int
    notes: list[str] = field(default_factory=list)


def real_platform(args: argparse.Namespace) -> Platform:
    smi = shutil.which("nvidia-smi")
    return Platform(
        dry_run=False,
        llem=[sys.executable, "-m", "llenergymeasure.cli.main"],
        smi=[smi] if smi else None,
        make_load=instruments.MatmulLoad,
        phases=instruments.Phases(),
        work=runs.Workload(args.model, input_tokens=128, new_tokens=128, baseline_sec=10),
        dtypes=["bfloat16", "float32"],
        batch_sizes=[8, 64],
        window_sec=args.window_sec or 30.0,
        calib_tokens=32,
        run_overhead_sec=20.0,
        harness_batch=8,
        harness_sec=6.0,
        harness_rounds=2,
    )


def dry_platform(args: argparse.Namespace, out: Path) -> Platform:
    """A fake H200 in this process (and in every llem subprocess), a fake nvidia-smi."""
    sys.path.insert(0, str(ROOT))  # the fakes live under tests/
    from tests.fakes.gpu_process import SwitchedPower, install_fake_gpu

    lag = 0.3
    origin = time.monotonic()
    power = SwitchedPower(idle_w=90.0, origin=origin, mirror=out / "fake_power_trace.txt")
    install_fake_gpu(power.trace(power_lag_sec=lag), origin=origin)
    return Platform(
        dry_run=True,
        llem=[sys.executable, "-m", "tests.fakes.gpu_process", "llenergymeasure.cli.main"],
        smi=[
            sys.executable,
            "-m",
            "tests.fakes.fake_nvidia_smi",
            "--trace-file",
            str(power.mirror),
            "--lag-sec",
            str(lag),
        ],
        make_load=lambda: instruments.FakeLoad(power),
        phases=instruments.Phases().scaled(0.5),
        work=runs.Workload(
            args.model or "builtin:tiny-llama", input_tokens=16, new_tokens=8, baseline_sec=1
        ),
        dtypes=["float32", "bfloat16"],
        batch_sizes=[2, 4],
        window_sec=args.window_sec or 1.0,
        calib_tokens=4,
        run_overhead_sec=15.0,
        harness_batch=2,
        harness_sec=0.5,
        harness_rounds=2,
        notes=[
            f"DRY RUN: fake H200 (power readings {lag} s late, counter every 0.1 s), "
            "fake nvidia-smi, CPU, tiny model"
        ],
    )


# ---- 1. environment ---------------------------------------------------------------------------


def part_environment(p: Platform, out: Path, summary: Summary) -> None:
    import torch
    import transformers

    from llenergymeasure.energy.devices import list_gpus
    from llenergymeasure.energy.nvml_api import Nvml, NvmlError

    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": pyplatform.platform(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "transformers": transformers.__version__,
        "llenergymeasure": _llem_origin(),
    }
    if torch.cuda.is_available():
        env["torch_device"] = torch.cuda.get_device_name(0)
    try:
        nvml = Nvml()
        try:
            env["nvml_gpus"] = [g.name for g in list_gpus(nvml)]
            env["driver"] = nvml.driver_version()
            env["cuda_driver"] = nvml.cuda_driver_version()
        finally:
            nvml.close()
    except NvmlError as exc:
        env["nvml_error"] = str(exc)
    if p.smi and not p.dry_run:
        smi_q = subprocess.run([*p.smi, "-q"], capture_output=True, text=True, timeout=30)
        (out / "nvidia-smi-q.txt").write_text(smi_q.stdout + smi_q.stderr)
    (out / "environment.json").write_text(json.dumps(env, indent=2))
    gpus = env.get("nvml_gpus") or []
    summary.add(
        "1 env",
        "GPU (NVML)",
        ", ".join(gpus) or env.get("nvml_error", "none"),
        "one H100/H200",
        "ok" if gpus else "FAIL",
    )
    summary.add("1 env", "driver / CUDA driver", f"{env.get('driver')} / {env.get('cuda_driver')}")
    summary.add(
        "1 env",
        "torch / CUDA / device",
        f"{env['torch']} / {env['torch_cuda']} / {env.get('torch_device', 'no CUDA device')}",
        "CUDA device" if not p.dry_run else "CPU (dry run)",
        "ok" if env["cuda_available"] != p.dry_run else "FAIL",
    )
    summary.add("1 env", "llem from", env["llenergymeasure"])
    doctor = subprocess.run(
        [*p.llem, "doctor", "--json"], capture_output=True, text=True, timeout=120
    )
    (out / "doctor.json").write_text(doctor.stdout or doctor.stderr)
    try:
        report = json.loads(doctor.stdout)
        nvml_status = next(i["status"] for i in report["instruments"] if i["name"] == "NVML")
        summary.add(
            "1 env",
            "llem doctor: auto instruments",
            report.get("auto", "?"),
            "NVML in use (energy counter)",
            "ok" if nvml_status == "in use" and "nvml_energy_counter" in report["auto"] else "FAIL",
        )
    except (json.JSONDecodeError, KeyError, StopIteration):
        last = (doctor.stderr.strip().splitlines() or ["no output"])[-1]
        summary.add("1 env", "llem doctor --json", f"exit {doctor.returncode}: {last}", "", "FAIL")


def _llem_origin() -> str:
    import llenergymeasure

    where = Path(llenergymeasure.__file__).resolve().parent
    source = "checkout" if where.is_relative_to(ROOT) else "installed"
    return f"{getattr(llenergymeasure, '__version__', '?')} ({source}: {where})"


# ---- 2. instruments -----------------------------------------------------------------------------


def part_instruments(p: Platform, out: Path, summary: Summary) -> None:
    figures = instruments.run(p.make_load, p.phases, p.smi, out)
    e = figures["energies_j"]
    counter = e.get("nvml_energy_counter")
    summary.add(
        "2 instruments", "window", f"{figures['window_sec']:.1f} s, counter {fmt(counter, 'J')}"
    )
    for name, limits in (
        ("nvml_power_polling", (0.05, 0.15)),
        ("nvidia_smi", (0.05, 0.15)),
        ("zeus", (0.01, 0.05)),
    ):
        if name not in e:
            continue
        diff = figures["energy_vs_counter"].get(name)
        status = (
            "FAIL"
            if diff is None
            else "ok"
            if abs(diff) <= limits[0]
            else "warn"
            if abs(diff) <= limits[1]
            else "FAIL"
        )
        summary.add(
            "2 instruments",
            f"{name} vs counter",
            f"{fmt(e[name], 'J')} ({pct(diff, signed=True)})",
            f"within {limits[0]:.0%}",
            status,
        )
    for note in figures["notes"]:
        summary.add("2 instruments", "note", note[:90], "", "skip" if "skipped" in note else "warn")
    period = figures["counter_update_median_sec"]
    summary.add(
        "2 instruments",
        "counter update period (median, p90)",
        f"{fmt(period, 's', 3)}, {fmt(figures['counter_update_p90_sec'], 's', 3)} "
        f"({figures['counter_updates_seen']} updates; poll every "
        f"{fmt(figures['fast_poll_median_sec'], 's', 4)})",
        f"<= {figures['assumed_counter_update_sec'] * 1.5:.2f} s (llem assumes "
        f"{figures['assumed_counter_update_sec']})",
        "ok"
        if period is not None and period <= figures["assumed_counter_update_sec"] * 1.5
        else "warn",
    )
    rise, fall = figures["counter_rise_delay_sec"], figures["counter_fall_delay_sec"]
    bound = 2.5 * (period or 0.1)
    summary.add(
        "2 instruments",
        "counter-derived power: delay after step on / off",
        f"{fmt(rise, 's', 3)} / {fmt(fall, 's', 3)}",
        f"<= {bound:.2f} s (2.5 updates)",
        "ok" if rise is not None and fall is not None and max(rise, fall) <= bound else "warn",
    )
    summary.add(
        "2 instruments",
        "power reading: delay after step on / off",
        f"{fmt(figures['power_rise_delay_sec'], 's', 3)} / "
        f"{fmt(figures['power_fall_delay_sec'], 's', 3)}",
        "info (NVML power is averaged)",
        "info",
    )
    summary.add(
        "2 instruments",
        "idle / busy power (NVML)",
        f"{fmt(figures['idle_power_w'], 'W')} / {fmt(figures['busy_power_w'], 'W')}",
    )
    if figures["load_tflops"] and not p.dry_run:
        from llenergymeasure.compute.peaks import peak_flops_per_sec

        peak = peak_flops_per_sec(figures["gpu"], "bf16")
        ratio = figures["load_tflops"] * 1e12 / peak[0] if peak else None
        summary.add(
            "2 instruments",
            "bf16 matmul 8192^3 vs peak table",
            f"{figures['load_tflops']:.0f} TFLOP/s = {pct(ratio)} of {peak[0] / 1e12:.0f}"
            if peak
            else f"{figures['load_tflops']:.0f} TFLOP/s, no peak",
            "50-100% of peak",
            "FAIL" if ratio is None or ratio > 1.02 else "ok" if ratio >= 0.5 else "warn",
        )


# ---- 3. llem runs, report; 4. harness vs bare ----------------------------------------------------


def part_runs(p: Platform, out: Path, summary: Summary, budget: Budget) -> dict[str, Any]:
    from llenergymeasure.engines import builtin

    state: dict[str, Any] = {"calibration": {}, "runs": []}
    if builtin.is_builtin(p.work.model):
        started = time.monotonic()
        path = builtin.builtin_path(p.work.model)
        took = time.monotonic() - started
        size_gb = sum(f.stat().st_size for f in path.iterdir()) / 1e9
        summary.add(
            "3 runs",
            f"build {p.work.model}",
            f"{'built' if took > 1 else 'cached'} in {took:.1f} s, {size_gb:.2f} GB",
            "< 60 s",
            "ok" if took < 60 else "warn",
        )
    for dtype in p.dtypes:
        started = time.monotonic()
        seconds, loaded = runs.calibrate(p.work, dtype, p.batch_sizes, p.calib_tokens)
        del loaded
        runs.free_memory()
        state["calibration"][dtype] = seconds
        summary.add(
            "3 runs",
            f"bare generate per batch, {dtype}",
            ", ".join(f"bs{bs}: {s:.2f} s" for bs, s in seconds.items())
            + f" (took {time.monotonic() - started:.0f} s)",
        )
    (out / "calibration.json").write_text(json.dumps(state["calibration"], indent=2))
    report_reserve = 20.0
    for dtype in p.dtypes:
        for bs in p.batch_sizes:
            name = f"{_short(dtype)}-bs{bs}"
            spb = state["calibration"][dtype][bs]
            n_batches = runs.n_batches_for(p.window_sec, spb)
            # the idle baseline is measured once, then cached per device for an hour
            baseline = 0.0 if state["runs"] else p.work.baseline_sec
            est = p.run_overhead_sec + (n_batches + 2) * spb + baseline
            if not budget.fits(est + report_reserve):
                summary.add(
                    "3 runs",
                    f"llem run {name}",
                    f"skipped: needs ~{est:.0f} s, {budget.left():.0f} s left",
                    "",
                    "skip",
                )
                continue
            config = p.work.config(dtype, bs, n_batches * bs)
            run = runs.llem_run(p.llem, config, name, out, timeout_sec=min(3 * est, budget.left()))
            run.update(dtype=dtype, batch_size=bs, bare_sec_per_batch=spb)
            state["runs"].append(run)
            _summarise_run(p, run, summary)
    done = [r for r in state["runs"] if "record" in r]
    if done:
        blind = [r["name"] for r in done if not r["report_sees_power"]]
        notes = sorted({n for r in done for n in r["report_notes"]})
        summary.add(
            "3 runs",
            "telemetry file read back by llem report's reader",
            f"power traces in {len(done) - len(blind)} of {len(done)} runs"
            + (f" | {notes[0][-60:]}" if blind and notes else ""),
            "power traces in every run",
            "FAIL" if blind else "ok",
        )
    (out / "runs.json").write_text(json.dumps(state["runs"], indent=2, default=str))
    _runs_table(state["runs"], out)
    if any("record" in r for r in state["runs"]):
        report = subprocess.run(
            [*p.llem, "report", str(out / "runs"), "-o", str(out / "report.html")],
            capture_output=True,
            text=True,
            timeout=max(30.0, budget.left()),
        )
        size = (out / "report.html").stat().st_size if (out / "report.html").exists() else 0
        summary.add(
            "3 runs",
            "llem report runs/",
            f"exit {report.returncode}, report.html {size / 1024:.0f} KiB",
            "exit 0, a page",
            "ok" if report.returncode == 0 and size > 10_000 else "FAIL",
        )
        listing = subprocess.run(
            [*p.llem, "results", "list", str(out / "runs")], capture_output=True, text=True
        )
        (out / "results_list.txt").write_text(listing.stdout + listing.stderr)
    return state


def _short(dtype: str) -> str:
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(dtype, dtype)


def _summarise_run(p: Platform, run: dict[str, Any], summary: Summary) -> None:
    check = f"llem run {run['name']}"
    if "error" in run:
        summary.add("3 runs", check, run["error"][:90], "a result", "FAIL")
        return
    r = run["record"]
    problems: list[str] = []
    warns: list[str] = []
    duration = run["window_sec"]
    if duration < p.window_sec:
        warns.append(f"window {duration:.1f} s < {p.window_sec:.0f} s")
    if run["gpu_methods"] != ["nvml_energy_counter"]:
        problems.append(f"GPU method {run['gpu_methods']}")
    expected_precision = {"bfloat16": "bf16", "float32": "fp32", "float16": "fp16"}[run["dtype"]]
    if r["compute_precision"] != expected_precision:
        problems.append(f"precision {r['compute_precision']}")
    mfu = r["mfu"]
    if p.dry_run:
        pass  # no CUDA device name on a CPU, so no peak and no MFU
    elif mfu is None or not 0 < mfu < 1:
        problems.append(f"MFU {mfu}")
    if r["throttled"]:
        warns.append("throttled")
    if not run["telemetry_file"] or not run["telemetry_rows"]:
        problems.append("no GPU telemetry")
    tel = runs_ratio(run["telemetry_gpu_j"], run["gpu_energy_j"])
    if tel is None or abs(tel - 1) > 0.05:
        warns.append(f"telemetry/counter {fmt(tel, '', 3)}")
    bare_tok_s = run["batch_size"] * p.work.new_tokens / run["bare_sec_per_batch"]
    run["harness_over_bare"] = r["tokens_per_second"] / bare_tok_s
    value = (
        f"{fmt(run['gpu_j_per_token'], 'J/tok', 4)} GPU, {r['tokens_per_second']:.0f} tok/s, "
        f"TTFT {fmt(r['ttft_p50_ms'], 'ms', 1)}, TPOT {fmt(r['itl_p50_ms'], 'ms', 2)}, "
        f"MFU {pct(mfu, 2)}, {duration:.0f} s"
    )
    if problems or warns:
        value += " | " + "; ".join(problems + warns)
    summary.add(
        "3 runs",
        check,
        value,
        f">= {p.window_sec:.0f} s, counter, {expected_precision}, MFU in (0,1), "
        "telemetry ~ counter",
        "FAIL" if problems else "warn" if warns else "ok",
    )


def runs_ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _runs_table(all_runs: list[dict[str, Any]], out: Path) -> None:
    """runs.md: one row per run with the figures the issue asks for."""
    head = (
        "| run | window s | output tok | tok/s | J/tok (all) | J/tok (GPU) | TTFT p50 ms | "
        "TPOT (ITL p50) ms | MFU | throttled | telemetry/counter | harness/bare tok/s |"
    )
    lines = [head, "|" + "---|" * 12]
    for run in all_runs:
        if "record" not in run:
            lines.append(f"| {run['name']} | {run.get('error', '')} |" + " |" * 10)
            continue
        r = run["record"]
        lines.append(
            f"| {run['name']} | {run['window_sec']:.1f} | {r['output_tokens']} | "
            f"{r['tokens_per_second']:.1f} | {fmt(r['energy_per_output_token_j'], '', 5)} | "
            f"{fmt(run['gpu_j_per_token'], '', 5)} | {fmt(r['ttft_p50_ms'], '', 2)} | "
            f"{fmt(r['itl_p50_ms'], '', 3)} | {pct(r['mfu'], 2)} | {r['throttled']} | "
            f"{fmt(runs_ratio(run['telemetry_gpu_j'], run['gpu_energy_j']), '', 4)} | "
            f"{fmt(run.get('harness_over_bare'), '', 3)} |"
        )
    (out / "runs.md").write_text("\n".join(lines) + "\n")


def part_harness(p: Platform, out: Path, summary: Summary, budget: Budget, state: dict) -> None:
    dtype, bs = p.dtypes[0], p.harness_batch
    spb = (
        state["calibration"].get(dtype, {}).get(bs)
        or state["calibration"][dtype][min(state["calibration"][dtype])]
    )
    n_batches = max(1, round(p.harness_sec / max(spb, 1e-6)))
    per_round = 2 * n_batches * spb + p.run_overhead_sec / 3
    rounds = min(p.harness_rounds, int((budget.left() - 15 - per_round) // per_round))
    if rounds < 1:
        summary.add(
            "4 harness",
            "harness vs bare generate",
            f"skipped: {budget.left():.0f} s left",
            "",
            "skip",
        )
        return
    _, loaded = runs.calibrate(p.work, dtype, sorted({bs, *p.batch_sizes}), p.calib_tokens)
    figures = runs.harness_vs_bare(
        p.work, loaded, dtype, bs, n_batches, rounds, out / "harness_vs_bare"
    )
    del loaded
    runs.free_memory()
    (out / "harness_vs_bare.json").write_text(json.dumps(figures, indent=2))
    ratio = figures["median_ratio"]
    summary.add(
        "4 harness",
        f"harness/bare tok/s ({_short(dtype)} bs{bs}, {rounds} rounds)",
        f"median {ratio:.3f} (" + ", ".join(f"{r['ratio']:.3f}" for r in figures["rounds"]) + ")",
        ">= 0.97",
        "ok" if ratio >= 0.97 else "warn" if ratio >= 0.9 else "FAIL",
    )


# ---- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, fake NVML, tiny model")
    parser.add_argument("--out", type=Path, default=None, help="output folder (created)")
    parser.add_argument("--budget-sec", type=float, default=None, help="time for everything")
    parser.add_argument("--window-sec", type=float, default=None, help="llem run windows")
    parser.add_argument("--model", default="builtin:llama-1b")
    parser.add_argument("--dtypes", nargs="+", default=None, help="dtypes of the llem runs")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=None, help="of the runs")
    args = parser.parse_args(argv)
    if args.dry_run and args.model == "builtin:llama-1b":
        args.model = None
    out = args.out or Path(f"gpu-check-{time.strftime('%Y%m%dT%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    budget = Budget(args.budget_sec or (300.0 if args.dry_run else 450.0))
    summary = Summary()
    p = dry_platform(args, out) if args.dry_run else real_platform(args)
    p.dtypes = args.dtypes or p.dtypes
    p.batch_sizes = args.batch_sizes or p.batch_sizes
    for note in p.notes:
        summary.add("0 mode", "mode", note, "", "info")
    state: dict[str, Any] = {}
    parts: list[tuple[str, float, Callable[[], Any]]] = [
        ("1 env", 20, lambda: part_environment(p, out, summary)),
        ("2 instruments", p.phases.total + 15, lambda: part_instruments(p, out, summary)),
        ("3 runs", 60, lambda: state.update(part_runs(p, out, summary, budget))),
        ("4 harness", 30, lambda: part_harness(p, out, summary, budget, state) if state else None),
    ]
    for name, need, part in parts:
        if not budget.fits(need):
            summary.add(
                name,
                "part",
                f"skipped: {budget.left():.0f} s left, needs ~{need:.0f} s",
                "",
                "skip",
            )
            continue
        started = time.monotonic()
        print(f"== {name} ({budget.left():.0f} s of budget left)", flush=True)
        try:
            part()
        except Exception as exc:  # one broken part must not hide the others' figures
            (out / f"error-{name.replace(' ', '_')}.txt").write_text(traceback.format_exc())
            summary.add(name, "part crashed", f"{type(exc).__name__}: {exc}"[:90], "", "FAIL")
        print(f"   {name} took {time.monotonic() - started:.0f} s", flush=True)
    summary.add(
        "5 total",
        "wall time",
        f"{budget.elapsed():.0f} s of {budget.total_sec:.0f} s",
        "< 480 s on the GPU",
        "ok" if budget.elapsed() <= budget.total_sec else "warn",
    )
    summary.write(out)
    print(summary.table(), flush=True)
    return 1 if summary.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
