"""The harness: blocking calls timed after warm-up, a median inside p10..p90."""
import time

import pytest

from research.benchmarks.timing import time_alternating, time_fn


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
    with pytest.raises(ValueError):
        time_alternating([lambda: None], repeats=0)


def test_alternating_takes_turns_and_times_each_function():
    calls = []
    fast = lambda: (calls.append("a"), time.sleep(0.002))
    slow = lambda: (calls.append("b"), time.sleep(0.02))
    a, b = time_alternating([fast, slow], warmup=1, repeats=5)
    assert calls == ["a", "b"] * 6  # one warm-up round, then five timed ones, in turns
    assert a["n"] == b["n"] == 5
    assert 0.002 <= a["median_s"] < b["median_s"] and b["median_s"] >= 0.02
