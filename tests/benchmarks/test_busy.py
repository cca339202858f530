"""The bench's busy-machine checks (research/benchmarks/busy.py) on crafted samples, and as the suite uses them."""
import copy
import os

import pytest

from research.benchmarks import busy, report, suite, train


def test_load_above_the_cores_is_busy_and_at_them_is_not():
    quiet = busy.verdict([{"when": "before the bench", "load_1m": 0.3}, {"when": "after train", "load_1m": 2.0}],
                         [100e9, 95e9], n_cores=2)
    assert quiet["busy"] is False and quiet["reasons"] == [] and quiet["peak_drift"] == pytest.approx(0.05)
    loaded = busy.verdict([{"when": "before the bench", "load_1m": 0.3}, {"when": "after train", "load_1m": 3.1}],
                          [100e9], n_cores=2)
    assert loaded["busy"] is True
    assert loaded["reasons"] == ["load average 3.10 after train, above the 2 cores the bench uses"]


def test_a_peak_that_moves_by_more_than_ten_percent_is_busy():
    # (100 - 89) / 100 = 11% > 10%; (100 - 90) / 100 = 10% is allowed.
    assert busy.verdict([], [100e9, 89e9, 97e9], 2)["busy"] is True
    assert busy.verdict([], [100e9, 90e9], 2)["busy"] is False
    assert busy.drift([100e9, 89e9, 97e9]) == pytest.approx(0.11)
    assert busy.drift([5e9]) == 0.0 and busy.drift([]) == 0.0
    state = busy.verdict([], [100e9, 89e9], 2)
    assert state["reasons"] == ["the matmul peak moved by 11% during the run (89.0 to 100.0 GFLOP/s), more than 10%"]
    assert busy.line(state).startswith("**Busy machine: these ratios may be inflated.**")
    with pytest.raises(busy.BusyMachine, match="moved by 11%"):
        busy.refuse(state)
    busy.refuse(busy.verdict([], [100e9, 90e9], 2))  # quiet: nothing raised


def test_each_pair_is_scored_against_the_peak_measured_next_to_it(monkeypatch):
    ours = {"transformer-transformer": {"tokens_per_s": 2300.0, "gflop_per_s": 100.0, "compile_s": 7.4},
            "rnn-rnn": {"tokens_per_s": 500.0, "gflop_per_s": 30.0, "compile_s": 9.0}}
    monkeypatch.setattr(train, "time_pair", lambda pair, **kw: copy.deepcopy(ours[pair]))
    peaks = iter([250e9, 200e9])
    rows = train.train_section(list(ours), peak_flops=lambda: next(peaks), with_torch=False)
    assert rows["transformer-transformer"]["mfu"] == pytest.approx(100 / 250)
    assert rows["rnn-rnn"]["mfu"] == pytest.approx(30 / 200)
    assert [r["peak_gflop_per_s"] for r in rows.values()] == pytest.approx([250.0, 200.0])
    # against the highest peak of the section, the rnn's 200 GFLOP/s moment does not flatter it
    assert [r["mfu_best_peak"] for r in rows.values()] == pytest.approx([100 / 250, 30 / 250])
    train.rescore(rows, 300e9)  # the suite's call with the highest peak of the whole run
    assert [r["mfu_best_peak"] for r in rows.values()] == pytest.approx([100 / 300, 30 / 300])
    assert train.targets(rows)["transformer-transformer MFU (against the run's highest peak)"]["value"] == pytest.approx(1 / 3)


def test_the_suite_refuses_a_busy_machine_before_timing_anything_and_records_a_quiet_one(monkeypatch, tmp_path):
    n = busy.cores()
    monkeypatch.setattr(os, "getloadavg", lambda: (n + 1.5, 0.0, 0.0))
    with pytest.raises(busy.BusyMachine, match=f"load average {n + 1.5:.2f} before the bench"):
        suite.run([], refuse_busy=True)
    marked = suite.run([])  # without the flag the numbers are kept, marked busy
    assert marked["machine"]["busy"] is True
    js, md = suite.write(marked, tmp_path)
    assert "**Busy machine: these ratios may be inflated.**" in md.read_text()
    monkeypatch.setattr(os, "getloadavg", lambda: (0.25, 0.0, 0.0))
    quiet = suite.run([], refuse_busy=True)
    assert quiet["machine"]["busy"] is False and quiet["machine"]["loads"] == [
        {"when": "before the bench", "load_1m": 0.25}]
    assert report.markdown_table(quiet).count("Quiet by both checks") == 1
