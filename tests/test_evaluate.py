"""`python -m research.evaluate` on a tiny trained run, and loading run directories."""
from __future__ import annotations

import gzip
import json
import logging
import shutil
import subprocess
import sys

import pytest
from sacrebleu.metrics import BLEU, CHRF

from research.config import REPO
from research.registry import ConfigError
from research.training.checkpoint import IncompatibleCheckpoint
from research.run_dir import load, load_config, parse_args
from tests.conftest import SAMPLE
from tests.helpers.runs import tiny_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.mark.slow  # minutes on 2 cores: `make test-slow` (measured in the 2026-12-03 durations)
def test_evaluate_writes_hyps_and_metrics_that_sacrebleu_reproduces(run_dir):
    cmd = [sys.executable, "-m", "research.evaluate", f"run_dir={run_dir}", "split=test",
           "decode.search=beam", "decode.beam_size=2"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    with gzip.open(SAMPLE / "test.jsonl.gz", "rt", encoding="utf-8") as f:
        refs = [json.loads(line)["en"] for line in f if line.strip()]
    hyps = (run_dir / "hyps_test.txt").read_text(encoding="utf-8").split("\n")
    assert hyps[-1] == "" and len(hyps) - 1 == len(refs), "one line per test example"
    hyps = hyps[:-1]
    assert any(hyps), "the tiny run should produce some output"
    result = json.loads((run_dir / "eval_test.json").read_text())
    assert result["examples"] == len(refs) and result["checkpoint"] == "best" and result["step"] == 20
    assert result["decode"]["beam_size"] == 2
    bleu, chrf = BLEU(), CHRF()
    assert result["bleu"] == pytest.approx(bleu.corpus_score(hyps, [refs]).score, abs=1e-9)
    assert result["chrf"] == pytest.approx(chrf.corpus_score(hyps, [refs]).score, abs=1e-9)
    assert result["bleu_signature"] == str(bleu.get_signature())
    assert result["loss"] > 0 and result["perplexity"] > 1
    assert f"bleu {result['bleu']:.2f}" in out.stdout and "bleu_signature: nrefs:1" in out.stdout


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_load_falls_back_to_last_checkpoint(run_dir, tmp_path, caplog):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("tb", "best"))
    with caplog.at_level(logging.WARNING, logger="research.run_dir"):
        run = load(copy)
    assert (run.checkpoint, run.step) == ("last", 20)
    assert "no best checkpoint" in caplog.text


def test_overrides_are_checked(run_dir):
    assert load_config(run_dir, ["decode=beam", "decode.beam_size=3"]).decode.beam_size == 3
    with pytest.raises(ConfigError, match="beam_sz"):
        load_config(run_dir, ["decode.beam_sz=3"])
    with pytest.raises(ConfigError, match="only the decode and data groups"):
        load_config(run_dir, ["encoder=rnn"])
    with pytest.raises(ConfigError, match="decode.beam_size: 4 applies to search=beam only, but search=sample"):
        load_config(run_dir, ["decode.beam_size=4", "decode.search=sample"])
    with pytest.raises(IncompatibleCheckpoint, match="another model, vocabulary or input pipeline(.|\n)*model.tie_output: checkpoint True, config False"):
        load(run_dir, ["model.tie_output=false"])
    assert parse_args(["run_dir=x", "decode.seed=1"], {"run_dir": None, "chunk": 10}) == ({"run_dir": "x", "chunk": 10}, ["decode.seed=1"])
    with pytest.raises(ConfigError, match="run_dir: required"):
        parse_args(["split=test"], {"run_dir": None, "split": "test"})


def test_a_sweep_job_folder_with_commas_is_one_run_and_a_comma_list_an_ensemble(tmp_path):
    from research.evaluate import run_dirs  # noqa: PLC0415

    job = tmp_path / "encoder=cnn,decoder=rnn,trainer.seed=0"  # as research/sweep.py names a sweep's jobs
    job.mkdir()
    assert run_dirs(str(job)) == [job]
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_dirs(f"{a},{b}") == [a, b]  # neither exists as one folder: two runs
    with pytest.raises(ConfigError, match="run_dir: required"):
        run_dirs(",")
