"""The harness: blocking calls timed after warm-up, a median inside p10..p90."""
import time

import pytest

from research.benchmarks.timing import time_fn


def test_sleep_median_within_spread():
    calls = []

    def fn():
        calls.append(None)
        time.sleep(0.01)

    t = time_fn(fn, warmup=2, repeats=15)
    assert t["n"] == 15 and len(calls) == 17  # warm-up calls are not timed
    assert t["p10_s"] <= t["median_s"] <= t["p90_s"]
    assert t["median_s"] >= 0.01


def test_min_time_extends_repeats():
    t = time_fn(lambda: time.sleep(0.005), warmup=0, repeats=2, min_time=0.05)
    assert t["n"] > 2


def test_rejects_zero_repeats():
    with pytest.raises(ValueError):
        time_fn(lambda: None, repeats=0)
