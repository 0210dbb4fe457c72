"""Will the requests fit in memory? An upper bound checked before any model is loaded.

Every measured request is prepared before the window (token ids, padded tensors) and its
figures kept after it (per-token latency samples), so memory grows with ``n_prompts``. An
upper bound per token is multiplied out and compared with the memory available now; a count
that cannot fit is refused up front with one line, instead of swapping for minutes and dying.
"""

from __future__ import annotations

from llenergymeasure.config.experiment import ExperimentConfig
from llenergymeasure.errors import ConfigError

#: Held per prompt token: a Python int in a list (8 B pointer + 28 B object) plus the padded
#: ``input_ids`` and ``attention_mask`` tensors (int64 each), rounded up.
BYTES_PER_INPUT_TOKEN = 64
#: Held per generated token: the inter-token latency sample (a float in a list), the token id
#: on the device and in the output tensors, rounded up.
BYTES_PER_OUTPUT_TOKEN = 96
#: Share of the memory available now that the requests may take (the model needs the rest).
MEMORY_SHARE = 0.5


def input_tokens_bound(config: ExperimentConfig) -> int:
    """Most prompt tokens one request can hold (prompts are truncated to max_input_tokens)."""
    if config.prompts.source == "synthetic":
        return min(config.prompts.synthetic_input_tokens, config.max_input_tokens)
    return config.max_input_tokens


def request_bytes(config: ExperimentConfig) -> int:
    """Upper bound of the memory the measured requests hold, in bytes."""
    per_request = (
        input_tokens_bound(config) * BYTES_PER_INPUT_TOKEN
        + config.max_output_tokens * BYTES_PER_OUTPUT_TOKEN
    )
    return config.n_prompts * per_request


def available_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def check_request_memory(config: ExperimentConfig, available: int | None = None) -> None:
    """Raise ConfigError when ``n_prompts`` requests cannot be held in the memory available."""
    need = request_bytes(config)
    allowed = int((available_bytes() if available is None else available) * MEMORY_SHARE)
    if need <= allowed:
        return
    per_request = need // config.n_prompts
    most = max(1, allowed // per_request)
    raise ConfigError(
        f"n_prompts: {config.n_prompts} requests need up to {_gb(need)} of memory "
        f"({input_tokens_bound(config)} input + {config.max_output_tokens} output tokens each), "
        f"more than half of the {_gb(allowed / MEMORY_SHARE)} available; "
        f"allowed here: at most about {most} (or fewer tokens per request)"
    )
