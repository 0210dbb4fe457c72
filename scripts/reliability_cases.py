"""Run every case of issue 19 through the real `llem` and print a markdown table of what happened.

Usage: PYTHONPATH=src python scripts/reliability_cases.py WORKDIR RESULT_DIR
(RESULT_DIR: an experiment directory holding a result.json, copied for the duplicate-id case).
Each row: the case, the command, its exit status and the last line it printed on stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

LLEM = [sys.executable, "-m", "llenergymeasure.cli.main"]
ROWS: list[tuple[str, str, str, str]] = []


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def record(case: str, shown: str, code: int | None, err: str) -> None:
    ROWS.append((case, shown, str(code), last_line(err).replace("|", "\\|")))
    print(f"{case}: {code}: {last_line(err)}", file=sys.stderr, flush=True)


def run(case: str, args: list[str], cwd: Path, shown: str | None = None) -> str:
    proc = subprocess.run([*LLEM, *args], capture_output=True, text=True, cwd=cwd)
    record(case, shown or "llem " + " ".join(args), proc.returncode, proc.stderr)
    return proc.stderr


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*LLEM, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        start_new_session=True,
    )


def wait_for(path: Path, proc: subprocess.Popen[str], pattern: str = "") -> None:
    deadline = time.monotonic() + 300
    while not (list(path.glob(pattern)) if pattern else path.exists()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{proc.args} ended early: {proc.communicate()[1]}")
        time.sleep(0.1)


SLOW = (
    "  model: builtin:tiny-llama\n  n_prompts: 64\n  max_output_tokens: 64\n"
    "  baseline_sec: 0\n  energy: estimate\n  warmup: {mode: fixed, n: 300}\n"
)
QUICK = (
    "  model: builtin:tiny-llama\n  n_prompts: 2\n  batch_size: 1\n  max_output_tokens: 2\n"
    "  baseline_sec: 0\n  energy: estimate\n  warmup: {mode: fixed, n: 0}\n"
)


def main() -> None:
    work, result_dir = Path(sys.argv[1]).absolute(), Path(sys.argv[2]).absolute()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "afile").write_text("keep me\n")
    (work / "slow.yaml").write_text("name: slow\nbase:\n" + SLOW)
    (work / "other.yaml").write_text("name: other\nbase:\n" + SLOW)
    (work / "quick.yaml").write_text("name: quick\nbase:\n" + QUICK)
    (work / "slow_run.yaml").write_text("".join(x[2:] + "\n" for x in SLOW.splitlines()))
    (work / "nul_out.yaml").write_text('output_dir: "out\\0put"\n')
    (work / "nul_name.yaml").write_text('name: "a\\0b"\n')
    (work / "empty.yaml").write_text("experiments: []\n")
    (work / "slash.yaml").write_text("name: a/b\n")
    (work / "p.jsonl").write_text('{"content": "hello"}\n')
    (work / "bad_prompts.yaml").write_text(
        f"prompts: {{source: file, path: {work / 'p.jsonl'}}}\nbaseline_sec: 0\n"
    )

    # 1. one writer per directory
    first = start(["study", "slow.yaml", "-o", "st", "-q"], work)
    wait_for(work / "st" / "slow" / "runs", first, "*/child.log")
    t0, cpu0 = time.monotonic(), os.times()
    err = run("1 second study, same directory", ["study", "slow.yaml", "-o", "st", "-q"], work)
    took, cpu1 = time.monotonic() - t0, os.times()
    cpu = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
    load = os.getloadavg()[0]
    ROWS[-1] = (
        *ROWS[-1][:3],
        ROWS[-1][3] + f" *(exited after {took:.1f} s wall, {cpu:.2f} s CPU, load {load:.0f})*",
    )
    other = start(["study", "other.yaml", "-o", "st2", "-q"], work)
    wait_for(work / "st2" / "other" / "runs", other, "*/child.log")
    os.kill(other.pid, signal.SIGTERM)
    _, other_err = other.communicate(timeout=120)
    warned = [x for x in other_err.splitlines() if "another llem" in x]
    record(
        "1 another study running elsewhere (warning, then SIGTERM)",
        "llem study other.yaml -o st2 -q",
        other.returncode,
        (warned[0] + " … " if warned else "") + last_line(other_err),
    )
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    record("1 first study SIGKILLed (process group)", "kill -KILL -PGID", first.returncode, "")
    quick = start(["study", "quick.yaml", "-o", "st3", "-q"], work)
    wait_for(work / "st3" / "quick" / "runs", quick, "*/child.log")
    os.killpg(quick.pid, signal.SIGKILL)
    quick.wait()
    err = run("1 resume after SIGKILL", ["study", "--resume", "st3/quick", "-q"], work)
    manifest = json.loads((work / "st3" / "quick" / "manifest.json").read_text())
    ROWS[-1] = (
        *ROWS[-1][:3],
        "statuses "
        + str([(r["status"], r["attempts"]) for r in manifest["runs"]])
        + " (no lock error)",
    )

    # 2. huge n_prompts
    run("2 huge n_prompts", ["run", "-n", "10000000", "-o", "out2"], work)

    # 3. output locations
    run("3 run -o FILE", ["run", "-o", "afile"], work)
    run("3 run -o FILE/sub", ["run", "-o", "afile/sub"], work)
    run("3 study -o FILE", ["study", "quick.yaml", "-o", "afile"], work)
    run("3 NUL in output_dir (YAML)", ["run", "nul_out.yaml"], work)
    run("3 NUL in study name, --dry-run", ["study", "nul_name.yaml", "--dry-run"], work)
    res = str(result_dir.parent)
    run("3 results export -o DIR", ["results", "export", res, "-o", "."], work)
    run("3 report -o DIR", ["report", res, "-o", "."], work)
    run("3 schema -o DIR", ["schema", "-o", "."], work)
    run("3 export -o missing parent", ["results", "export", res, "-o", "no/x.csv"], work)
    run("3 export -o parent is a file", ["results", "export", res, "-o", "afile/x.csv"], work)
    run("3 report -o parent is a file", ["report", res, "-o", "afile/r.html"], work)
    run("3 schema -o missing parent", ["schema", "-o", "no/s.json"], work)
    # As root every directory is writable; read-only file systems are not, even for root.
    run("3 run -o on a read-only mount", ["run", "-o", "/proc/sys/llem"], work)
    run(
        "3 export -o on a read-only mount",
        ["results", "export", res, "-o", "/proc/sys/x.csv"],
        work,
    )
    run(
        "3 export -o where files cannot be made",
        ["results", "export", res, "-o", "/proc/x.csv"],
        work,
    )

    # 4. checks before loading the model
    run("4 bad .jsonl prompt file", ["run", "bad_prompts.yaml", "-o", "out4"], work)
    run("4 unavailable instrument", ["run", "--energy", "nvml", "-o", "out4"], work)
    record(
        "4 directories left behind",
        "ls out2 out4",
        0 if not (work / "out4").exists() and not (work / "out2").exists() else 1,
        "none (out2, out4 never created)",
    )

    # 5. bad flag values
    run("5 -b eight", ["run", "-b", "eight"], work)
    run("5 --format xlsx", ["results", "export", res, "--format", "xlsx"], work)

    # 6. SIGTERM / SIGINT
    for name, sig in (("SIGTERM", signal.SIGTERM), ("SIGINT", signal.SIGINT)):
        proc = start(["run", "slow_run.yaml", "-o", f"out6-{name}", "-q"], work)
        wait_for(work / f"out6-{name}", proc, "*/environment.json")
        time.sleep(1)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=120)
        record(f"6 {name} during llem run", f"kill -{name[3:]} PID", proc.returncode, err)
        log = next((work / f"out6-{name}").glob("*/run.log")).read_text()
        record(f"6 run.log after {name}", "tail -1 run.log", None, last_line(log)[24:])
    proc = start(["study", "quick.yaml", "-o", "out6s", "-q"], work)
    wait_for(work / "out6s" / "quick" / "runs", proc, "*/environment.json")
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    record("6 SIGTERM during llem study", "kill -TERM PID", proc.returncode, err)

    # 7. smaller config mistakes
    run("7 experiments: []", ["study", "empty.yaml", "--dry-run"], work)
    run("7 study name a/b", ["study", "slash.yaml", "--dry-run"], work)
    run("7 .jsonl line without prompt/text", ["run", "bad_prompts.yaml", "-o", "out7"], work)

    # 8. duplicated experiment ids
    dup = work / "dup"
    for i in range(1000):
        target = dup / f"copy{i:04d}"
        target.mkdir(parents=True)
        shutil.copy(result_dir / "result.json", target / "result.json")
    err = run("8 1000 copies of one result", ["results", "list", "dup"], work)
    warn = [x for x in err.splitlines() if "appears in" in x]
    ROWS[-1] = (*ROWS[-1][:3], (warn[0] if warn else "").replace("|", "\\|"))

    print("| case | command | exit | message (last stderr line) |")
    print("|---|---|---|---|")
    for case, shown, code, message in ROWS:
        print(f"| {case} | `{shown}` | {code} | {message} |")


if __name__ == "__main__":
    main()
