"""One writer per study or experiment directory: an advisory ``flock`` on a file inside it.

The kernel drops a ``flock`` when its holder exits for any reason (SIGKILL included), so a
lock can never go stale; the holder's pid, host and start time are written into the lock
file only so that a refused writer can say who holds it. ``flock`` is local to one machine
(and unreliable on some network file systems): it keeps two processes on one host apart.

Each held lock is also listed in a per-user registry under the cache directory (one small
file per lock, itself flocked by its holder), so a study starting while another study runs on
the same machine can warn that their loads contaminate each other. Processes started by a
lock holder (a study's experiment subprocesses) inherit ``LLEM_HELD_LOCK`` and neither warn
nor register.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from llenergymeasure.errors import LlemError

LOCK_FILENAME = ".llem.lock"
HELD_ENV = "LLEM_HELD_LOCK"
REGISTRY_ENV = "LLEM_LOCK_REGISTRY"


class DirectoryBusyError(LlemError):
    """Another process is writing to the directory."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: enough to find the process and judge whether to wait."""

    pid: int
    host: str
    started_at: str
    directory: str
    what: str = "process"

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started_at}"

    @classmethod
    def read(cls, path: Path) -> Holder | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                pid=int(data["pid"]),
                host=str(data["host"]),
                started_at=str(data["started_at"]),
                directory=str(data["directory"]),
                what=str(data.get("what", "process")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def registry_dir() -> Path:
    """Where held locks are listed: $LLEM_LOCK_REGISTRY, else locks/ in the cache directory."""
    if os.environ.get(REGISTRY_ENV):
        return Path(os.environ[REGISTRY_ENV])
    base = os.environ.get("LLEM_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    if not os.environ.get("LLEM_CACHE_DIR"):
        root = root / "llenergymeasure"
    return root / "locks"


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_holder(fd: int, holder: Holder) -> None:
    data = json.dumps(holder.__dict__).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


class DirectoryLock:
    """Exclusive, non-blocking lock on ``directory`` (created if missing); a context manager.

    ``acquire`` raises DirectoryBusyError naming the holder when another process has it, and
    returns the warnings about other llem studies running on this machine.
    """

    def __init__(self, directory: str | Path, what: str = "process") -> None:
        self.directory = Path(directory)
        self.what = what
        self.warnings: list[str] = []
        self._fd: int | None = None
        self._registry_fd: int | None = None
        self._registry_path: Path | None = None
        self._previous_env: str | None = None

    @property
    def path(self) -> Path:
        return self.directory / LOCK_FILENAME

    def acquire(self) -> list[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        if not _try_flock(fd):
            os.close(fd)
            holder = Holder.read(self.path)
            what = holder.what if holder else "process"
            who = holder.describe() if holder else "it has not yet said who it is"
            raise DirectoryBusyError(
                f"{self.directory} is in use by another llem {what} ({who}); "
                "wait for it to finish, or write elsewhere with -o"
            )
        self._fd = fd
        holder = Holder(
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            directory=str(self.directory.resolve()),
            what=self.what,
        )
        _write_holder(fd, holder)
        inherited = os.environ.get(HELD_ENV)
        ignored = {holder.directory, inherited}
        self.warnings = [
            f"another llem {other.what} is writing to {other.directory} on this machine "
            f"({other.describe()}); each disturbs the other's figures"
            for other in active_holders()
            if other.host == holder.host and other.directory not in ignored
        ]
        if not inherited:  # a study's experiment processes are covered by the study's entry
            self._register(holder)
        self._previous_env = os.environ.get(HELD_ENV)
        os.environ[HELD_ENV] = holder.directory
        return self.warnings

    def _register(self, holder: Holder) -> None:
        """List this lock in the registry: a file flocked from before it gets its name."""
        try:
            folder = registry_dir()
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".new-", dir=folder)
            fcntl.flock(fd, fcntl.LOCK_EX)
            _write_holder(fd, holder)
            key = hashlib.sha256(f"{holder.directory}\0{holder.pid}".encode()).hexdigest()[:16]
            final = folder / f"{key}.lock"
            os.replace(tmp, final)
        except OSError:
            return  # the registry only feeds a warning; a read-only cache must not stop a run
        self._registry_fd, self._registry_path = fd, final

    def release(self) -> None:
        if self._registry_fd is not None and self._registry_path is not None:
            self._registry_path.unlink(missing_ok=True)
            os.close(self._registry_fd)
            self._registry_fd = self._registry_path = None
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None
            if self._previous_env is None:
                os.environ.pop(HELD_ENV, None)
            else:
                os.environ[HELD_ENV] = self._previous_env

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def active_holders() -> list[Holder]:
    """Locks held now on this machine (per the registry); entries of dead holders are removed."""
    folder = registry_dir()
    try:
        entries = sorted(p for p in folder.glob("*.lock") if not p.name.startswith("."))
    except OSError:
        return []
    holders: list[Holder] = []
    for path in entries:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if _try_flock(fd):  # nobody holds it: its holder died without cleaning up
                path.unlink(missing_ok=True)
                continue
        finally:
            os.close(fd)
        holder = Holder.read(path)
        if holder is not None:
            holders.append(holder)
    return holders
