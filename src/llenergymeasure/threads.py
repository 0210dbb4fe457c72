"""How torch's CPU threads wait: set before torch is imported, so it lives in a light module
that the CLI can import without pulling in pydantic or the result models."""

from __future__ import annotations

import os
import sys


def prefer_passive_omp_wait() -> None:
    """Let idle OpenMP threads sleep rather than spin, unless the user set OMP_WAIT_POLICY.

    torch's CPU kernels run on one OpenMP thread per core whose default is to spin while they
    wait. When another process keeps a core busy, every parallel region then waits for the
    thread that shares that core: measured on a busy 2-core machine, a tiny-model batch took
    20 s with spinning threads and 0.4-2 s with sleeping ones. Takes effect only before torch
    is imported; the value in effect is recorded in the environment snapshot.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
