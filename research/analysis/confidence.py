"""Confidence intervals over seeds: Student's t, since a sweep has a handful of seeds, not hundreds."""
from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Sequence

from scipy import stats


@dataclasses.dataclass(frozen=True)
class Interval:
    mean: float
    std: float | None  # sample standard deviation (n - 1); None for one value
    low: float | None  # the interval's ends; None for one value (no spread to estimate)
    high: float | None
    n: int
    level: float

    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean


def t_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """mean +- t_{(1+level)/2, n-1} * s / sqrt(n) of `values` (the seeds of one architecture)."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("no values to put an interval on")
    mean = statistics.fmean(xs)
    if len(xs) == 1:
        return Interval(mean, None, None, None, 1, level)
    std = statistics.stdev(xs)
    half = float(stats.t.ppf((1 + level) / 2, len(xs) - 1)) * std / math.sqrt(len(xs))
    return Interval(mean, std, mean - half, mean + half, len(xs), level)
