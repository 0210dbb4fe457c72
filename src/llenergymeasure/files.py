"""Atomic file writes shared by every layer: readers see the old file or the whole new one.

The content goes to a temporary file in the target's directory (flushed to disk), which is
then renamed over the target: atomic on POSIX, so a crash or Ctrl-C never leaves a partial
file under the real name. Files get the usual permissions (0666 minus the umask), not the
owner-only mode of a bare ``mkstemp``, so results can be shared.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _current_umask()


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Let ``write`` fill a temporary path, then rename it onto ``path``; returns ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        from llenergymeasure.errors import LlemError

        raise LlemError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text (UTF-8) atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists (the one a write would start in)."""
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_output_dir(path: str | Path, flag: str = "-o") -> Path:
    """Raise LlemError (one line) unless ``path`` is, or can be created as, a writable directory.

    Nothing is created: the check runs before any model is loaded or file written.
    """
    from llenergymeasure.errors import LlemError

    text = str(path)
    if "\0" in text:
        raise LlemError(f"{flag}: the output path {text!r} holds a NUL byte; choose another")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LlemError(f"{flag} {path}: is a file, not a directory; give a directory")
    start = _nearest_existing(path.absolute())
    if not start.is_dir():
        raise LlemError(f"{flag} {path}: cannot create it, because {start} is a file")
    if not os.access(start, os.W_OK | os.X_OK):
        raise LlemError(f"{flag} {path}: cannot write in {start}: it is not writable")
    return path


def check_output_file(path: str | Path, flag: str = "-o") -> Path:
    """Raise LlemError (one line) unless ``path`` can be written as a file in an existing folder."""
    from llenergymeasure.errors import LlemError

    text = str(path)
    if "\0" in text:
        raise LlemError(f"{flag}: the output path {text!r} holds a NUL byte; choose another")
    path = Path(path)
    if path.is_dir():
        raise LlemError(f"{flag} {path}: is a directory; give the name of a file to write")
    parent = path.absolute().parent
    if not parent.exists():
        start = _nearest_existing(parent)
        if not start.is_dir():
            raise LlemError(f"{flag} {path}: {start} is a file, not a directory")
        raise LlemError(f"{flag} {path}: the directory {parent} does not exist; create it first")
    if not parent.is_dir():
        raise LlemError(f"{flag} {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LlemError(f"{flag} {path}: cannot write in {parent}: it is not writable")
    return path
