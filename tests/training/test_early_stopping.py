"""Early stopping and checkpoint selection: the hook against hand-counted sequences, then a real run."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from research.config import REPO
from research.training import checkpoint
from research.training.hooks import EarlyStopping, LoopState
from tests.conftest import tiny_overrides


def _feed(hook: EarlyStopping, values, every: int = 10, last_step: int = 1000):
    """Validations at steps every, 2 * every, ...; -> (step the run stopped at or None, steps that improved)."""
    loop, improved = LoopState(state=None), []
    for i, v in enumerate(values, 1):
        loop.new_step(None, i * every)
        loop.final = loop.step >= last_step  # what run_steps sets when the budget is spent
        loop.evaluated, loop.last_eval = True, {hook.key: v}
        hook.after_step(loop, {}, 0.0)
        if loop.improved:
            improved.append(loop.step)
        if loop.converged:
            return loop.step, improved
    return None, improved


@pytest.mark.parametrize("mode, values, patience, stop, improved, best", [
    ("min", [3.0, 2.0, 2.5, 2.1, 2.2, 1.0], 3, 50, [10, 20], 2.0),   # three evaluations without a new low
    ("min", [3.0, 2.0, 2.5, 2.1, 1.9, 2.2], 3, None, [10, 20, 50], 1.9),  # the count restarts at an improvement
    ("max", [1.0, 1.0, 1.0], 2, 30, [10], 1.0),                       # a tie is no improvement; the first stays best
    ("max", [math.nan, 0.5, math.nan, math.nan], 2, 40, [20], 0.5),  # NaN never improves
    ("min", [3.0, 4.0, 5.0, 6.0], 0, None, [10], 3.0),               # patience 0: never stops
])
def test_stops_after_patience_evaluations_without_improvement(mode, values, patience, stop, improved, best):
    hook = EarlyStopping("v", mode, patience)
    assert _feed(hook, values) == (stop, improved)
    assert hook.best == best and hook.best_step == improved[-1]


def test_its_state_survives_a_resume_and_a_change_of_select_by_starts_afresh():
    first = EarlyStopping("loss", "min", 3)
    _feed(first, [3.0, 2.0, 2.5])  # best 2.0 at step 20, one evaluation without improvement
    again = EarlyStopping("loss", "min", 3, state=json.loads(json.dumps(first.state())))
    assert _feed(again, [2.4, 2.3], every=10)[0] == 20  # the 2nd and 3rd in a row after the resume
    other = EarlyStopping("bleu", "max", 3, state=first.state())
    assert other.best is None and other.bad == 0


def test_the_last_step_ends_the_run_anyway_not_early():
    hook = EarlyStopping("v", "min", 1)
    assert _feed(hook, [1.0, 2.0], last_step=20) == (None, [10])


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_a_plateaued_run_stops_early_and_names_its_best_checkpoint(tmp_path):
    # A warm-up of a billion steps keeps the learning rate near 0, so greedy outputs and
    # BLEU stay exactly the same: every evaluation after the first is no improvement.
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "research.train", *tiny_overrides("transformer", "transformer"),
           "trainer.max_steps=40", "trainer.eval_every=2", "trainer.log_every=2", "trainer.eval_examples=4",
           "trainer.patience=2", "trainer.select_by=metric", "optim.warmup_steps=1000000000",
           "data.max_train_examples=200", "data.max_shapes=1", f"tokenizer.cache_dir={tmp_path}/spm",
           f"hydra.run.dir={run}"]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=600)
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["steps"], summary["max_steps"], summary["stopped_early"]) == (6, 40, True)
    assert summary["best"] == {"select_by": "bleu", "value": summary["best"]["value"], "step": 2,
                               "checkpoint": "checkpoints/best/2"}
    assert checkpoint.read_meta(run / "checkpoints" / "best" / "2")["step"] == 2
    valid = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"validation"' in l]
    assert [v["step"] for v in valid] == [2, 4, 6] and len({v["bleu"] for v in valid}) == 1
    assert summary["best"]["value"] == valid[0]["bleu"]
