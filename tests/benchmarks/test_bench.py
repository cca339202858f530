"""The bench sections at a tiny shape: rows carry the promised metrics; targets and report agree."""
import json

import pytest

from research.benchmarks import decode, models, pipeline, report, suite, train
from research.benchmarks.flops import Shape

TINY = Shape(batch=4, src_len=6, tgt_len=5, d_model=32, d_ff=64, heads=2, layers=1, vocab=50, hidden=32,
             channels=32, dropout=0.1)


def test_bench_config_is_the_real_config_with_the_bench_shape():
    run = models.run_config("rnn", "rnn")
    assert run.encoder_config.bidirectional and run.encoder_config.num_layers == 3
    d = run.decoder_config
    assert (d.cell, d.attention, d.score, d.input_feeding, d.hidden_size) == ("lstm", "luong", "general", False, 256)
    assert run.trainer.label_smoothing == 0.1 and run.optim.clip_norm == 1.0
    t = models.run_config("transformer", "transformer").decoder_config
    assert (t.num_layers, t.num_heads, t.d_ff, t.d_model) == (3, 4, 1024, 256)


@pytest.mark.parametrize("pair", ["rnn-cnn", "transformer-rnn"])
def test_time_pair_reports_throughput(pair):
    row = train.time_pair(pair, TINY, repeats=1, warmup=1)
    assert row["tokens_per_s"] > 0 and row["compile_s"] > 0 and row["gflop_per_step"] > 0


def test_decode_cached_and_uncached_run_to_full_length():
    if decode.available():
        pytest.skip(decode.available())
    row = decode.time_pair("transformer-transformer", TINY, repeats=1, warmup=0)
    assert row["cached_ms"] > 0 and row["uncached_ms"] > 0 and row["speedup"] > 0


def test_targets_and_markdown(tmp_path):
    rows = {"transformer-transformer": {"tokens_per_s": 10.0, "vs_torch": 1.5, "mfu": 0.3, "compile_s": 4.0},
            "rnn-rnn": {"tokens_per_s": 5.0, "vs_torch": None, "mfu": 0.2, "compile_s": 31.0}}
    t = train.targets(rows)
    assert t["transformer-transformer tokens/s vs torch"]["met"] is True
    assert t["transformer-transformer MFU"]["met"] is False
    assert t["rnn-rnn (LSTM, bi, Luong) tokens/s vs torch LSTM"]["met"] is None
    assert t["compile time of every train step"] == {"metric": "compile_s", "max": 30.0, "value": 31.0, "met": False}
    section = {"tokens_per_s": 50_000.0, "padding_fraction": 0.2, "tokens_per_s_vs_train_step": 25.0}
    piped = pipeline.targets(section)
    assert [v["met"] for v in piped.values()] == [True, False]  # 25x >= 20x; 20% padding is not < 15%
    js, md = suite.write({"train": rows, "targets": t, "pipeline": section}, tmp_path)
    assert json.loads(js.read_text())["targets"] == t
    text = md.read_text()
    assert "## targets" in text and "Targets met: 1 of 4 (1 not measured)." in text
    assert "## pipeline" in text and "25" in text
    assert report.fmt(True) == "yes"


def test_cli_rejects_unknown_sections():
    from research.bench import main

    with pytest.raises(SystemExit):
        main(["--only", "train,speed"])
