"""Shared rich consoles: results to stdout, messages and progress to stderr.

Both consoles print text as it is: rich markup is never interpreted, so a message such as
``pip install 'llenergymeasure[report]'`` (where ``[report]`` looks like a style tag) or a
config value such as ``[1, 2]`` reaches the user intact. Styling is applied only to our own
labels, through ``Text`` objects (``message``, ``styled``), never by parsing strings.

The consoles are built on first use: importing rich's console costs a large share of
``llem --help``'s start-up time, and the help text does not need it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


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


console: Console = _LazyConsole(markup=False, highlight=False)  # type: ignore[assignment]
error_console: Console = _LazyConsole(stderr=True, markup=False, highlight=False)  # type: ignore[assignment]


def styled(text: object, style: str) -> Text:
    """``text`` in ``style``, taken literally (brackets and all)."""
    from rich.text import Text

    return Text(str(text), style=style)


def message(label: str, style: str, text: object, *, to: Console | None = None) -> None:
    """Print ``label text`` on stderr (or ``to``): the label styled, the text literal."""
    from rich.text import Text

    (to or error_console).print(Text.assemble((label, style), " ", str(text)), soft_wrap=True)


def warn(text: object) -> None:
    """One warning line on stderr."""
    message("warning:", "yellow", text)


def error(text: object) -> None:
    """One error line on stderr."""
    message("error:", "bold red", text)


def listing(directory: Path, limit: int = 8) -> str | None:
    """The names in a directory ('a, b/, c'), 'nothing', or None when it does not exist."""
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"(cannot be listed: {exc.strerror})"
    names = [n for n in names if not n.startswith(".")]  # lock and temporary files
    if not names:
        return "nothing"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def directory_contents(directory: Path) -> str:
    """What a directory holds, for an interrupt message: 'X holds a, b' or 'X was not created'."""
    names = listing(directory)
    return f"{directory} was not created" if names is None else f"{directory} holds {names}"


def exit_interrupted(text: str, exc: BaseException | None = None) -> NoReturn:
    """Print one line and exit 130 after Ctrl-C (143 after SIGTERM), whatever the state.

    CPython 3.11 remembers a KeyboardInterrupt that passed through code run by ``exec()``
    (dataclass and pydantic class creation use it) and re-kills the process with SIGINT at
    shutdown even after the interrupt was handled, so the exit status would depend on where
    Ctrl-C landed. Files are all written atomically and closed by now; flush and leave.
    """
    from llenergymeasure.signals import SIGINT_EXIT, exit_status, interrupt_name

    name = interrupt_name(exc) if exc is not None else "interrupted"
    message(f"{name}:", "yellow", text)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_status(exc) if exc is not None else SIGINT_EXIT)
