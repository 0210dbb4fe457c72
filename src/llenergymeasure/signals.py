"""SIGTERM handled like Ctrl-C: it raises ``Terminated`` in the main thread.

``Terminated`` derives from BaseException, not Exception, so no ``except Exception`` swallows
it, and not from KeyboardInterrupt, so libraries that turn Ctrl-C into their own exit (click
does) leave it alone; catch ``INTERRUPTS`` for both. Every ``finally`` runs (meters closed,
locks released), the run log gets its "ended early" line, and the command exits 143
(128 + SIGTERM) where Ctrl-C exits 130. Batch systems
(Slurm, Kubernetes, systemd) stop jobs with SIGTERM, so this is the common way runs end early.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

SIGINT_EXIT = 130
SIGTERM_EXIT = 143


class Terminated(BaseException):
    """The process received SIGTERM."""

    def __str__(self) -> str:
        return "terminated by SIGTERM"


#: What a command catches to end cleanly on Ctrl-C or SIGTERM.
INTERRUPTS: tuple[type[BaseException], ...] = (KeyboardInterrupt, Terminated)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def install_sigterm_handler() -> None:
    """Turn SIGTERM into ``Terminated`` (only possible from the main thread)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def exit_status(exc: BaseException) -> int:
    """The conventional exit status for an interrupt: 143 after SIGTERM, else 130."""
    return SIGTERM_EXIT if isinstance(exc, Terminated) else SIGINT_EXIT


def interrupt_name(exc: BaseException) -> str:
    """How the interrupt is named in messages: 'terminated' (SIGTERM) or 'interrupted'."""
    return "terminated" if isinstance(exc, Terminated) else "interrupted"
