"""Harness: warmup, baseline, the measurement window, one experiment end to end."""
