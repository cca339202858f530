"""A long run stays flat in memory: nothing grows per step (logging, caches, Python objects)."""
from __future__ import annotations

import statistics
import subprocess
import sys

import pytest

from research.config import REPO
from research.training import metrics_log
from tests.conftest import tiny_overrides

STEPS, LOG_EVERY, WARM = 3000, 100, 500
# A fresh `research.train` process, not the test worker: a worker that has run
# other tests carries their heap, whose fragmentation moves memory in 8 MiB steps.
# Alone and without checkpoints, resident memory is flat to the MiB from step 500
# to 8,000 (measured: 698-713 MiB), so medians of the first and last 1,000 steps
# after warm-up may differ by at most 4 MiB: 2 KiB a step would show (a leak of
# 4 KiB a step, planted for a check, made them differ by 13 MiB). Checkpoints are
# left out: each orbax save moves memory by tens of MiB (a plateau near +30 MiB
# over 80 saves, not growth per step), which would hide a per-step leak.
GROWTH_MB = 4.0


# Slow, out of `make test`: run alone it passes (flat to the MiB), but beside the
# other test worker it measured 15 MiB of growth over 2,000 steps, unexplained yet.
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
    early = statistics.median(v for k, v in memory.items() if WARM < k <= WARM + 1000)
    late = statistics.median(v for k, v in memory.items() if k > STEPS - 1000)
    assert late - early < GROWTH_MB, f"resident memory grew {late - early:.1f} MiB in 2,000 steps: {memory}"
