"""A language model run end to end, as a user runs it: research.train on ddtp_summ_en_lm_sample (packed, with
trainer.test=true), research.evaluate on the test split, research.sample on the run, and resumed from a checkpoint."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from research import evaluate, run_dir, sample
from research.config import REPO
from research.registry import ConfigError
from research.tasks import lm
from tests.helpers.lm import greedy_by_recomputing

RUN = [
    "data=ddtp_summ_en_lm_sample", "decoder=transformer", "model.d_model=32", "decoder.num_layers=1",
    "decoder.d_ff=64", "decoder.num_heads=2", "tokenizer.vocab_size=400", "data.max_target_len=64",
    "data.tokens_per_batch=1024", "data.pack=true",
    # Learned positions stop at 64, so evaluation needs no shapes beyond training's (longer texts are cut).
    "decoder.positions=learned", "decoder.max_len=64",
    "optim.warmup_steps=1", "optim.learning_rate=0.003", "trainer.eval_every=2", "trainer.log_every=2",
    "trainer.samples=1",
]
PROMPT = "This package contains"


def _train(run, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "research.train", *RUN, f"tokenizer.cache_dir={tmp_path}/spm",
           f"data.tfds_dir={tmp_path}/tfds", f"hydra.run.dir={run}", *extra]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm_run")
    run = tmp / "run"
    _train(run, tmp, "trainer.max_steps=4", "trainer.test=true")
    return tmp, run


def test_lm_trains_selects_the_lowest_perplexity_and_tests_and_evaluates(trained, tmp_path):
    _, run = trained
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in rows if r["split"] == "validation"]
    assert [r["step"] for r in valid] == [2, 4]
    for r in valid:
        assert r["perplexity"] == pytest.approx(math.exp(r["loss"]), rel=1e-12) and 0 < r["accuracy"] < 1
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["metric"], summary["decoder"]) == ("perplexity", "transformer")
    best = min(valid, key=lambda r: r["perplexity"])
    assert summary["best"]["select_by"] == "perplexity"
    assert (summary["best"]["value"], summary["best"]["step"]) == (best["perplexity"], best["step"])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["data"]["task"] == "lm" and manifest["config"]["data"]["pack"] is True

    hyps = (run / "hyps_test.txt").read_text().splitlines()
    tested = json.loads((run / "eval_test.json").read_text())
    assert len(hyps) == tested["examples"] == 300
    assert lm.score(hyps) == {k: tested[k] for k in ("loss", "perplexity", "accuracy")}
    assert tested["truncated_to_model"] > 0  # documents past the 64 learned positions are counted as cut
    assert {k: v for k, v in summary["test"].items() if k in ("perplexity", "loss")} == \
        {k: tested[k] for k in ("perplexity", "loss")}

    # research.evaluate on the finished run: the same per-example lines and numbers as trainer.test wrote.
    again = tmp_path / "again"
    assert evaluate.main([f"run_dir={run}", "split=test", f"out={again}"]) == 0
    assert (again / "hyps_test.txt").read_text().splitlines() == hyps
    scored = json.loads((again / "eval_test.json").read_text())
    for key in ("perplexity", "loss", "accuracy", "truncated_to_model", "step", "checkpoint"):
        assert scored[key] == tested[key], key


@pytest.mark.slow  # minutes on 2 cores: `make test-slow` (measured in the 2026-12-03 durations)
def test_research_sample_continues_a_prompt_from_the_cache_as_recomputing_would(trained):
    _, run = trained
    args = [f"run_dir={run}", f"prompt={PROMPT}", "n=3", "decode=sample", "decode.temperature=1.5",
            "decode.max_len_b=12"]
    out = subprocess.run([sys.executable, "-m", "research.sample", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and len(set(lines)) > 1, lines  # rows draw differently
    # The same command draws the same lines; its first line is the same with n=1.
    assert sample.sample(str(run), PROMPT, 3, args[3:]) == lines
    assert sample.sample(str(run), PROMPT, 1, args[3:]) == lines[:1]

    # Greedy (the run's decode config) equals greedy by recomputing the whole prefix at each step.
    loaded = run_dir.load(run, ["decode.max_len_a=0", "decode.max_len_b=10"])
    tok = loaded.tokenizer
    for prompt in (PROMPT, ""):
        ids = tok.encode_target(prompt)
        new = greedy_by_recomputing(loaded.model, loaded.params, ids, 10)
        expected = tok.decode_target(ids + new)[len(tok.decode_target(ids)):]
        got = sample.sample(str(run), prompt, 2, ["decode.max_len_a=0", "decode.max_len_b=10"])
        assert got == [expected, expected] and new, (prompt, got)

    with pytest.raises(ConfigError, match="n: must be at least 1"):
        sample.sample(str(run), PROMPT, 0)
    assert sample.main([f"run_dir={run}", "n=0"]) == 2


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_an_lm_run_resumed_from_its_first_checkpoint_ends_bit_identical(trained):
    """The finished run with its step-4 checkpoint, summary and test files removed is a run killed after step 2:
    resumed, it trains steps 3-4 again and must end exactly where the uninterrupted run ended."""
    tmp, run = trained
    resumed = tmp / "resumed"
    shutil.copytree(run, resumed)
    for kind in ("last", "best"):
        shutil.rmtree(resumed / "checkpoints" / kind / "4", ignore_errors=True)
    for name in ("summary.json", "eval_test.json", "hyps_test.txt"):
        (resumed / name).unlink()
    out = _train(resumed, tmp, "trainer.max_steps=4", "trainer.test=true", "trainer.resume=true")
    assert "resumed from step 2" in out.stderr + (resumed / "train.log").read_text()

    restore = lambda r: ocp.PyTreeCheckpointer().restore((r / "checkpoints" / "last" / "4" / "state").absolute())["params"]
    a, b = jax.tree.leaves(restore(run)), jax.tree.leaves(restore(resumed))
    assert len(a) == len(b) > 0 and all(np.array_equal(x, y) for x, y in zip(a, b))
    lines = lambda r: (r / "metrics.jsonl").read_text().splitlines()
    kept = ("step", "split", "loss", "accuracy", "perplexity", "grad_norm", "learning_rate", "tokens", "flops")
    strip = lambda ls: [{k: v for k, v in json.loads(l).items() if k in kept} for l in ls]  # not the timings
    assert strip(lines(resumed)) == strip(lines(run))
    for key in ("perplexity", "loss", "accuracy"):
        assert json.loads((resumed / "eval_test.json").read_text())[key] == json.loads((run / "eval_test.json").read_text())[key]
