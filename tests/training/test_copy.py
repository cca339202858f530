"""A small transformer learns `copy` to 100% in-distribution sequence accuracy; its test_longer scores recount by hand."""
from __future__ import annotations

import json
import subprocess
import sys

from research.config import REPO
from research.data.diagnostics import algorithmic

# Measured on 2 CPU cores: validation sequence accuracy 82% at step 100, 98% at 150 and 200, 100% at 300 (49 s).
GENERATOR = dict(max_len=4, alphabet_size=6, train_size=1000, validation_size=100, test_size=100)
RUN = [
    "data=copy", "tokenizer=symbols", *(f"data.generator.{k}={v}" for k, v in GENERATOR.items()),
    "data.tokens_per_batch=512", "data.max_shapes=2", "model.d_model=64", "encoder.num_layers=1",
    "decoder.num_layers=1", "encoder.d_ff=128", "decoder.d_ff=128", "optim.learning_rate=0.005",
    "optim.warmup_steps=30", "trainer.max_steps=300", "trainer.eval_every=300", "trainer.eval_examples=100",
    "trainer.log_every=100", "trainer.test=true",
]


def test_transformer_learns_copy_and_scores_longer_lengths_as_counted(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "research.train", *RUN, f"data.tfds_dir={tmp_path}/tfds",
           f"tokenizer.cache_dir={tmp_path}/vocab", f"hydra.run.dir={run}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metric"] == "sequence_accuracy"
    assert summary["validation"]["sequence_accuracy"] == 100.0
    assert summary["validation"]["unknown_symbols"] == 0
    assert summary["train_target_len_max"] == GENERATOR["max_len"]
    assert sorted((run / "tokenizer" / "joint.symbols").read_text().split()) == list("abcdef")  # every symbol, no pieces

    # test_longer (lengths 5..8): recount exact matches per 2-length bucket from the written hypotheses.
    refs = [t for _, t in algorithmic.generate(algorithmic.AlgorithmicConfig("copy", **GENERATOR))["test_longer"]]
    hyps = (run / "hyps_test.txt").read_text().split("\n")[:-1]
    assert len(hyps) == len(refs) == 100
    scores = json.loads((run / "eval_test.json").read_text())
    for lo, hi in ((5, 6), (7, 8)):
        inside = [(h, r) for h, r in zip(hyps, refs) if lo <= len(r.split()) <= hi]
        assert scores[f"examples_len_{lo}_{hi}"] == len(inside)
        assert abs(scores[f"sequence_accuracy_len_{lo}_{hi}"] - 100 * sum(h.split() == r.split() for h, r in inside) / len(inside)) < 1e-9
    assert not any(k.startswith("examples_len_1_") or k.startswith("examples_len_3_") for k in scores)
