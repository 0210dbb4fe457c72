"""Instruments: inference engines (transformers; the interface is ready for vLLM)."""
