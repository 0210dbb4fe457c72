"""One definition of a configuration's hash: sha256 of its canonical JSON, shortened."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(payload: Any, length: int = 16) -> str:
    """Hex sha256 of ``payload`` as canonical JSON (sorted keys, no spaces), first ``length``."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]
