"""Built-in offline models: random-weight causal LMs with a locally trained tokenizer.

They let `llem run` work with no network. Each is built (fixed seeds, a tokenizer trained on the
package's own prompt text) on first use into a cache directory, then loaded with
``from_pretrained`` like any local model. Their outputs are meaningless text; their cost per
token is real.

Two kinds: tiny ones (a few million parameters, float32, for CPUs and tests) and ones with the
shapes of real models (``llama-1b``: Llama-3.2-1B, ``qwen2-0.5b``: Qwen2-0.5B; bfloat16,
including the real vocabulary size, so the embedding and LM head cost what they cost) that give
a GPU tens of seconds of real load. Those are initialised directly on the GPU when there is one
(seconds); on a CPU the build takes a minute or more. Only the first ``VOCAB_SIZE`` ids of a
large vocabulary have tokens; the rest are padding rows, as in real checkpoints whose embedding
is larger than their tokenizer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from llenergymeasure.errors import ConfigError

PREFIX = "builtin:"
#: Bump when a builtin model's recipe changes, so caches built by older versions are not reused.
RECIPE_VERSION = "1"
VOCAB_SIZE = 2048
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3


@dataclass(frozen=True)
class BuiltinSpec:
    """How one builtin model is built: a transformers config class and its arguments."""

    name: str
    config_class: str
    config_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: Vocabulary of the model's embedding and LM head; None: the tokenizer's size.
    vocab_size: int | None = None
    #: dtype the weights are built and saved in (what dtype ``auto`` loads on a GPU).
    dtype: str = "float32"


BUILTIN_MODELS: dict[str, BuiltinSpec] = {
    "tiny-llama": BuiltinSpec(
        name="tiny-llama",
        config_class="LlamaConfig",
        config_kwargs={
            "hidden_size": 256,
            "intermediate_size": 688,
            "num_hidden_layers": 4,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "max_position_embeddings": 1024,
            "tie_word_embeddings": False,
        },
        description="Llama architecture, grouped-query attention, 4 layers, ~3.5M parameters",
    ),
    "tiny-gpt2": BuiltinSpec(
        name="tiny-gpt2",
        config_class="GPT2Config",
        config_kwargs={"n_embd": 256, "n_layer": 4, "n_head": 8, "n_positions": 1024},
        description="GPT-2 architecture, 4 layers, ~3.7M parameters",
    ),
    "llama-1b": BuiltinSpec(
        name="llama-1b",
        config_class="LlamaConfig",
        config_kwargs={
            "hidden_size": 2048,
            "intermediate_size": 8192,
            "num_hidden_layers": 16,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 64,
            "max_position_embeddings": 8192,
            "tie_word_embeddings": True,
        },
        vocab_size=128256,
        dtype="bfloat16",
        description="Llama-3.2-1B shapes (16 layers, hidden 2048, GQA 32/8, vocab 128256, tied "
        "embeddings), random weights, bfloat16, ~1.24B parameters",
    ),
    "qwen2-0.5b": BuiltinSpec(
        name="qwen2-0.5b",
        config_class="Qwen2Config",
        config_kwargs={
            "hidden_size": 896,
            "intermediate_size": 4864,
            "num_hidden_layers": 24,
            "num_attention_heads": 14,
            "num_key_value_heads": 2,
            "max_position_embeddings": 8192,
            "tie_word_embeddings": True,
        },
        vocab_size=151936,
        dtype="bfloat16",
        description="Qwen2-0.5B shapes (24 layers, hidden 896, GQA 14/2, QKV bias, vocab 151936, "
        "tied embeddings), random weights, bfloat16, ~0.49B parameters",
    ),
}


#: Builtin models *trained* and shipped inside the package (files under data/builtin/NAME),
#: reproducible with the script named in their training.json.
SHIPPED_MODELS: dict[str, str] = {
    "shakespeare": "Llama, 4 layers, ~1.05M parameters, trained on Shakespeare's plays "
    "(scripts/train_shakespeare.py); held-out text: builtin quality text shakespeare-heldout",
}


def is_builtin(model: str) -> bool:
    """True for a ``builtin:NAME`` model reference."""
    return model.startswith(PREFIX)


def builtin_name(model: str) -> str:
    """The NAME of ``builtin:NAME``, checked against the known builtin models."""
    name = model[len(PREFIX) :]
    if name not in BUILTIN_MODELS and name not in SHIPPED_MODELS:
        known = ", ".join(PREFIX + n for n in [*BUILTIN_MODELS, *SHIPPED_MODELS])
        raise ConfigError(f"unknown builtin model {model!r}; available: {known}")
    return name


def cache_root() -> Path:
    """Where builtin models are built: $LLEM_CACHE_DIR, else ~/.cache/llenergymeasure."""
    configured = os.environ.get("LLEM_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "llenergymeasure"


def builtin_path(model: str) -> Path:
    """The local directory of a builtin model, built on first use."""
    name = builtin_name(model)
    if name in SHIPPED_MODELS:
        return Path(str(resources.files("llenergymeasure.data").joinpath("builtin").joinpath(name)))
    target = cache_root() / "models" / f"{name}-v{RECIPE_VERSION}"
    if not (target / "config.json").exists():
        _build(BUILTIN_MODELS[name], target)
    return target


def _training_text() -> list[str]:
    text = resources.files("llenergymeasure.data").joinpath("prompts.txt").read_text("utf-8")
    return [line for line in text.splitlines() if line.strip()]


def train_bpe_tokenizer(texts: list[str] | None = None, vocab_size: int = VOCAB_SIZE) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` (default: the package's prompt text),
    deterministic; left padding, the builtin models' special tokens. Also used by
    scripts/train_shakespeare.py, which trains builtin:shakespeare's tokenizer on its corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text() if texts is None else texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
    )


def model_config(spec: BuiltinSpec, tokenizer_size: int = VOCAB_SIZE) -> Any:
    """The transformers config of a builtin model (no weights, no tokenizer training)."""
    import transformers

    config_class = getattr(transformers, spec.config_class)
    return config_class(
        vocab_size=spec.vocab_size or tokenizer_size,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        **spec.config_kwargs,
    )


def _build_device(torch: Any, spec: BuiltinSpec) -> str:
    """Where the weights are initialised: the GPU for the large bf16 models when there is one."""
    if spec.dtype != "float32" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _build(spec: BuiltinSpec, target: Path) -> None:
    """Build the model and tokenizer into a temp dir, then rename it into place atomically."""
    import torch
    import transformers

    tokenizer = train_bpe_tokenizer()
    if spec.vocab_size is not None and spec.vocab_size < len(tokenizer):
        raise ValueError(f"{spec.name}: vocab_size {spec.vocab_size} < tokenizer {len(tokenizer)}")
    config = model_config(spec, len(tokenizer))
    device = _build_device(torch, spec)
    cpu_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)  # seeds the CUDA generators too (restored below only for the CPU)
        with torch.device(device):
            model = transformers.AutoModelForCausalLM.from_config(
                config, dtype=getattr(torch, spec.dtype)
            )
    finally:
        torch.random.set_rng_state(cpu_state)
    model.generation_config.pad_token_id = PAD_ID
    model.generation_config.eos_token_id = EOS_ID
    model.generation_config.bos_token_id = BOS_ID

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:
            # Another process finished the same build first; its copy is identical.
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
