"""Holm's procedure written as its paper states it, the reference for `decide.holm`'s adjusted p-values."""
from __future__ import annotations


def step_down(p: dict, alpha: float) -> set:
    """Holm (1979) as a procedure: test the smallest p at alpha / m, the next at alpha / (m - 1), ..., and stop at
    the first that fails; those before it are rejected."""
    order = sorted(p, key=lambda k: p[k])
    rejected = set()
    for i, key in enumerate(order):
        if p[key] > alpha / (len(order) - i):
            break
        rejected.add(key)
    return rejected
