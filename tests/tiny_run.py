"""A tiny trained run directory, made once per test session by the real train command.

Shared by tests/test_evaluate.py and tests/test_translate.py: the first
caller trains it under pytest's session temp folder, later callers reuse it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from research.config import REPO
from tests.conftest import tiny_overrides

# 20 steps with a short warm-up: untrained but not silent, so outputs are
# non-empty and their length follows the source length (order is visible).
TRAIN = [
    "trainer.max_steps=20", "trainer.eval_every=20", "trainer.eval_examples=10", "data.max_train_examples=300",
    "data.max_shapes=2", "optim.warmup_steps=5", "optim.learning_rate=0.005",
]


def tiny_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.getbasetemp() / "tiny_run"
    run = root / "run"
    if not (run / "summary.json").exists():
        cmd = [sys.executable, "-m", "research.train", *tiny_overrides("transformer", "transformer"), *TRAIN,
               f"tokenizer.cache_dir={root}/spm", f"data.tfds_dir={root}/tfds", f"hydra.run.dir={run}"]
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
    return run
