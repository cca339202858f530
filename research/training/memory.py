"""Resident memory of this process, logged with the train metrics.

A long run must stay flat: growth per step (a list of step times, cached
arrays, logging objects) shows up here long before it kills a job.
"""
from __future__ import annotations

import os

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_mb() -> float | None:
    """Current (not peak) resident set size in MiB; None where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except OSError:
        return None
