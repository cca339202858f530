"""Resumable sweeps (research/sweep.py): job folders named by their overrides, the sweep's record, and a
sweep killed half way then resumed: finished jobs untouched, the interrupted one bit-identical."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from omegaconf import OmegaConf

from research import sweep
from research.config import REPO
from research.registry import ConfigError
from tests.conftest import tiny_overrides


def test_job_folders_are_named_by_their_overrides():
    assert sweep.job_dir("+experiment/budget/p/encoder=rnn,trainer.seed=1") == "experiment.budget.p.encoder=rnn,trainer.seed=1"
    assert sweep.job_dir("") == "job"
    long_a, long_b = "a=" + "x" * 300, "a=" + "x" * 299 + "y"
    assert len(sweep.job_dir(long_a)) == sweep.MAX_NAME and sweep.job_dir(long_a) != sweep.job_dir(long_b)
    assert sweep.hydra_subdir(True, "/nowhere") == ".hydra" and sweep.hydra_subdir("false", REPO) == ".hydra"


def _launch(sweep_dir: Path, task: list[str], params: dict | None = None, hydra: list[str] | None = None) -> None:
    """The multirun.yaml Hydra writes into a sweep directory at each launch."""
    OmegaConf.save(OmegaConf.create({"hydra": {"overrides": {"task": task, "hydra": hydra or []},
                                               "sweeper": {"params": params or {}}}}), sweep_dir / "multirun.yaml")


def test_a_resumed_job_keeps_the_hydra_folder_it_has(tmp_path):
    assert sweep.hydra_subdir(True, tmp_path) == ".hydra"  # never started: written as usual
    (tmp_path / ".hydra").mkdir()
    assert sweep.hydra_subdir(True, tmp_path) is None and sweep.hydra_subdir(False, tmp_path) == ".hydra"


def test_a_resume_must_come_from_the_command_that_made_the_sweep(tmp_path):
    with pytest.raises(ConfigError, match="holds no sweep.json"):
        sweep.check_resume(tmp_path)
    _launch(tmp_path, ["+experiment=a", "trainer.seed=0,1"], {"encoder": "rnn,cnn"})
    sweep.record(tmp_path)
    _launch(tmp_path, ["trainer.resume=true", "trainer.seed=0,1", "+experiment=a"], {"encoder": "rnn,cnn"})
    sweep.check_resume(tmp_path)  # the same command, in another order, plus the switch
    _launch(tmp_path, ["+experiment=b", "trainer.seed=0,1", "trainer.resume=true"], {"encoder": "rnn,cnn"})
    with pytest.raises(ConfigError, match=r"made by another command \(overrides: \['\+experiment=a', 'trainer.seed=0,1'\] then"):
        sweep.check_resume(tmp_path)


def test_the_report_shows_the_first_launch_not_the_last_resumption(tmp_path):
    """multirun.yaml is rewritten by every launch; the report's sweep command comes from sweep.json's record
    of the first (the translation sweep's report showed the job count of a later test-only resumption)."""
    from research import report

    first = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path}"]
    _launch(tmp_path, ["+experiment=a", "trainer.seed=0,1"], {"encoder": "rnn,cnn"}, first)
    sweep.record(tmp_path)
    _launch(tmp_path, ["+experiment=a", "trainer.seed=0,1", "trainer.resume=true"], {"encoder": "rnn,cnn"},
            ["hydra/launcher=joblib", "hydra.launcher.n_jobs=1", f"hydra.sweep.dir={tmp_path}"])
    sweep.check_resume(tmp_path)  # another job count is the same sweep
    want = "python -m research.train +experiment=a trainer.seed=0,1 hydra/launcher=joblib hydra.launcher.n_jobs=2 -m"
    assert report.command(tmp_path) == (want, True)
    (tmp_path / "reverse").mkdir()  # a folder of a sweep with one per task (compare_diagnostics)
    assert report.command(tmp_path / "reverse") == (want, True)
    (tmp_path / sweep.RECORD).write_text(json.dumps(sweep.command(tmp_path)))  # a record from before "launch"
    assert report.command(tmp_path) == (want.replace("n_jobs=2", "n_jobs=1"), False)


def test_a_report_of_several_launches_shows_each_launchs_command(tmp_path):
    """A report read from the parent of two launches (compare_translation_top_two: one per arm) names both."""
    from research import report

    assert report.commands(tmp_path) == [] and report.command_lines([]) == []  # no launch here
    arms = {"2026-12-07_16-47-05": ["+experiment=a", "encoder.positions=relative", "optim.learning_rate=0.006"],
            "2026-12-07_16-47-01": ["+experiment=a"]}
    for name, task in arms.items():
        (tmp_path / name).mkdir()
        _launch(tmp_path / name, task, {"trainer.seed": "3,4"})
        sweep.record(tmp_path / name)
    (tmp_path / "notes").mkdir()  # a folder that no launch wrote is not one
    found = report.commands(tmp_path)
    assert found == [(name, ("python -m research.train " + " ".join(arms[name]) + " -m", True)) for name in sorted(arms)]
    assert report.command_lines(found) == [
        "Sweep commands, one for each of the 2 launches this folder holds:", "",
        "    # 2026-12-07_16-47-01", "    python -m research.train +experiment=a -m",
        "    # 2026-12-07_16-47-05",
        "    python -m research.train +experiment=a encoder.positions=relative optim.learning_rate=0.006 -m", ""]
    one = report.commands(tmp_path / "2026-12-07_16-47-01")  # one launch: as before
    assert one == [(None, ("python -m research.train +experiment=a -m", True))]
    assert report.command_lines(one) == ["Sweep command:", "", "    python -m research.train +experiment=a -m", ""]


STEPS = 8
ARGS = [*tiny_overrides("transformer", "cnn"), f"trainer.max_steps={STEPS}", "trainer.checkpoint_every=2",
        f"trainer.eval_every={STEPS}", "trainer.log_every=2", "trainer.eval_examples=2", "data.max_train_examples=300",
        "data.max_shapes=1", "trainer.keep_checkpoints=10"]


def _params(run: Path):
    tree = ocp.PyTreeCheckpointer().restore((run / "checkpoints" / "last" / str(STEPS) / "state").absolute())
    return jax.tree.leaves(tree["params"])


def _job(root: Path, seed: int) -> Path | None:
    """The job folder of `seed` (names of many overrides end in a hash: found by the overrides Hydra saved)."""
    for d in root.iterdir():
        saved = d / ".hydra" / "overrides.yaml"
        if saved.exists() and f"trainer.seed={seed}" in OmegaConf.load(saved):
            return d
    return None


def _files(run: Path) -> dict:
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.slow  # three tiny runs, one killed, resumed, and a reference: a few minutes on a busy 2-core machine
def test_a_killed_sweep_resumes_leaving_finished_jobs_untouched(tmp_path):
    root, spm = tmp_path / "sweep", tmp_path / "spm"
    cmd = [sys.executable, "-m", "research.train", "-m", *ARGS, f"tokenizer.cache_dir={spm}",
           f"hydra.sweep.dir={root}", "trainer.seed=0,1,2"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not ((job := _job(root, 1) if root.exists() else None) and (job / "checkpoints/last/4/state").exists()):
        # seed 0 done, seed 1 half way
        assert proc.poll() is None and time.time() < deadline, "the sweep ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    jobs = {s: _job(root, s) for s in (0, 1, 2)}
    assert (jobs[0] / "summary.json").exists() and not (jobs[1] / "summary.json").exists()
    finished = _files(jobs[0])

    again = subprocess.run([*cmd, "trainer.resume=true"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _files(jobs[0]) == finished  # same files, same modification times
    for s in (1, 2):
        assert (_job(root, s) / "summary.json").exists()
    reference = tmp_path / "reference"
    subprocess.run([sys.executable, "-m", "research.train", *ARGS, f"tokenizer.cache_dir={spm}", "trainer.seed=1",
                    f"hydra.run.dir={reference}"], cwd=REPO, check=True, capture_output=True, timeout=600)
    for a, b in zip(_params(reference), _params(_job(root, 1)), strict=True):
        np.testing.assert_array_equal(a, b)  # the resumed job ends bit-identical to an uninterrupted run
    other = subprocess.run([*cmd[:-1], "trainer.seed=0,1", "trainer.resume=true"], cwd=REPO, capture_output=True,
                           text=True, timeout=600)
    assert "made by another command" in other.stdout + other.stderr


def test_only_a_run_finished_under_the_same_budget_is_left_as_it_is():
    from research.config import TrainerConfig
    from research.train import finished_under

    steps = {"max_steps": 40, "budget": {"kind": "steps", "amount": 40}}
    assert finished_under(steps, TrainerConfig(max_steps=40))
    assert not finished_under(steps, TrainerConfig(max_steps=80))  # asked for more: it continues
    assert finished_under({"max_steps": 40}, TrainerConfig(max_steps=40))  # a summary from before budgets
    flops = {"max_steps": 5000, "budget": {"kind": "flops", "amount": 3.6e12}}
    assert finished_under(flops, TrainerConfig(max_steps=5000, budget="flops", budget_amount=3.6e12))
    assert not finished_under(flops, TrainerConfig(max_steps=5000, budget="flops", budget_amount=7.2e12))
    assert not finished_under(flops, TrainerConfig(max_steps=5000, budget="tokens", budget_amount=3.6e12))
