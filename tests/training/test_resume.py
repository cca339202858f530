"""Kill a real training process, resume it, and end bit-identical to an uninterrupted run."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from research.config import REPO
from tests.conftest import tiny_overrides

STEPS = 40
ARGS = [
    *tiny_overrides("transformer", "cnn"), f"trainer.max_steps={STEPS}", "trainer.checkpoint_every=5",
    f"trainer.eval_every={STEPS}", "trainer.log_every=5", "trainer.eval_examples=4",
    "data.max_train_examples=400", "trainer.keep_checkpoints=20",
]


def _cmd(run: Path, spm: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "research.train", *ARGS, f"tokenizer.cache_dir={spm}", f"hydra.run.dir={run}", *extra]


def _params(run: Path, step: int):
    return ocp.PyTreeCheckpointer().restore((run / "checkpoints" / "last" / str(step) / "state").absolute())["params"]


def test_killed_run_resumes_bit_identical(tmp_path):
    spm = tmp_path / "spm"
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    subprocess.run(_cmd(whole, spm), cwd=REPO, check=True, capture_output=True, timeout=600)

    proc = subprocess.Popen(_cmd(broken, spm), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (broken / "checkpoints" / "last" / "10").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.kill()
    assert proc.wait() == -9  # really killed mid-run, not finished
    done = sorted(int(p.name) for p in (broken / "checkpoints" / "last").iterdir() if p.name.isdigit())
    assert done and max(done) < STEPS

    # A half-written checkpoint, newer than any complete one, must be ignored with a warning.
    fake = broken / "checkpoints" / "last" / f"{STEPS - 5}.orbax-checkpoint-tmp-1700000000"
    fake.mkdir()
    (fake / "garbage").write_text("half written")

    out = subprocess.run(_cmd(broken, spm, "trainer.resume=true"), cwd=REPO, check=True, capture_output=True, text=True, timeout=600)
    log = (broken / "train.log").read_text()
    assert f"ignoring incomplete checkpoint {fake}" in log
    assert f"resumed from step {max(done)}" in log, out.stderr[-2000:]

    a, b = _params(whole, STEPS), _params(broken, STEPS)
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(x, y)  # bit-identical, not merely close
    train = lambda run: [l for l in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if l["split"] == "train"]
    assert [l["loss"] for l in train(whole)] == [l["loss"] for l in train(broken)]
