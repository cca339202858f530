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


def scripted_cpu(monkeypatch, others_cores):
    """busy.cpu_sample giving, between consecutive samples one second apart, `others_cores` cores of other work."""
    clock = {"t": 0.0, "busy": 0.0}

    def sample(when):
        clock["t"] += 1.0
        clock["busy"] += others_cores
        return {"when": when, "wall_s": clock["t"], "busy_s": clock["busy"], "own_s": 0.0}

    monkeypatch.setattr(busy, "cpu_sample", sample)
    monkeypatch.setattr(suite.time, "sleep", lambda s: None)


def test_the_suite_refuses_a_busy_machine_before_timing_anything_and_records_a_quiet_one(monkeypatch, tmp_path):
    n = busy.cores()
    scripted_cpu(monkeypatch, 0.0)
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
    assert quiet["machine"]["others"] == [{"when": "before the bench", "cores": 0.0}]
    assert report.markdown_table(quiet).count("Quiet by every check") == 1
    scripted_cpu(monkeypatch, 0.9)  # a neighbour using most of a core while the bench waits
    with pytest.raises(busy.BusyMachine, match="other processes used 0.90 cores on average before the bench"):
        suite.run([], refuse_busy=True)


def test_other_processes_cpu_is_the_machines_busy_time_less_our_own(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice, in ticks
    stat.write_text("cpu  300 10 50 900 7 2 3 5 0 0\ncpu0 150 5 25 450 3 1 1 2 0 0\n")
    monkeypatch.setattr(busy, "PROC_STAT", str(stat))
    ticks = os.sysconf("SC_CLK_TCK")
    s = busy.cpu_sample("during train")
    assert s["busy_s"] == pytest.approx((300 + 10 + 50 + 2 + 3 + 5) / ticks)  # idle and iowait left out
    start = {"when": "start", "wall_s": 10.0, "busy_s": 100.0, "own_s": 20.0}
    end = {"when": "during train", "wall_s": 14.0, "busy_s": 108.0, "own_s": 26.0}  # 8 busy s, 6 of them ours
    assert busy.others(start, end) == {"when": "during train", "cores": pytest.approx(0.5)}
    assert busy.others(start, {**end, "busy_s": None}) is None
    stat.write_text("intr 1 2 3\n")
    with pytest.raises(ValueError, match="not the 'cpu' total"):
        busy.cpu_sample("x")


def test_with_cpu_spans_the_load_after_a_section_no_longer_counts():
    loads = [{"when": "before the bench", "load_1m": 0.3}, {"when": "after vectors", "load_1m": 2.2}]
    spans = [{"when": "before the bench", "cores": 0.05}, {"when": "during vectors", "cores": 0.1}]
    assert busy.verdict(loads, [100e9], 2, spans)["busy"] is False  # 2.2 was the bench's own threads
    assert busy.verdict(loads, [100e9], 2)["reasons"] == [  # without /proc/stat the load still counts
        "load average 2.20 after vectors, above the 2 cores the bench uses"]
    busy_spans = [spans[0], {"when": "during vectors", "cores": 0.26}]
    assert busy.verdict(loads, [100e9], 2, busy_spans)["reasons"] == [
        "other processes used 0.26 cores on average during vectors, more than 0.25"]
