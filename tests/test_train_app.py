"""The Hydra train app end to end, as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from research.config import REPO
from tests.conftest import tiny_overrides


def _train(tmp_path, *overrides, check=True):
    cmd = [sys.executable, "-m", "research.train", *overrides, f"hydra.run.dir={tmp_path}/run"]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=check)


@pytest.mark.slow  # minutes on 2 cores: `make test-slow` (measured in the 2026-12-03 durations)
def test_train_app_writes_run_directory(tmp_path):
    out = _train(
        tmp_path, *tiny_overrides("cnn", "rnn"),
        "trainer.max_steps=12", "trainer.eval_every=6", "trainer.log_every=3", "trainer.eval_examples=8",
        "data.max_train_examples=300", f"tokenizer.cache_dir={tmp_path}/spm",
    )
    run = tmp_path / "run"
    assert (run / ".hydra" / "config.yaml").exists() and (run / ".hydra" / "overrides.yaml").exists()
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    train = [l for l in lines if l["split"] == "train"]
    valid = [l for l in lines if l["split"] == "validation"]
    assert [l["step"] for l in train] == [3, 6, 9, 12]
    assert [l["step"] for l in valid] == [6, 12]
    assert all({"loss", "accuracy", "grad_norm", "learning_rate", "tokens_per_s"} <= set(l) for l in train)
    assert all({"loss", "perplexity", "bleu", "chrf"} <= set(l) for l in valid)
    assert list((run / "tb").glob("events.out.tfevents.*"))
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["encoder"], summary["decoder"]) == ("cnn", "rnn")
    assert "validation: loss" in out.stdout and "TensorBoard:" in out.stdout
    # a second run with the same data and settings reuses the cached tokenizer
    again = _train(
        tmp_path, *tiny_overrides("cnn", "rnn"), "trainer.max_steps=1", "trainer.eval_examples=2",
        "data.max_train_examples=300", f"tokenizer.cache_dir={tmp_path}/spm", "trainer.checkpoint=false",
    )
    assert "tokenizer: reusing" in (tmp_path / "run" / "train.log").read_text()
    assert again.returncode == 0


def test_config_error_stops_before_training_with_the_key(tmp_path):
    out = _train(tmp_path, "model.d_model=250", check=False)
    assert out.returncode == 2, out.stderr[-3000:]  # a ConfigError; composition errors exit 1, divergence 3
    assert "encoder.num_heads: d_model 250 is not divisible by num_heads 4" in out.stderr + out.stdout
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.slow  # a second full app run; `make test-slow`
def test_summarization_reports_rouge(tmp_path):
    _train(
        tmp_path, *tiny_overrides("transformer", "cnn"), "data=ddtp_summ_en_sample",
        "trainer.max_steps=4", "trainer.eval_every=4", "trainer.eval_examples=4", "data.max_train_examples=200",
        "decode.max_len_a=0", "decode.max_len_b=8", f"tokenizer.cache_dir={tmp_path}/spm",
    )
    valid = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"validation"' in l]
    assert {"rouge1", "rouge2", "rougeL", "rougeLsum"} <= set(valid[-1])
