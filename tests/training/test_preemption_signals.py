"""Which signals stop a run: the one submitit's SLURM jobs get before the time limit, and SIGTERM/SIGINT.

The end-to-end check (a real training process stopped by each signal, then
resumed bit-identical) is `test_stop_signal_checkpoints_the_current_step_and_resumes_bit_identical`
in test_resume.py; these tests tie its signal to what submitit really writes
and show how the handler coexists with submitit's own.
"""
from __future__ import annotations

import os
import re
import signal
import time

import pytest
import submitit
from hydra import compose, initialize_config_dir
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf
from submitit.core.utils import DelayedSubmission, JobPaths
from submitit.slurm.slurm import SlurmJobEnvironment

from research.config import REPO
from research.training import preemption
from research.training.preemption import Preemption

SLURM_YAML = REPO / "conf" / "hydra" / "launcher" / "slurm.yaml"


def _sbatch_script(tmp_path, monkeypatch) -> str:
    """The sbatch script the submitit launcher would submit for conf/hydra/launcher/slurm.yaml.

    Parameters go through the same renaming as the plugin's `launch`
    (hydra_plugins/hydra_submitit_launcher/submitit_launcher.py); a fake `srun`
    on PATH lets submitit's executor start without a cluster (it is never run).
    """
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose(config_name="config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    for key in ("_target_", "submitit_folder", "name"):
        params.pop(key)
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path / "jobs",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    return executor._executor._make_submission_file_text("python -u -m submitit.core._submit JOB", "uid")


def test_the_signal_slurm_sends_before_the_time_limit_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.delenv(preemption.CLUSTER_SIGNAL_ENV, raising=False)
    script = _sbatch_script(tmp_path, monkeypatch)
    found = re.findall(r"^#SBATCH --signal=(B:)?(\w+)@(\d+)$", script, re.M)
    assert len(found) == 1, script
    batch_only, name, delay = found[0]
    assert not batch_only  # sent to the job steps (the training process under srun), not only the batch shell
    assert int(delay) == OmegaConf.load(SLURM_YAML).signal_delay_s
    assert signal.Signals["SIG" + name] in preemption.signals()
    # slurm.yaml's comment names the signal actually sent
    comment = next(l for l in SLURM_YAML.read_text().splitlines() if l.startswith("signal_delay_s:"))
    assert f"SIG{name}" in comment, comment


def test_the_cluster_signal_follows_submitits_variable(monkeypatch):
    monkeypatch.setenv(preemption.CLUSTER_SIGNAL_ENV, "USR1")
    assert preemption.signals() == (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
    monkeypatch.setenv(preemption.CLUSTER_SIGNAL_ENV, "TERM")  # no duplicate handler
    assert preemption.signals() == (signal.SIGTERM, signal.SIGINT)
    monkeypatch.setenv(preemption.CLUSTER_SIGNAL_ENV, "USR9")
    with pytest.raises(ValueError, match=r"SUBMITIT_PREEMPT_SIGNAL='USR9' is not a signal name"):
        preemption.signals()


@pytest.fixture
def restore_handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2, signal.SIGCONT)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_preemption_replaces_submitits_handlers_while_training_and_restores_them(tmp_path, monkeypatch,
                                                                                  restore_handlers):
    monkeypatch.delenv(preemption.CLUSTER_SIGNAL_ENV, raising=False)
    # What submitit's job runner (submitit/core/submission.py process_job) installs before the run starts;
    # its USR2 handler would checkpoint the job object and call `scontrol requeue`.
    SlurmJobEnvironment()._handle_signals(JobPaths(tmp_path), DelayedSubmission(print))
    theirs = {s: signal.getsignal(s) for s in (signal.SIGUSR2, signal.SIGTERM)}
    assert getattr(theirs[signal.SIGUSR2], "__name__", "") == "checkpoint_and_try_requeue"

    with Preemption() as stop:
        assert all(signal.getsignal(s) == stop._handle for s in preemption.signals())
        os.kill(os.getpid(), signal.SIGUSR2)
        deadline = time.time() + 5
        while stop.signal is None and time.time() < deadline:
            time.sleep(0.01)
        assert stop.signal == signal.SIGUSR2 and stop.name == "SIGUSR2"
    assert {s: signal.getsignal(s) for s in theirs} == theirs
