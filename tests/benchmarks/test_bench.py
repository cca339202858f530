"""The bench sections at a tiny shape: each figure follows from the FLOPs counted by hand and the
timings fed in; targets and the markdown report carry the numbers given to them."""
import copy
import dataclasses
import json

import jax
import jax.numpy as jnp
import pytest

from research.benchmarks import decode, models, peak, pipeline, report, suite, train
from research.benchmarks.shape import BENCH_SHAPE, Shape
from research.models.flops import train_flops

TINY = Shape(batch=4, src_len=6, tgt_len=5, d_model=32, d_ff=64, heads=2, layers=1, vocab=50, hidden=32,
             channels=32, dropout=0.1)
# The shape of tests/models/test_flops.py's whole-step hand count, with a vocabulary the
# random batches can draw from (ids start above the 4 special pieces).
HAND = Shape(batch=1, src_len=2, tgt_len=2, d_model=2, d_ff=4, heads=1, layers=1, vocab=8, dropout=0.0)
# Encoder 160 + decoder 256 (projections, attention, FFN; see test_flops) + logits 2 tokens x 2 x 8 x 2,
# forward matmul FLOPs, x3 for the backward pass.
HAND_TRAIN_FLOPS = 3 * (160 + 256 + 2 * 2 * 2 * 8)  # 1,440


def fixed_timings(*medians):
    """A stand-in for timing.time_fn that runs the step once and reports the given medians in turn."""
    given = list(medians)

    def time_fn(fn, **_):
        fn()  # the step still runs: a broken one still fails
        m = given.pop(0)
        return {"median_s": m, "p10_s": 0.8 * m, "p90_s": 1.5 * m, "n": 3}

    return time_fn


def test_bench_config_is_the_real_config_with_the_bench_shape():
    run = models.run_config("rnn", "rnn")
    assert run.encoder_config.bidirectional and run.encoder_config.num_layers == 3
    d = run.decoder_config
    assert (d.cell, d.attention, d.score, d.input_feeding, d.hidden_size) == ("lstm", "luong", "general", False, 256)
    assert run.trainer.label_smoothing == 0.1 and run.optim.clip_norm == 1.0
    t = models.run_config("transformer", "transformer").decoder_config
    assert (t.num_layers, t.num_heads, t.d_ff, t.d_model) == (3, 4, 1024, 256)


def test_time_pair_flops_by_hand_and_rates_from_the_timing(monkeypatch):
    hand = models.setup("transformer", "transformer", HAND).model.arch
    assert train_flops(hand, HAND.batch, HAND.src_len, HAND.tgt_len) == HAND_TRAIN_FLOPS
    monkeypatch.setattr(train, "time_fn", fixed_timings(0.25))
    row = train.time_pair("transformer-transformer", HAND, repeats=1, warmup=0)
    tokens = HAND.batch * HAND.tgt_len  # every target position is real in a benchmark batch
    assert row["gflop_per_step"] == pytest.approx(HAND_TRAIN_FLOPS / 1e9, rel=1e-12)
    assert row["gflop_per_s"] == pytest.approx(HAND_TRAIN_FLOPS / 0.25 / 1e9, rel=1e-12)
    assert row["tokens_per_s"] == pytest.approx(tokens / 0.25, rel=1e-12)
    assert (row["step_ms"], row["p10_ms"], row["p90_ms"]) == pytest.approx((250.0, 200.0, 375.0), rel=1e-12)
    assert row["compile_s"] > 0


def test_time_pair_of_an_rnn_pair_counts_its_cells(monkeypatch):
    """The RNN rows count the benchmark's LSTM, bidirectional, Luong-general, no input feeding."""
    monkeypatch.setattr(train, "time_fn", fixed_timings(0.5))
    row = train.time_pair("rnn-cnn", TINY, repeats=1, warmup=0)
    a = models.setup("rnn", "cnn", TINY).model.arch
    assert (a.encoder_config.cell, a.encoder_config.bidirectional) == ("lstm", True)
    lstm = train_flops(a, TINY.batch, TINY.src_len, TINY.tgt_len)
    gru = dataclasses.replace(a, encoder_config=dataclasses.replace(a.encoder_config, cell="gru"))
    assert lstm > train_flops(gru, TINY.batch, TINY.src_len, TINY.tgt_len)
    assert row["gflop_per_step"] == pytest.approx(lstm / 1e9, rel=1e-12)
    assert row["tokens_per_s"] == pytest.approx(TINY.batch * TINY.tgt_len / 0.5, rel=1e-12)


def test_train_section_ratios_from_the_given_timings(monkeypatch):
    # Figures of the Intel Xeon bench of 2026-11-29 (experiments/results/bench_2cpu_xeon.md in git at 6be424f):
    # 2,300 against 1,843 tokens/s, 106.3 of a 266.5 GFLOP/s peak.
    ours = {"transformer-transformer": {"tokens_per_s": 2300.0, "gflop_per_s": 106.3, "compile_s": 7.4,
                                        "torch": {"tokens_per_s": 1843.0}, "peak_gflop_per_s": 266.5,
                                        "rounds_peak_gflop_per_s": [266.5]},
            "rnn-cnn": {"tokens_per_s": 500.0, "gflop_per_s": 26.65, "compile_s": 31.0}}
    monkeypatch.setattr(train, "time_pair", lambda pair, **kw: copy.deepcopy(ours[pair]))
    rows = train.train_section(list(ours), peak_flops=266.5e9, with_torch=True)
    assert rows["transformer-transformer"]["vs_torch"] == pytest.approx(2300 / 1843)  # 1.248
    assert rows["transformer-transformer"]["mfu"] == pytest.approx(106.3 / 266.5)  # 39.9%
    assert rows["rnn-cnn"]["vs_torch"] is None and rows["rnn-cnn"]["mfu"] == pytest.approx(0.1)
    t = train.targets(rows)
    assert t["transformer-transformer tokens/s vs torch"] == {
        "metric": "vs_torch", "min": 1.2, "value": pytest.approx(1.248, abs=1e-3), "met": True}
    assert t["transformer-transformer MFU (against the run's highest peak)"] == {
        "metric": "mfu_best_peak", "min": 0.55, "value": pytest.approx(106.3 / 266.5), "met": False}
    assert t["compile time of every train step"]["value"] == 31.0  # the worst pair


def test_a_pair_with_a_peer_is_timed_in_rounds_and_judged_on_the_median_round(monkeypatch):
    """Three rounds fed in by hand: ratios 1.0, 8/7 and 8/9; the row is the middle one, the targets the medians."""
    arch = models.setup("transformer", "transformer", HAND).model.arch
    flops = train_flops(arch, BENCH_SHAPE.batch, BENCH_SHAPE.src_len, BENCH_SHAPE.tgt_len)  # the section's shape
    ran = []
    step = lambda: ran.append("ours")
    step.tokens, step.compile_s, step.params, step.arch = 2, 1.5, 99, arch
    monkeypatch.setattr(train.models, "build_train_step", lambda *a, **k: step)
    monkeypatch.setattr(train.torch_peer, "make_train_step", lambda kind, shape: (lambda: ran.append(kind), {"tokens": 2}))
    rounds = iter([(0.8, 0.8), (0.7, 0.8), (0.9, 0.8)])  # (ours, theirs) medians, seconds

    def alternating(fns, **_):
        for fn in fns:
            fn()
        return [{"median_s": m, "p10_s": m, "p90_s": m, "n": 1} for m in next(rounds)]

    monkeypatch.setattr(train, "time_alternating", alternating)
    peaks = iter([200e9, 210e9, 190e9])
    rows = train.train_section(["transformer-transformer"], peak_flops=lambda: next(peaks), with_torch=True, rounds=3)
    row = rows["transformer-transformer"]
    assert ran == ["ours", "transformer"] * 3  # each round times both, in turns
    assert row["rounds_step_ms"] == pytest.approx([800, 700, 900])
    assert row["rounds_vs_torch"] == pytest.approx([1.0, 8 / 7, 8 / 9])
    assert row["rounds_peak_gflop_per_s"] == pytest.approx([200, 210, 190])
    # the row is the round with the median ratio, the first, with its own peak
    assert (row["step_ms"], row["vs_torch"], row["peak_gflop_per_s"]) == pytest.approx((800, 1.0, 200))
    assert row["mfu"] == pytest.approx(flops / 0.8 / 200e9)
    train.rescore(rows, 250e9)
    assert row["rounds_mfu_best_peak"] == pytest.approx([flops / t / 250e9 for t in (0.8, 0.7, 0.9)])
    t = train.targets(rows)
    assert t["transformer-transformer tokens/s vs torch"]["value"] == pytest.approx(1.0)
    assert t["transformer-transformer MFU (against the run's highest peak)"]["value"] == pytest.approx(
        flops / 0.8 / 250e9)  # the median of the three rounds


def test_decode_speedup_from_the_given_timings(monkeypatch):
    monkeypatch.setattr(decode, "time_fn", fixed_timings(0.1, 1.2))  # cached, then uncached
    row = decode.time_pair("transformer-transformer", TINY, repeats=1, warmup=0)
    tokens = TINY.batch * decode.OUTPUT_LEN  # every row decodes OUTPUT_LEN tokens (time_pair checks it)
    assert (row["cached_ms"], row["uncached_ms"]) == pytest.approx((100.0, 1200.0), rel=1e-12)
    assert row["cached_tokens_per_s"] == pytest.approx(tokens / 0.1, rel=1e-12)
    assert row["uncached_tokens_per_s"] == pytest.approx(tokens / 1.2, rel=1e-12)
    assert row["speedup"] == pytest.approx(12.0, rel=1e-12)
    assert row["cached_compile_s"] > 0 and row["uncached_compile_s"] > 0


def test_targets_and_markdown(tmp_path):
    rows = {"transformer-transformer": {"tokens_per_s": 10.0, "vs_torch": 1.5, "mfu_best_peak": 0.25, "mfu": 0.3,
                                        "compile_s": 4.0},
            "rnn-rnn": {"tokens_per_s": 5.0, "vs_torch": None, "mfu_best_peak": 0.2, "mfu": 0.2, "compile_s": 31.0}}
    t = train.targets(rows)
    assert t["transformer-transformer tokens/s vs torch"]["met"] is True
    assert t["transformer-transformer MFU (against the run's highest peak)"]["value"] == 0.25
    assert t["rnn-rnn (LSTM, bi, Luong) tokens/s vs torch LSTM"]["met"] is None
    assert t["compile time of every train step"] == {"metric": "compile_s", "max": 30.0, "value": 31.0, "met": False}
    section = {"tokens_per_s": 50_000.0, "padding_fraction": 0.2, "tokens_per_s_vs_train_step": 25.0}
    piped = pipeline.targets(section)
    assert [v["met"] for v in piped.values()] == [True, False]  # 25x >= 20x; 20% padding is not < 15%
    env = {"platform": "Linux-test", "cpu": "Test CPU", "cores": 2, "devices": ["TFRT_CPU_0"], "versions": {"jax": "0.10.2"}}
    js, md = suite.write({"environment": env, "train": rows, "targets": {**t, **piped}, "pipeline": section}, tmp_path)
    assert json.loads(js.read_text())["targets"] == {**t, **piped}
    lines = md.read_text().splitlines()
    for line in [
        "- machine: Linux-test; CPU: Test CPU; cores: 2",
        "| pair | tokens_per_s | vs_torch | mfu_best_peak | mfu | compile_s |",
        "| transformer-transformer | 10.00 | 1.50 | 25.0% | 30.0% | 4.00 |",
        "| rnn-rnn | 5.00 | – | 20.0% | 20.0% | 31.00 |",
        "| transformer-transformer tokens/s vs torch | vs_torch | 1.20 | – | 1.50 | yes |",
        "| compile time of every train step | compile_s | – | 30.00 | 31.00 | no |",
        "| rnn-rnn (LSTM, bi, Luong) tokens/s vs torch LSTM | vs_torch | 1.00 | – | – | – |",
        "| pipeline >= 20x the transformer train step | tokens_per_s_vs_train_step | 20.00 | – | 25.00 | yes |",
        "Targets met: 2 of 6 (1 not measured).",
        "| tokens_per_s | 50,000 |",
        "| padding_fraction | 0.2 |",
        "| tokens_per_s_vs_train_step | 25.00 |",
    ]:
        assert line in lines, line
    assert lines.index("## targets") < lines.index("## pipeline")
    assert (report.fmt(True), report.fmt(None), report.fmt(1234.5), report.fmt(0.1234), report.fmt(3)) == (
        "yes", "–", "1,234", "0.123", "3")


def test_cli_rejects_unknown_sections():
    from research.bench import main

    with pytest.raises(SystemExit):
        main(["--only", "train,speed"])


def test_decode_section_rows_ratios_and_markdown(monkeypatch):
    """One row per decoder kind; the ratios are our beam-4 tokens/s (timed in turns with the peers) over theirs."""
    monkeypatch.setattr(decode, "time_pair", lambda pair, shape, **_: {"cached_tokens_per_s": 100.0, "speedup": 3.0})
    monkeypatch.setattr(decode, "time_beam", lambda pair, shape, **_: {"beam4_tokens_per_s": 40.0, "beam4_ms": 2.0,
                                                                       "beam4_compile_s": 1.0})
    ours = {"status": "ok", "greedy_tokens_per_s": 900.0, "beam4_tokens_per_s": 300.0, "beam4_ms": 5.0,
            "beam4_compile_s": 1.5}
    peers = {"ours": ours, "torch": {"status": "ok", "beam4_tokens_per_s": 200.0, "threads": 2},
             "ctranslate2": {"status": "ok", "beam4_tokens_per_s": 600.0, "compute_type": "float32"},
             "ctranslate2_int8": {"status": "not installed: pip install -e '.[serve]'"}}
    monkeypatch.setattr(decode, "time_peers", lambda shape, **_: copy.deepcopy(peers))
    positions = {"sinusoidal": {"overrides": "(as configured)", "beam4_tokens_per_s": 300.0, "vs_sinusoidal": 1.0},
                 "relative": {"overrides": "encoder.positions=relative decoder.positions=relative",
                              "beam4_tokens_per_s": 270.0, "vs_sinusoidal": 0.9}}
    monkeypatch.setattr(decode, "time_positions", lambda shape, **_: copy.deepcopy(positions))
    out = decode.decode_section(shape=TINY)
    assert set(out) == {"settings", "transformer", "rnn", "cnn", "peers", "positions"}
    t = out["transformer"]
    assert (t["pair"], t["beam4_tokens_per_s"], t["cached_tokens_per_s"]) == ("transformer-transformer", 300.0, 100.0)
    assert (t["vs_torch"], t["vs_ctranslate2"], t["vs_ctranslate2_int8"]) == (pytest.approx(1.5), pytest.approx(0.5), None)
    assert out["rnn"]["vs_torch"] is None and out["cnn"]["beam4_tokens_per_s"] == 40.0  # no peer of those decoders
    assert out["settings"]["batch"] == TINY.batch and decode.DECODE_SHAPE.batch == 32
    lines = report.markdown_table({"environment": {}, "decode": out}).splitlines()
    for line in ["| decoder | pair | cached_tokens_per_s | beam4_tokens_per_s | vs_torch | vs_ctranslate2 | "
                 "vs_ctranslate2_int8 | speedup | beam4_ms | beam4_compile_s |",
                 "| transformer | transformer-transformer | 100.00 | 300.00 | 1.50 | 0.5 | – | 3.00 | 5.00 | 1.50 |",
                 "| rnn | rnn-rnn | 100.00 | 40.00 | – | – | – | 3.00 | 2.00 | 1.00 |",
                 "| ctranslate2_int8 | not installed: pip install -e '.[serve]' | – | – | – | – | – | – |",
                 "| positions | overrides | beam4_tokens_per_s | vs_sinusoidal |",
                 "| relative | encoder.positions=relative decoder.positions=relative | 270.00 | 0.9 |"]:
        assert line in lines, line
    with pytest.raises(ValueError, match="one pair per decoder"):
        decode.decode_section(["rnn-rnn", "cnn-rnn"], shape=TINY)


def test_positions_rows_time_relative_models_in_turns_against_the_sinusoidal_one(monkeypatch):
    """Each variant's searches really run (tokens checked), built with its overrides, and the ratio is over sinusoidal."""
    built, real_model = [], decode._model

    def model(pair, shape, precision="fp32", extra=()):
        s, batch, params = real_model(pair, shape, precision, extra)
        tables = [path for path, _ in jax.tree_util.tree_flatten_with_path(params)[0] if "relative_bias" in str(path)]
        built.append((s.run.encoder_config.positions, s.run.decoder_config.positions, len(tables)))
        return s, batch, params

    calls = []

    def alternating(fns, **_):
        calls.append(len(fns))
        for fn in fns:
            fn()  # the searches still run
        return [{"median_s": m} for m in (0.1, 0.125, 0.2)]

    monkeypatch.setattr(decode, "_model", model)
    monkeypatch.setattr(decode, "time_alternating", alternating)
    rows = decode.time_positions(TINY, repeats=1, warmup=0)
    assert built == [("sinusoidal", "sinusoidal", 0), ("sinusoidal", "relative", 1), ("relative", "relative", 2)]
    assert calls == [3, 3]  # greedy in turns, then beam-4 in turns
    assert list(rows) == ["sinusoidal", "relative_decoder", "relative"]
    tokens = TINY.batch * decode.OUTPUT_LEN
    assert rows["relative_decoder"]["beam4_tokens_per_s"] == pytest.approx(tokens / 0.125)
    assert [rows[k]["vs_sinusoidal"] for k in rows] == pytest.approx([1.0, 0.8, 0.5])
    assert rows["relative_decoder"]["overrides"] == "decoder.positions=relative"


def test_the_accelerator_run_keeps_its_own_target_and_the_cpu_run_its_four():
    rows = {"transformer-transformer": {"mfu_best_peak": 0.45, "vs_torch": None, "compile_s": 40.0}}
    cpu = train.targets(rows)
    assert len(cpu) == 4 and "transformer-transformer bf16 MFU (against the run's highest bf16 peak)" not in cpu
    gpu = train.targets(rows, "large", "bf16")
    assert gpu == {"transformer-transformer bf16 MFU (against the run's highest bf16 peak)": {
        "metric": "mfu_best_peak", "min": 0.40, "value": 0.45, "met": True}}
    assert train.targets(rows, "large", "fp32") == {}  # no target was set for that run


def test_a_bf16_run_builds_bf16_steps_and_measures_a_bf16_peak(monkeypatch):
    built = []
    real = train.models.build_train_step

    def build(*args, **kw):
        step = real(*args, **kw)
        built.append((kw["precision"], step.state.params["target_embed"]["embedding"].dtype))
        return step

    monkeypatch.setattr(train.models, "build_train_step", build)
    rows = train.train_section(["transformer-transformer"], peak_flops=1e9, with_torch=False, repeats=1, warmup=0,
                               shape=TINY, precision="bf16")
    assert built == [("bf16", jnp.float32)]  # bf16 compute over fp32 parameters, as trainer.precision says
    assert rows["transformer-transformer"]["gflop_per_step"] == pytest.approx(
        train_flops(models.setup("transformer", "transformer", TINY).model.arch, TINY.batch, TINY.src_len,
                    TINY.tgt_len) / 1e9)
    bf16 = peak.jax_matmul_peak((64,), repeats=1, warmup=0, dtype=jnp.bfloat16)
    assert bf16["best_n"] == 64 and bf16["flops_per_s"] > 0
    with pytest.raises(ValueError, match="fp32 only, not bf16"):
        peak.measure_peak((64,), precision="bf16", with_torch=True)
    s, _, _ = decode._model("transformer-transformer", TINY, "bf16")
    assert s.run.trainer.precision == "bf16"


def test_cli_runs_train_and_decode_only_at_the_large_shape(monkeypatch, tmp_path):
    from research import bench

    seen, real_run = {}, suite.run
    monkeypatch.setattr(bench.suite, "run", lambda only, **kw: seen.update(only=only, **kw) or {"environment": {}})
    bench.main(["--shape", "large", "--precision", "bf16", "--out", str(tmp_path)])
    assert seen["only"] == ["train", "decode"] and (seen["shape"], seen["precision"]) == ("large", "bf16")
    bench.main(["--out", str(tmp_path)])
    assert seen["only"] == list(suite.SECTIONS) and (seen["shape"], seen["precision"]) == ("bench", "fp32")
    with pytest.raises(SystemExit):
        bench.main(["--shape", "large", "--only", "train,scaling", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="train and decode sections only"):
        real_run(["pipeline"], shape="large", precision="bf16")
    with pytest.raises(ValueError, match="shape 'huge' is not one of bench, large"):
        real_run([], shape="huge")
