"""Run directories for the tests: fake ones for the report tools, short and tiny real trainings."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from research.config import REPO
from research.data import lock
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


def shared_dir(tmp_path_factory) -> Path:
    """A folder all xdist workers of this test session share: the session's base folder (each worker's
    own base folder is a `popen-gwN` inside it); without xdist, the base folder itself."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def made_once(tmp_path_factory, name: str):
    """Yields (folder, done): the first worker to get the lock finds done False and makes `folder`;
    the others wait for it, then find done True and reuse it. So a run the tests share is trained once
    per session, not once per worker (nor again when pytest re-creates a module fixture)."""
    folder = shared_dir(tmp_path_factory) / name
    with lock.exclusive(lock.lock_path(str(shared_dir(tmp_path_factory)), name)):
        yield folder, (folder / "DONE").exists()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "DONE").touch()  # not reached when making it failed: the next caller tries again


def tiny_run(tmp_path_factory) -> Path:
    """A tiny trained run directory, made once per test session by the real train command.

    Shared by tests/test_evaluate.py, tests/test_translate.py and the export test: the first
    caller trains it in the session's shared folder, later callers (any worker) reuse it.
    """
    with made_once(tmp_path_factory, "tiny_run") as (root, done):
        run = root / "run"
        if not done:
            cmd = [sys.executable, "-m", "research.train", *tiny_overrides("transformer", "transformer"), *TRAIN,
                   f"tokenizer.cache_dir={root}/spm", f"data.tfds_dir={root}/tfds", f"hydra.run.dir={run}"]
            out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
            assert out.returncode == 0, out.stderr[-3000:]
    return run
