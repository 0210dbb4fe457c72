"""Instruments: FLOPs estimation with provenance and precision detection."""
