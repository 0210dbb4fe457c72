"""Every command of README's command table works after README's first install command alone
(issue 11, item 17).

Two checks:

- ``test_every_table_command_works_with_only_the_first_install``: the commands run in a venv
  without system packages whose site-packages links, from this environment, exactly the
  distributions README's first command installs (modules and metadata): the core
  dependencies plus the extras the command names, closed over their own requirements
  (computed from pyproject and the installed metadata). A dependency that only the test or
  other extras bring in (matplotlib was one) fails here, in about a minute, not ten.
- ``test_every_table_command_in_a_fresh_venv``: the real thing, a fresh virtual environment
  installed exactly with README's first command; slow (~1-2 min with a warm pip cache), so it
  runs where ``CI`` is set (``.ci/run`` under ``fresh-venv-check``) or ``LLEM_VENV_TEST=1``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.cli_helpers import ROOT, source_env
from tests.test_readme import readme_commands

#: Distributions a fresh `python -m venv` holds before anything is installed.
VENV_SEED = {"pip", "setuptools", "wheel"}


def table_commands() -> list[str]:
    """The commands of README's command table, e.g. ['run', 'study', ..., 'results list']."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in table.splitlines():
        match = re.match(r"\| `llem ((?:[a-z][a-z-]* ?)+)", line)
        if match:
            names.append(match.group(1).strip())
    return names


def first_install() -> tuple[str, set[str]]:
    """README's first command: its install part, and the extras it names."""
    first = readme_commands()[0]
    install = first.split("&&")[0].strip()
    match = re.search(r'-e "?\.\[([a-z0-9_,-]+)\]"?', install)
    assert match, f"README's first command installs no '-e .[extras]': {install}"
    return install, set(match.group(1).split(","))


def _requirements(extras: set[str]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def _wanted(req: Requirement, extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in {"", *extras})


def installed_by_first_command() -> set[str]:
    """Distributions README's first command installs (as far as this environment knows them)."""
    _, extras = first_install()
    allowed = set(VENV_SEED) | {"llenergymeasure"}
    todo = [(r, set(r.extras)) for r in _requirements(extras)]
    while todo:
        req, req_extras = todo.pop()
        name = canonicalize_name(req.name)
        if name in allowed:
            continue
        allowed.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not here: then nothing here can import it either
        for text in dist.requires or []:
            sub = Requirement(text)
            if _wanted(sub, req_extras):
                todo.append((sub, set(sub.extras)))
    return allowed


def blocked_modules() -> set[str]:
    """Top-level modules of installed distributions the first command would not install."""
    allowed = installed_by_first_command()
    blocked = set()
    for module, dists in metadata.packages_distributions().items():
        if module in sys.stdlib_module_names or module in ("llenergymeasure", "tests"):
            continue
        if not any(canonicalize_name(d) in allowed for d in dists):
            blocked.add(module)
    return blocked


def first_install_site(venv: Path) -> Path:
    """A venv (no system packages) whose site-packages links exactly the distributions README's
    first command installs, taken from this environment: their modules and their metadata,
    nothing else. Returns the venv's python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    for name in sorted(installed_by_first_command() - VENV_SEED - {"llenergymeasure"}):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    return python


def _tiny_run_args(out: Path) -> list[str]:
    return [
        "--model", "builtin:tiny-llama", "-n", "2", "-b", "2", "--max-output-tokens", "4",
        "--baseline-sec", "0", "-o", str(out), "--quiet",
    ]  # fmt: skip


def command_lines(tmp: Path, llem: list[str] | None = None) -> dict[str, list[list[str]]]:
    """A concrete invocation of every table command (in order: later ones read earlier output)."""
    out = tmp / "results"
    port = _free_port()
    serving = tmp / "serving.yaml"
    launch = shlex.join([*(llem or ["llem"]), "serve", "--port", str(port)])
    serving.write_text(
        f"scenario: serving\nmodel: builtin:tiny-llama\nserver: {{url: 'http://127.0.0.1:{port}',"
        f" launch: {json.dumps(launch)}, ready_timeout_sec: 600}}\nload: {{request_rate: 4,"
        " n_requests: 3}\nmax_output_tokens: 4\nbaseline_sec: 0\nwarmup_requests: 0\n"
    )
    study = tmp / "study.yaml"
    study.write_text(
        "name: s\nbase: {model: builtin:tiny-gpt2, n_prompts: 2, max_output_tokens: 4,"
        " baseline_sec: 0, warmup: {mode: fixed, n: 1}}\nexperiments: [{batch_size: 2}]\n"
    )
    exp = "{EXP}"  # the experiment directory `run` wrote, filled in after it ran
    return {
        "run": [["run", *_tiny_run_args(out)]],
        "study": [["study", str(study), "-o", str(tmp), "--quiet"]],
        "aggregate": [["aggregate", exp]],
        "schema": [["schema"], ["schema", "--kind", "process"]],
        "doctor": [["doctor"], ["doctor", "--json"]],
        "results list": [["results", "list", str(out)], ["results", "list", str(out), "--json"]],
        "results show": [["results", "show", exp], ["results", "show", exp, "--json"]],
        "results compare": [["results", "compare", exp, exp]],
        "results export": [
            ["results", "export", str(out), "-o", str(tmp / "x.csv")],
            ["results", "export", str(out), "-o", str(tmp / "x.parquet")],
        ],
        "report": [["report", str(tmp), "-o", str(tmp / "report.html")]],
        "serve-bench": [["serve-bench", str(serving), "-o", str(tmp / "serving"), "--quiet"]],
        "serve": [["serve", "--help"]],  # serve-bench above launched it for real
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_table(llem: list[str], tmp: Path, env: dict[str, str]) -> list[str]:
    """Run every table command with ``llem`` (argv prefix); the failures, one line each."""
    lines = command_lines(tmp, llem)
    assert sorted(lines) == sorted(table_commands()), "a README table command has no check here"
    failures = []
    exp_dir = ""
    for name, invocations in lines.items():
        for args in invocations:
            args = [exp_dir if a == "{EXP}" else a for a in args]
            done = subprocess.run(
                [*llem, *args], capture_output=True, text=True, env=env, cwd=tmp, timeout=900
            )
            if done.returncode != 0 or "Traceback" in done.stderr:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                failures.append(f"llem {shlex.join(args)}: exit {done.returncode}: {tail}")
            if name == "run" and done.returncode == 0:
                exp_dir = str(next((tmp / "results").glob("*/result.json")).parent)
    return failures


def test_readme_table_is_parsed() -> None:
    commands = table_commands()
    assert {"run", "study", "report", "results list", "results show"} <= set(commands)
    install, extras = first_install()
    assert extras == {"transformers"} and "torch==" in install


def test_core_dependencies_cover_report_and_the_first_install_blocks_test_extras() -> None:
    allowed = installed_by_first_command()
    assert {"matplotlib", "torch", "transformers", "pydantic", "rich", "pyarrow"} <= allowed
    blocked = blocked_modules()
    assert {"pytest", "hypothesis"} <= blocked  # dev extra only: must be unimportable below
    assert "matplotlib" not in blocked


@pytest.mark.slow
def test_every_table_command_works_with_only_the_first_install(tmp_path: Path) -> None:
    python = first_install_site(tmp_path / "venv")
    env = source_env(LLEM_CACHE_DIR=os.environ["LLEM_CACHE_DIR"])
    for module in ("pytest", "hypothesis", "calflops"):  # test and other extras: absent there
        probe = subprocess.run([str(python), "-c", f"import {module}"], env=env)
        assert probe.returncode != 0, f"{module} importable in the first-install site"
    work = tmp_path / "work"
    work.mkdir()
    failures = run_table([str(python), "-m", "llenergymeasure.cli.main"], work, env)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.skipif(
    not (os.environ.get("CI") or os.environ.get("LLEM_VENV_TEST")),
    reason="builds a fresh venv (~1-2 min); runs in CI or with LLEM_VENV_TEST=1",
)
def test_every_table_command_in_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install, _ = first_install()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(venv))
    done = subprocess.run(
        ["bash", "-c", install], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-2000:]
    env.update(HF_HUB_OFFLINE="1", LLEM_CACHE_DIR=os.environ["LLEM_CACHE_DIR"])
    work = tmp_path / "work"
    work.mkdir()
    failures = run_table([str(venv / "bin" / "llem")], work, env)
    assert not failures, "\n".join(failures)
