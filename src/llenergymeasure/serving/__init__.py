"""Serving mode: an open-loop load generator against an OpenAI-compatible server.

``arrivals`` schedules requests (Poisson or gamma), ``client`` sends them on schedule and
records one trace per request by streaming, ``server`` is a small reference server over the
built-in models for demos and tests (not a production server).
"""
