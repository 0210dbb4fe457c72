"""Launching a server command: ready, never ready, exits early, stopped at the end."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from llenergymeasure.serving.launch import LaunchedServer, ServerError, is_ready
from tests.cli_helpers import source_env
from tests.fakes.scripted_server import free_port

pytest.importorskip("aiohttp")


def test_a_launched_server_is_waited_for_and_stopped(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "tests.fakes.scripted_server", str(port)]
    log = tmp_path / "server.log"
    with LaunchedServer(command, url, log, env=source_env(), ready_timeout_sec=60) as server:
        assert is_ready(url) and server.ready_after_sec is not None
        pid = server.process.pid  # type: ignore[union-attr]
        with pytest.raises(ServerError, match="already answers"):
            LaunchedServer(command, url, tmp_path / "second.log").start()
    assert not is_ready(url, timeout_sec=0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "ready" in log.read_text()


def test_a_server_that_never_becomes_ready_fails_in_bounded_time(tmp_path: Path) -> None:
    boot = "import time; print('booting slowly', flush=True); time.sleep(60)"
    command = [sys.executable, "-c", boot]
    start = time.monotonic()
    with pytest.raises(ServerError, match="not ready .* after 3 s; last lines: booting slowly"):
        LaunchedServer(command, f"http://127.0.0.1:{free_port()}", tmp_path / "l.log",
                       ready_timeout_sec=3).start()
    assert time.monotonic() - start < 20


def test_a_server_that_exits_early_fails_with_its_output(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('CUDA out of memory'); sys.exit(3)"]
    with pytest.raises(ServerError, match="exited with status 3 .*CUDA out of memory"):
        LaunchedServer(command, f"http://127.0.0.1:{free_port()}", tmp_path / "l.log").start()


def test_a_missing_command_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="cannot start 'no-such-server-binary'"):
        missing = "no-such-server-binary --port 1"
        LaunchedServer(missing, "http://127.0.0.1:1", tmp_path / "l.log").start()
