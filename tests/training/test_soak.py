"""A long run stays flat in memory: nothing grows per step (logging, caches, Python objects)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from research.config import REPO
from research.training import metrics_log
from tests.conftest import tiny_overrides

STEPS, LOG_EVERY, WARM, WINDOW = 3000, 50, 500, 500
# A fresh `research.train` process, not the test worker: a worker that has run
# other tests carries their heap. Even so, resident memory sampled at a log step
# is noisy in quanta of about 7.5 MiB: a transient allocation is alive or not at
# that moment, more often when another process competes for the cores (measured
# beside a test worker: 672-702 MiB around a flat 687, with or without a fixed
# glibc mmap threshold or arena count; alone: flat to the MiB up to 8,000 steps).
# A transient only ever adds memory, so the test compares FLOORS, the lowest of
# ten samples in steps 501-1,000 and in the last 500 steps: with a leak each
# floor sits at its window's start, 2,000 steps apart, so 2 KiB a step raises it
# by 4 MiB (a planted leak of 4 KiB a step made it rise 15.7 MiB). Medians failed
# once under load (15 MiB apart: two quanta of transients, not growth).
# Checkpoints are left out: each orbax save moves memory by tens of MiB (a
# plateau near +30 MiB over 80 saves, not growth per step).
GROWTH_MB = 4.0


# Behind `slow` (make test-slow): on 2026-12-01 the floor difference of this very run swung from -16.0 to
# +10.1 MiB between repeats on this 2-core machine, for the code before and after that day's change
# alike (before: -16.0, +0.1, -1.6; after: +6.6, -5.9, -7.3, -5.6, -1.9, -1.3, +10.1), and failed a
# fresh-clone `make test` once at +4.1. The bound stays; run it on a quiet machine.
@pytest.mark.slow
def test_resident_memory_is_flat_over_thousands_of_steps(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "research.train", *tiny_overrides("transformer", "transformer"),
           "model.d_model=16", "encoder.num_layers=1", "decoder.num_layers=1", "encoder.d_ff=32", "decoder.d_ff=32",
           "encoder.num_heads=2", "decoder.num_heads=2", "data.max_train_examples=300", "data.max_shapes=1",
           "data.tokens_per_batch=512", "data.max_source_len=32", "data.max_target_len=32", "data.length_policy=truncate",
           f"trainer.max_steps={STEPS}", f"trainer.log_every={LOG_EVERY}", f"trainer.eval_every={STEPS}",
           "trainer.eval_examples=4", "trainer.checkpoint=false", f"tokenizer.cache_dir={tmp_path}/spm", f"hydra.run.dir={run}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    memory = {l["step"]: l["memory_mb"] for l in metrics_log.read(run) if l["split"] == "train"}
    assert sorted(memory) == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY)) and all(v > 0 for v in memory.values())
    early = min(v for k, v in memory.items() if WARM < k <= WARM + WINDOW)
    late = min(v for k, v in memory.items() if k > STEPS - WINDOW)
    assert late - early < GROWTH_MB, f"the resident memory floor rose {late - early:.1f} MiB in 2,000 steps: {memory}"
