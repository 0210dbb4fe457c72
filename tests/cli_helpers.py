"""Run `llem` as a real subprocess against this checkout's source (not an installed copy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def source_env(**extra: str) -> dict[str, str]:
    """Environment whose PYTHONPATH puts this checkout's src first; offline hub."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra)
    return env


def run_llem(
    *args: str, timeout: float = 600, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`llem ARGS...` in a subprocess; returns the completed process (never raises on exit code)."""
    return subprocess.run(
        [sys.executable, "-m", "llenergymeasure.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        env=source_env(**env),
    )
