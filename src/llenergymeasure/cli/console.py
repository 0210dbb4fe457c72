"""Shared rich consoles: results to stdout, messages and progress to stderr."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from rich.console import Console

console = Console()
error_console = Console(stderr=True)


def exit_interrupted(message: str) -> NoReturn:
    """Print one line and exit 130 after Ctrl-C, whatever the interpreter's state.

    CPython 3.11 remembers a KeyboardInterrupt that passed through code run by ``exec()``
    (dataclass and pydantic class creation use it) and re-kills the process with SIGINT at
    shutdown even after the interrupt was handled, so the exit status would depend on where
    Ctrl-C landed. Files are all written atomically and closed by now; flush and leave.
    """
    error_console.print(f"[yellow]interrupted[/]: {message}", highlight=False, soft_wrap=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
