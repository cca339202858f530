"""Run directories for the tests: fake ones for the report tools, short and tiny real trainings."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from research.config import REPO
from tests.conftest import tiny_overrides

# A run of a few seconds: tiny model, 300 pairs, one batch shape, 4 steps, one evaluation of 4 examples.
SHORT = ["data.max_train_examples=300", "data.max_shapes=1", "trainer.max_steps=4", "trainer.eval_every=4",
         "trainer.log_every=2", "trainer.eval_examples=4", "trainer.checkpoint=false"]


def fake_run(path: Path, loss: float, bleu: float, seed: int = 0) -> Path:
    """A finished run's files (config, metrics.jsonl, summary.json) with the given figures; no training."""
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "config.yaml").write_text("{}\n")
    lines = [{"step": 2, "split": "train", "loss": loss + 1, "tokens_per_s": 100.0 * seed},
             {"step": 4, "split": "validation", "loss": loss, "bleu": bleu}]
    (path / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    summary = {"encoder": "rnn", "decoder": "rnn", "seed": seed, "params": 10, "steps": 4, "compile_s": 1.0 + seed,
               "wall_s": 2.0 + seed, "tokens_per_s": 5.0, "validation": {"loss": loss, "bleu": bleu, "samples": []}, "metric": "bleu"}
    (path / "summary.json").write_text(json.dumps(summary))
    return path


# 20 steps with a short warm-up: untrained but not silent, so outputs are
# non-empty and their length follows the source length (order is visible).
TRAIN = [
    "trainer.max_steps=20", "trainer.eval_every=20", "trainer.eval_examples=10", "data.max_train_examples=300",
    "data.max_shapes=2", "optim.warmup_steps=5", "optim.learning_rate=0.005",
]


def tiny_run(tmp_path_factory) -> Path:
    """A tiny trained run directory, made once per test session by the real train command.

    Shared by tests/test_evaluate.py and tests/test_translate.py: the first
    caller trains it under pytest's session temp folder, later callers reuse it.
    """
    root = tmp_path_factory.getbasetemp() / "tiny_run"
    run = root / "run"
    if not (run / "summary.json").exists():
        cmd = [sys.executable, "-m", "research.train", *tiny_overrides("transformer", "transformer"), *TRAIN,
               f"tokenizer.cache_dir={root}/spm", f"data.tfds_dir={root}/tfds", f"hydra.run.dir={run}"]
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
    return run
