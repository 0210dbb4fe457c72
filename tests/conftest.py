"""Test-wide settings: no network, no GPU, deterministic hypothesis profile for CI."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Builtin models are built once per machine into a shared temp cache (the recipe version is in
# the directory name, so a changed recipe never reuses an old build).
os.environ.setdefault("LLEM_CACHE_DIR", str(Path(tempfile.gettempdir()) / "llem-test-cache"))
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Locks held by this test session are listed in a registry of its own, so tests running at the
# same time elsewhere on the machine do not add "another llem study" warnings to results.
os.environ.setdefault("LLEM_LOCK_REGISTRY", tempfile.mkdtemp(prefix="llem-locks-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
