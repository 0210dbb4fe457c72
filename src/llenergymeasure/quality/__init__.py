"""Quality beside energy: sliding-window perplexity, KL and top-1 agreement against a reference.

Imports nothing heavy at package import; torch and transformers are loaded inside functions.
"""
