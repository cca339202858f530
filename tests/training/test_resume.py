"""Kill or preempt a real training process, resume it, and end bit-identical to an uninterrupted run."""
from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from research.config import REPO
from tests.conftest import tiny_overrides
from tests.helpers.runs import made_once

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


def _train_lines(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [l for l in map(json.loads, lines) if l["split"] == "train"]


def _wait_for_step(proc: subprocess.Popen, run: Path, step: int) -> None:
    deadline = time.time() + 300
    while not any(l["step"] >= step for l in _train_lines(run)):
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be stopped"
        time.sleep(0.02)


def _assert_same_end(whole: Path, resumed: Path) -> None:
    a, b = _params(whole, STEPS), _params(resumed, STEPS)
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(x, y)  # bit-identical, not merely close
    assert [l["loss"] for l in _train_lines(whole)] == [l["loss"] for l in _train_lines(resumed)]
    # the budget counts continue from the checkpoint (research/training/budget.py)
    assert [(l["tokens"], l["flops"]) for l in _train_lines(whole)] == [(l["tokens"], l["flops"]) for l in _train_lines(resumed)]


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> tuple[Path, Path]:
    """An uninterrupted run and the tokenizer cache the others share; trained once per session
    (tests/helpers/runs.made_once), read only: a test that changes it works on a copy."""
    with made_once(tmp_path_factory, "resume_whole") as (root, done):
        if not done:
            subprocess.run(_cmd(root / "whole", root / "spm"), cwd=REPO, check=True, capture_output=True, timeout=600)
    return root / "whole", root / "spm"


@pytest.mark.slow  # minutes on 2 cores: `make test-slow` (measured in the 2026-12-03 durations)
def test_killed_run_resumes_bit_identical(tmp_path, whole):
    whole, spm = whole
    broken = tmp_path / "broken"

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

    _assert_same_end(whole, broken)


# SIGTERM: preemption (SLURM, Kubernetes, spot VMs); SIGUSR2: what submitit's sbatch line asks SLURM to
# send `signal_delay_s` before the time limit (tests/training/test_preemption_signals.py reads that line).
# SIGUSR2 (submitit's preemption signal) takes SIGTERM's path. Both with `make test-slow`.
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR2], ids=lambda s: getattr(s, "name", s))
@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_stop_signal_checkpoints_the_current_step_and_resumes_bit_identical(tmp_path, whole, sig):
    whole, spm = whole
    run = tmp_path / "preempted"
    proc = subprocess.Popen(_cmd(run, spm), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_step(proc, run, 10)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert f"{sig.name}: finishing this step, then checkpointing and stopping" in err
    stopped = re.search(rf"stopped by {sig.name} at step (\d+); to continue:\n  python (-m research\.train .*)\n", out)
    assert stopped, out[-2000:]
    step = int(stopped.group(1))
    assert 10 <= step < STEPS and (run / "checkpoints" / "last" / str(step)).is_dir()
    assert not (run / "summary.json").exists()

    # The command it printed continues the run.
    subprocess.run([sys.executable, *shlex.split(stopped.group(2))], cwd=REPO, check=True, capture_output=True, timeout=600)
    assert f"resumed from step {step}" in (run / "train.log").read_text()
    _assert_same_end(whole, run)


def test_a_second_signal_exits_at_once_without_a_checkpoint(tmp_path, whole):
    _, spm = whole
    run = tmp_path / "interrupted"
    proc = subprocess.Popen(_cmd(run, spm, "trainer.max_steps=100000"), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_step(proc, run, 5)
    # Finished checkpoints only: the immediate exit may cut a periodic save short,
    # leaving an orbax `*-tmp` folder, which resume skips with a warning (measured
    # once in a fresh-clone run: `5.orbax-checkpoint-tmp`).
    finished = lambda: {p.name for p in (run / "checkpoints" / "last").iterdir() if p.name.isdigit()}
    before = finished()
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    # Two signals pending at once reach Python's handlers in an order the kernel and the
    # interpreter choose (a CI run at 05b7abf handled SIGTERM first, exit 130): whichever
    # came second must be the one that exits, with its own code.
    first = re.search(r"(SIGINT|SIGTERM): finishing this step, then checkpointing and stopping", err)
    second = re.search(r"(SIGINT|SIGTERM): second stop signal; exiting now, without a checkpoint", err)
    assert first and second and first.start() < second.start(), err[-2000:]
    assert {first.group(1), second.group(1)} == {"SIGINT", "SIGTERM"}
    assert proc.returncode == 128 + signal.Signals[second.group(1)], err[-2000:]
    assert finished() == before  # no new checkpoint
    assert all(p.name.isdigit() or p.name.endswith("-tmp") for p in (run / "checkpoints" / "last").iterdir())


def test_resume_refuses_another_worker_count(tmp_path, whole):
    """The saved pipeline state is only valid for the grain worker count that saved it."""
    import shutil

    whole, spm = whole
    run = tmp_path / "copy"
    shutil.copytree(whole, run)
    (run / "summary.json").unlink()  # as if interrupted: a finished run is left as it is (research/sweep.py)
    listing = lambda: sorted(str(p.relative_to(run)) for p in run.rglob("*") if "train.log" not in p.name)
    before = listing()
    out = subprocess.run(_cmd(run, spm, "trainer.resume=true", "data.num_workers=1"), cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 3, out.stderr[-2000:]
    assert "pipeline.num_workers: checkpoint 0, config 1" in out.stderr + (run / "train.log").read_text()
    assert listing() == before  # refused before anything was written


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_a_run_stopped_in_its_test_decoding_resumes_into_the_test_alone(tmp_path, whole):
    """summary.json is written before the test split is decoded; a run stopped in between (the first real
    resumed sweep had one) used to count as finished and never got its test. Resumed, it runs only the test
    evaluation: the same numbers `research.evaluate` gives the best checkpoint, training files untouched."""
    import shutil

    whole, spm = whole
    run = tmp_path / "copy"
    shutil.copytree(whole, run)
    trained = {str(p.relative_to(run)): p.stat().st_mtime_ns for p in run.rglob("*")
               if p.is_file() and p.name not in ("summary.json", "train.log")}
    out = subprocess.run(_cmd(run, spm, "trainer.resume=true", "trainer.test=true"), cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "has no test evaluation; trainer.resume runs only that" in out.stdout
    after = {k: (run / k).stat().st_mtime_ns for k in trained}
    assert after == trained  # no step trained, no checkpoint or metric written again
    summary = json.loads((run / "summary.json").read_text())
    result = json.loads((run / "eval_test.json").read_text())
    assert summary["test"]["checkpoint"] == "best" and summary["test"]["bleu"] == result["bleu"]
    assert summary["wall_s"] == json.loads((whole / "summary.json").read_text())["wall_s"]  # its timings kept
    # the reference: research.evaluate on the same checkpoint and split
    ref = tmp_path / "ref"
    shutil.copytree(whole, ref)
    subprocess.run([sys.executable, "-m", "research.evaluate", f"run_dir={ref}", "split=test"], cwd=REPO,
                   check=True, capture_output=True, timeout=600)
    assert (ref / "hyps_test.txt").read_text() == (run / "hyps_test.txt").read_text()
    assert json.loads((ref / "eval_test.json").read_text())["bleu"] == result["bleu"]
