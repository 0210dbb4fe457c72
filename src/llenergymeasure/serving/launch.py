"""Start a server command, wait until it answers, stop it at the end; its output goes to a log.

Readiness is an HTTP 200 from ``/health`` or ``/v1/models``. A command that exits, or never
becomes ready within ``ready_timeout_sec``, fails with one message carrying its last log lines.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from llenergymeasure.errors import LlemError

READY_PATHS = ("/health", "/v1/models")


class ServerError(LlemError):
    """The server could not be started or reached."""


def is_ready(base_url: str, timeout_sec: float = 2.0) -> bool:
    """True when the server answers 200 on one of the readiness paths."""
    for path in READY_PATHS:
        try:
            with urllib.request.urlopen(base_url.rstrip("/") + path, timeout=timeout_sec) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, OSError, ValueError):
            continue
    return False


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


class LaunchedServer:
    """A server process started from ``command``; use as a context manager."""

    def __init__(
        self,
        command: str | list[str],
        base_url: str,
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        ready_timeout_sec: float = 600.0,
        stop_timeout_sec: float = 30.0,
    ) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        self.base_url = base_url
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.ready_timeout_sec = ready_timeout_sec
        self.stop_timeout_sec = stop_timeout_sec
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_after_sec: float | None = None

    def __enter__(self) -> LaunchedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if is_ready(self.base_url, timeout_sec=0.5):
            raise ServerError(f"something already answers at {self.base_url}; not launching")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # so stop() can signal the whole process group
            )
        except OSError as exc:
            raise ServerError(f"cannot start {self.argv[0]!r}: {exc.strerror or exc}") from None
        finally:
            log.close()
        started = time.monotonic()
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerError(
                    f"server command exited with status {code} before it was ready; "
                    f"last lines: {_tail(self.log_path)}"
                )
            if is_ready(self.base_url):
                self.ready_after_sec = time.monotonic() - started
                return
            if time.monotonic() - started > self.ready_timeout_sec:
                self.stop()
                raise ServerError(
                    f"server not ready at {self.base_url} after {self.ready_timeout_sec:g} s; "
                    f"last lines: {_tail(self.log_path)}"
                )
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL after ``stop_timeout_sec``."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, self.stop_timeout_sec), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue
