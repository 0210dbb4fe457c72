"""Shared rich consoles: results to stdout, messages and progress to stderr.

The consoles are built on first use: importing rich's console costs a large share of
``llem --help``'s start-up time, and the help text does not need it.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A ``rich.console.Console`` created (and rich imported) when first used."""

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_console", None)

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            object.__setattr__(self, "_console", Console(**self._options))
        return self._console  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.get(), name, value)


console: Console = _LazyConsole()  # type: ignore[assignment]
error_console: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]


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
