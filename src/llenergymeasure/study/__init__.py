"""Orchestration: sweeps, cycles, ordering, isolation in subprocesses, resume, statistics."""
