"""One timing harness for every framework, so JAX and PyTorch numbers compare.

The harness only calls a zero-argument function that performs one complete
step and returns once the work is DONE. Blocking is the caller's job
(`jax.block_until_ready`, `torch.cuda.synchronize`, or a host read such as
`loss.item()`), because only the caller knows what "done" means for its
framework; an asynchronous dispatch timed without it measures nothing.

The median is reported rather than the mean: on a shared machine a few steps
are slowed by other processes, and the median ignores them while p10/p90 show
how noisy the run was.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np


def time_fn(fn: Callable[[], object], *, warmup: int = 2, repeats: int = 10, min_time: float = 0.0) -> dict:
    """Times a blocking step function.

    Args:
      fn: zero-argument callable running one full step and blocking until done.
      warmup: untimed calls first (compilation, allocator and cache warm-up).
      repeats: the least number of timed calls.
      min_time: keep timing past `repeats` until the timed calls add up to at
        least this many seconds, so that very fast steps still get a stable
        median.
    Returns:
      {"median_s", "p10_s", "p90_s": seconds per call, "n": timed calls}.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_time:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return _summary(times)


def _summary(times: list[float]) -> dict:
    p10, median, p90 = np.percentile(times, [10, 50, 90])
    return {"median_s": float(median), "p10_s": float(p10), "p90_s": float(p90), "n": len(times)}


def time_alternating(fns: list[Callable[[], object]], *, warmup: int = 2, repeats: int = 10) -> list[dict]:
    """Times several blocking step functions in turns: a, b, a, b, ...

    For a ratio between two frameworks on a shared machine: timed one after
    the other, a slow stretch lands on one side only and moves the ratio
    (measured: after a change that made our step 12% faster back to back, a
    run that timed the peer first still showed 1.16 against 1.17 before, its
    matmul peak 14% below the earlier run's); in turns, both sides see the
    same machine.
    Returns one `time_fn`-style dict per function, in order.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [_summary(ts) for ts in times]
