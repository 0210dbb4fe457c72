"""A bare ``model.generate`` loop: the reference the harness is compared with."""

from __future__ import annotations

import time
from typing import Any

from llenergymeasure.config.experiment import ExperimentConfig


def prepare(config: ExperimentConfig) -> tuple[Any, list[tuple[Any, Any]], int]:
    """Load the model plainly and pad the same prompts, batch by batch (not timed)."""
    import torch
    import transformers

    from llenergymeasure.engines.transformers_engine import TransformersEngine
    from llenergymeasure.measure.prompts import batched, load_prompt_ids

    transformers.utils.logging.disable_progress_bar()
    engine = TransformersEngine(config)  # only to resolve the model and tokenize identically
    engine.load()
    ids, _ = load_prompt_ids(config, engine)
    tokenizer = engine.tokenizer
    source = engine._resolve_source()
    engine.close()
    model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    model.eval()
    batches = []
    for batch in batched(ids, config.batch_size):
        enc = tokenizer.pad({"input_ids": batch}, return_tensors="pt", padding=True)
        batches.append((enc["input_ids"], enc["attention_mask"]))
    return model, batches, tokenizer.pad_token_id


def bare_tokens_per_second(
    model: Any, batches: list[tuple[Any, Any]], pad_id: int, new_tokens: int
) -> float:
    """Output tokens per second of plain fixed-length greedy generate over the batches."""
    import torch

    tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for input_ids, mask in batches:
            out = model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=pad_id,
            )
            tokens += (out.shape[1] - input_ids.shape[1]) * out.shape[0]
    return tokens / (time.perf_counter() - start)
