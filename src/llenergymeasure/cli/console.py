"""Shared rich consoles: results to stdout, messages and progress to stderr.

Both consoles print text as it is: rich markup is never interpreted, so a message such as
``pip install 'llenergymeasure[report]'`` (where ``[report]`` looks like a style tag) or a
config value such as ``[1, 2]`` reaches the user intact. Styling is applied only to our own
labels, through ``Text`` objects (``message``, ``styled``), never by parsing strings.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from rich.console import Console
from rich.text import Text

console = Console(markup=False, highlight=False)
error_console = Console(stderr=True, markup=False, highlight=False)


def styled(text: object, style: str) -> Text:
    """``text`` in ``style``, taken literally (brackets and all)."""
    return Text(str(text), style=style)


def message(label: str, style: str, text: object, *, to: Console | None = None) -> None:
    """Print ``label text`` on stderr (or ``to``): the label styled, the text literal."""
    (to or error_console).print(Text.assemble((label, style), " ", str(text)), soft_wrap=True)


def warn(text: object) -> None:
    """One warning line on stderr."""
    message("warning:", "yellow", text)


def error(text: object) -> None:
    """One error line on stderr."""
    message("error:", "bold red", text)


def exit_interrupted(text: str) -> NoReturn:
    """Print one line and exit 130 after Ctrl-C, whatever the interpreter's state.

    CPython 3.11 remembers a KeyboardInterrupt that passed through code run by ``exec()``
    (dataclass and pydantic class creation use it) and re-kills the process with SIGINT at
    shutdown even after the interrupt was handled, so the exit status would depend on where
    Ctrl-C landed. Files are all written atomically and closed by now; flush and leave.
    """
    message("interrupted:", "yellow", text)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
