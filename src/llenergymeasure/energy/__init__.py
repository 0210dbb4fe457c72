"""Instruments: energy meters (NVML, RAPL, Zeus, CodeCarbon, estimate), telemetry, baseline."""
