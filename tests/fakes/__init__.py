"""Test doubles for hardware this machine lacks: pynvml, powercap, Zeus, CodeCarbon, a host."""
