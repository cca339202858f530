"""A tagging run end to end, as a user runs it: train with trainer.test=true, then research.evaluate."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from research import evaluate
from research.config import REPO

RUN = [
    "data=ddtp_punct_en_sample", "encoder=cnn", "model.d_model=32", "encoder.num_layers=1", "encoder.channels=32",
    "encoder.max_len=128",  # the model's positions stop at 128, so evaluation needs no shapes beyond training's
    "tokenizer.vocab_size=400", "data.max_shapes=1", "optim.warmup_steps=1", "optim.learning_rate=0.003",
    "trainer.max_steps=6", "trainer.eval_every=3", "trainer.log_every=3", "trainer.samples=1", "trainer.test=true",
]


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_tagging_trains_tests_and_evaluates_with_per_tag_scores_and_confusion_images(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "research.train", *RUN, f"tokenizer.cache_dir={tmp_path}/spm",
           f"data.tfds_dir={tmp_path}/tfds", f"hydra.run.dir={run}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in rows if r["split"] == "validation"]
    assert [r["step"] for r in valid] == [3, 6]
    assert all({"loss", "macro_f1", "accuracy", "f1_COMMA", "f1_PERIOD"} <= set(r) for r in valid)
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["metric"], summary["encoder"], summary["decoder"]) == ("macro_f1", "cnn", "none")
    assert summary["best"]["select_by"] == "macro_f1" and {"macro_f1", "accuracy"} <= set(summary["test"])

    saved = json.loads((run / "tokenizer" / "tags.json").read_text())
    assert saved == {"tags": ["COLON", "COMMA", "O", "PERIOD", "SEMICOLON"], "scheme": "plain", "predicate": False,
                     "fallback": "O"}
    with gzip.open(REPO / "research/data/samples/ddtp_punct_en/test.jsonl.gz", "rt", encoding="utf-8") as f:
        gold = [json.loads(line)["tags"] for line in f]
    hyps = [line.split(" ") for line in (run / "hyps_test.txt").read_text().splitlines()]
    assert len(hyps) == 100 and [len(h) for h in hyps] == [len(g) for g in gold]  # one tag per word, in order
    assert {t for h in hyps for t in h} <= set(saved["tags"])
    tested = json.loads((run / "eval_test.json").read_text())
    matrix = np.array(tested["confusion_matrix"])
    assert tested["labels"] == saved["tags"] and matrix.sum() == sum(map(len, gold))
    # Rows true, columns predicted, counted here from the files.
    counted = np.zeros_like(matrix)
    for h, g in zip(hyps, gold):
        for p, t in zip(h, g):
            counted[saved["tags"].index(t), saved["tags"].index(p)] += 1
    np.testing.assert_array_equal(matrix, counted)
    assert tested["accuracy"] == np.trace(matrix) / matrix.sum()

    images = EventAccumulator(str(run / "tb"), size_guidance={"images": 0})
    images.Reload()
    assert [e.step for e in images.Images("validation/confusion_matrix")] == [3, 6]

    # research.evaluate on the finished run: the same predictions and numbers as trainer.test wrote.
    again = tmp_path / "again"
    assert evaluate.main([f"run_dir={run}", "split=test", f"out={again}"]) == 0
    assert (again / "hyps_test.txt").read_text() == (run / "hyps_test.txt").read_text()
    scored = json.loads((again / "eval_test.json").read_text())
    for key in ("macro_f1", "accuracy", "f1_COMMA", "loss", "confusion_matrix", "step", "checkpoint"):
        assert scored[key] == tested[key], key
